//! A second callee: publishes `FriendServiceRpc` (port 8001 by default, so it
//! can run beside `callee`).
//!
//! ```text
//! cargo run -p mprpc --example friend_service         # uses final/friend.toml
//! ```

use mprpc::proto::fixbug::FriendServiceRpcServer;
use mprpc::{MprpcApplication, RpcProvider};

#[tokio::main]
async fn main() {
    let config =
        MprpcApplication::init_or_exit(concat!(env!("CARGO_MANIFEST_DIR"), "/friend.toml"));
    let mut provider = RpcProvider::new(config.clone());
    provider.notify_service(FriendServiceRpcServer::new(mprpc::demo::FriendService));
    println!(
        "friend_service: serving FriendServiceRpc on {}:{} (Ctrl-C stops it gracefully)",
        config.rpcserverip, config.rpcserverport
    );
    if let Err(e) = provider.run().await {
        eprintln!("friend_service: {e}");
        std::process::exit(1);
    }
    mprpc::logger::flush();
}
