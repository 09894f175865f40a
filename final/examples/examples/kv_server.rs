//! The key-value store's provider: the service of the book's chapter "Your
//! own service", a program that owns its `main` and its command line.
//!
//! ```text
//! cargo run -p mprpc-examples --example kv_server                 # final/examples/kv.toml
//! cargo run -p mprpc-examples --example kv_server -- -i my.toml --log
//! ```

// ANCHOR: server
use clap::Parser;
use mprpc::{ConfigArgs, RpcProvider};
use mprpc_examples::KvStoreService;
use mprpc_examples::kv::KvStoreServer;

/// The program's command line: mprpc's `-i <file>` next to its own flags.
#[derive(Debug, Parser)]
struct Cli {
    /// mprpc's flags (`-i <file>`).
    #[command(flatten)]
    mprpc: ConfigArgs,
    /// Write mprpc's daily log files (`log_dir` in the config).
    #[arg(long)]
    log: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let config = cli
        .mprpc
        .load(mprpc_examples::cli::default_config("kv.toml"))?;
    // The file logger is the program's choice; keep the guard until the end.
    let _log = if cli.log {
        Some(mprpc::logger::init(&config)?)
    } else {
        None
    };
    let mut provider = RpcProvider::new(config);
    provider.notify_service(KvStoreServer::new(KvStoreService::default()));
    // Serves until Ctrl-C or SIGTERM, then deregisters and drains.
    provider.run().await?;
    Ok(())
}
// ANCHOR_END: server
