//! A second callee: publishes `FriendServiceRpc` (port 8001 by default, so it
//! can run beside `callee`).
//!
//! ```text
//! cargo run -p mprpc-examples --example friend_service         # final/examples/friend.toml
//! ```

use clap::Parser;
use mprpc::{ConfigArgs, RpcProvider};
use mprpc_examples::FriendService;
use mprpc_examples::fixbug::FriendServiceRpcServer;

/// The command line: mprpc's `-i <file>`, nothing else.
#[derive(Debug, Parser)]
struct Cli {
    /// mprpc's flags.
    #[command(flatten)]
    mprpc: ConfigArgs,
}

#[tokio::main]
async fn main() {
    let setup = mprpc_examples::cli::setup("friend_service", &Cli::parse().mprpc, "friend.toml");
    let config = &setup.config;
    println!(
        "friend_service: serving fixbug.FriendServiceRpc on {}:{} (Ctrl-C stops it gracefully)",
        config.rpcserverip, config.rpcserverport
    );
    let mut provider = RpcProvider::new(setup.config.clone());
    provider.notify_service(FriendServiceRpcServer::new(FriendService));
    if let Err(e) = provider.run().await {
        eprintln!("friend_service: {e}");
        std::process::exit(1);
    }
}
