//! The key-value store's provider: the "Going further" of the book's chapter
//! "Your own service", a program that owns its `main` and its command line.
//!
//! ```text
//! cargo run -p mprpc-examples --example kv_server                 # final/examples/kv.toml
//! cargo run -p mprpc-examples --example kv_server -- -i my.toml --log
//! cargo run -p mprpc-examples --example kv_server -- \
//!     -i final/examples/kv-secure.toml --tokens final/examples/kv-tokens.example --trace
//! ```

// ANCHOR: server
use std::path::PathBuf;

use clap::Parser;
use mprpc::{ConfigArgs, RpcProvider};
use mprpc_examples::KvStoreService;
use mprpc_examples::auth::RequireBearer;
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
    /// Accept only callers bearing a token from this file (`name token`
    /// per line).
    #[arg(long, value_name = "FILE")]
    tokens: Option<PathBuf>,
    /// Print every call's span (service, method, call id, peer, status,
    /// duration) to stderr as it closes.
    #[arg(long)]
    trace: bool,
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
    if cli.trace {
        // ANCHOR: trace
        // Spans are printed when they close, with their fields; mprpc's
        // `log` lines keep going to its own logger.
        tracing_subscriber::fmt()
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_writer(std::io::stderr)
            .init();
        // ANCHOR_END: trace
    }
    let mut provider = RpcProvider::new(config);
    provider.notify_service(KvStoreServer::new(KvStoreService::default()));
    if let Some(file) = &cli.tokens {
        provider.add_interceptor(RequireBearer::from_file(file)?);
    }
    // Serves until Ctrl-C or SIGTERM, then deregisters and drains.
    provider.run().await?;
    Ok(())
}
// ANCHOR_END: server
