//! The course's callee: publishes `UserServiceRpc` and serves until Ctrl-C.
//!
//! ```text
//! cargo run -p mprpc --example callee                 # uses final/mprpc.toml
//! cargo run -p mprpc --example callee -- -i my.toml
//! ```

use mprpc::proto::fixbug::UserServiceRpcServer;
use mprpc::{MprpcApplication, RpcProvider};

#[tokio::main]
async fn main() {
    let config = MprpcApplication::init_or_exit(concat!(env!("CARGO_MANIFEST_DIR"), "/mprpc.toml"));
    let mut provider = RpcProvider::new(config.clone());
    provider.notify_service(UserServiceRpcServer::new(
        mprpc::demo::UserService::default(),
    ));
    println!(
        "callee: serving UserServiceRpc on {}:{} (Ctrl-C stops it gracefully)",
        config.rpcserverip, config.rpcserverport
    );
    if let Err(e) = provider.run().await {
        eprintln!("callee: {e}");
        std::process::exit(1);
    }
    mprpc::logger::flush();
}
