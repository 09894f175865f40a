//! The course's callee: publishes `UserServiceRpc` and serves until Ctrl-C.
//!
//! ```text
//! cargo run -p mprpc-examples --example callee                 # final/examples/mprpc.toml
//! cargo run -p mprpc-examples --example callee -- -i my.toml
//! ```

use clap::Parser;
use mprpc::{ConfigArgs, RpcProvider};
use mprpc_examples::UserService;
use mprpc_examples::fixbug::UserServiceRpcServer;

/// The command line: mprpc's `-i <file>`, nothing else.
#[derive(Debug, Parser)]
struct Cli {
    /// mprpc's flags.
    #[command(flatten)]
    mprpc: ConfigArgs,
}

#[tokio::main]
async fn main() {
    let setup = mprpc_examples::cli::setup("callee", &Cli::parse().mprpc, "mprpc.toml");
    let config = &setup.config;
    println!(
        "callee: serving fixbug.UserServiceRpc on {}:{} (Ctrl-C stops it gracefully)",
        config.rpcserverip, config.rpcserverport
    );
    let mut provider = RpcProvider::new(setup.config.clone());
    provider.notify_service(UserServiceRpcServer::new(UserService::default()));
    if let Err(e) = provider.run().await {
        eprintln!("callee: {e}");
        std::process::exit(1);
    }
}
