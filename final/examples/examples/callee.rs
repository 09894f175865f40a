//! The course's callee: publishes `fixbug.UserServiceRpc` and serves until
//! Ctrl-C.
//!
//! ```text
//! cargo run -p mprpc-examples --example callee                 # final/examples/mprpc.toml
//! cargo run -p mprpc-examples --example callee -- -i my.toml
//! ```

use mprpc_examples::UserService;
use mprpc_examples::fixbug::UserServiceRpcServer;

#[tokio::main]
async fn main() {
    let service = UserServiceRpcServer::new(UserService::default());
    mprpc_examples::cli::serve("callee", "mprpc.toml", service).await;
}
