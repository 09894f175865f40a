//! The provider of `kv.KvStore`: `cargo run` in this crate, with
//! `my-kv.toml` in the current directory.

// ANCHOR: server
use mprpc::{MprpcConfig, RpcProvider};
use my_kv::Store;
use my_kv::kv::KvStoreServer;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = MprpcConfig::load("my-kv.toml")?;
    let mut provider = RpcProvider::new(config);
    provider.notify_service(KvStoreServer::new(Store::default()));
    // Binds, serves until Ctrl-C or SIGTERM, then lets calls in flight finish.
    provider.run().await?;
    Ok(())
}
// ANCHOR_END: server
