//! The chapter "Streams"' test service, `feed.Feed`, as a program of its own:
//! the tests run it as a child process to measure the provider's own memory
//! while a caller holds a stream open without reading it.
//!
//! ```text
//! cargo run -p mprpc-examples --example feed_server -- -i my.toml
//! ```

use mprpc_examples::FeedService;
use mprpc_examples::feed::FeedServer;

#[tokio::main]
async fn main() {
    let service = FeedServer::new(FeedService::default());
    mprpc_examples::cli::serve("feed_server", "mprpc.toml", service).await;
}
