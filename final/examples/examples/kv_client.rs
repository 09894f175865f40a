//! A command-line client of the key-value store, on the blocking stub: no
//! async runtime of its own, as the course's callers had none.
//!
//! ```text
//! cargo run -p mprpc-examples --example kv_client -- put greeting hello
//! cargo run -p mprpc-examples --example kv_client -- get greeting
//! cargo run -p mprpc-examples --example kv_client -- -i my.toml delete greeting
//! cargo run -p mprpc-examples --example kv_client -- watch greeting --for-secs 60
//! KV_TOKEN=7f3a9c0e5b2d4f6a8c1e3b5d7f9a2c4e \
//!     cargo run -p mprpc-examples --example kv_client -- -i final/examples/kv-secure.toml get greeting
//! ```
//!
//! With `KV_TOKEN` set, every call carries `authorization: Bearer $KV_TOKEN`
//! (an environment variable, not a flag: flags are visible to every user of
//! the machine in `ps`).

// ANCHOR: client
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mprpc::{BlockingChannel, ConfigArgs, ErrorCode, MprpcController};
use mprpc_examples::auth::AttachBearer;
use mprpc_examples::kv::watch_event::Kind;
use mprpc_examples::kv::{
    BlockingKvStoreStub, DeleteRequest, GetRequest, PutRequest, WatchRequest,
};

/// The program's command line.
#[derive(Debug, Parser)]
struct Cli {
    /// mprpc's flags (`-i <file>`).
    #[command(flatten)]
    mprpc: ConfigArgs,
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// One call of `kv.KvStore`.
#[derive(Debug, Subcommand)]
enum Command {
    /// Prints the value of a key.
    Get {
        /// The key.
        key: String,
    },
    /// Sets a key.
    Put {
        /// The key.
        key: String,
        /// Its new value.
        value: String,
    },
    /// Removes a key.
    Delete {
        /// The key.
        key: String,
    },
    /// Prints a key's state, then each change of it, as `revision key …`
    /// lines, for `--for-secs` seconds (the stream's deadline).
    Watch {
        /// The key.
        key: String,
        /// How long to watch.
        #[arg(long, default_value_t = 3600)]
        for_secs: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kv_client: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Makes the one call the command line asks for.
fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let config = cli
        .mprpc
        .load(mprpc_examples::cli::default_config("kv.toml"))?;
    let mut channel = BlockingChannel::from_config(&config)?;
    if let Ok(token) = std::env::var("KV_TOKEN") {
        channel = channel.with_interceptor(AttachBearer::new(&token));
    }
    let stub = BlockingKvStoreStub::new(channel);
    match cli.command {
        Command::Get { key } => {
            let response = stub.get(&GetRequest { key: key.clone() })?;
            if response.found {
                println!("{key} = {}", String::from_utf8_lossy(&response.value));
            } else {
                println!("{key} is not set");
            }
        }
        Command::Put { key, value } => {
            let request = PutRequest {
                key: key.clone(),
                value: value.into_bytes(),
            };
            match stub.put(&request)?.previous {
                Some(old) => println!("{key} was {}", String::from_utf8_lossy(&old)),
                None => println!("{key} set"),
            }
        }
        Command::Delete { key } => {
            let existed = stub.delete(&DeleteRequest { key: key.clone() })?.existed;
            println!("{key} {}", if existed { "deleted" } else { "was not set" });
        }
        Command::Watch { key, for_secs } => {
            let controller =
                MprpcController::with_timeout(std::time::Duration::from_secs(for_secs));
            let request = WatchRequest { key: key.clone() };
            for event in stub.watch_with(&controller, &request)? {
                match event {
                    Ok(e) if e.kind() == Kind::Put => {
                        println!(
                            "{} {key} = {}",
                            e.revision,
                            String::from_utf8_lossy(&e.value)
                        );
                    }
                    Ok(e) => println!("{} {key} is not set", e.revision),
                    // The time asked for is up: the watch ends as planned.
                    Err(s) if s.code == ErrorCode::DeadlineExceeded => break,
                    Err(s) => return Err(s.into()),
                }
            }
        }
    }
    Ok(())
}
// ANCHOR_END: client
