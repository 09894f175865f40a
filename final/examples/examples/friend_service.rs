//! A second callee: publishes `fixbug.FriendServiceRpc` (port 8001 by
//! default, so it can run beside `callee`).
//!
//! ```text
//! cargo run -p mprpc-examples --example friend_service         # final/examples/friend.toml
//! ```

use mprpc_examples::FriendService;
use mprpc_examples::fixbug::FriendServiceRpcServer;

#[tokio::main]
async fn main() {
    let service = FriendServiceRpcServer::new(FriendService);
    mprpc_examples::cli::serve("friend_service", "friend.toml", service).await;
}
