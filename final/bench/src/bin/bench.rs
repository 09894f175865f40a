//! `bench`: the benchmark's single executable.
//!
//! * `bench [--quick]` — the driver: starts servers and load generators as
//!   child processes (this same executable), prints the table, writes
//!   `final/bench/results/latest.{json,md}`, `book/src/images/benchmark.svg`
//!   and the Chinese edition's `book/src/images/zh-CN/benchmark.svg`.
//! * `bench server --variant V` — one variant's server (started by the driver).
//! * `bench load --variant V --addr A ...` — one load run (started by the
//!   driver); `--connections N` spreads the calls over N clients.
//! * `bench idle --variant final|floor --addr A --server-pid P --connections N`
//!   — N idle connections, the server's memory per connection.
//! * `bench stream --variant final|tonic|floor --size S` — messages/s of one
//!   server stream (on a fresh `bench stream-server`, or `--addr` /
//!   `--server-pid` for one already running).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use mprpc_bench::driver::{self, Options};
use mprpc_bench::load::{self, LoadSpec};
use mprpc_bench::variant::Variant;
use mprpc_bench::{BoxError, server};

/// Loopback benchmark of `UserServiceRpc.Login`: mprpc vs tonic, tarpc, the
/// course's design and a hand-written floor.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Started as a server or a load generator; absent means "drive the benchmark".
    #[command(subcommand)]
    role: Option<Role>,
    /// Short run (1 round, 0.2 s warm-up, 0.5 s windows): a smoke test, not a measurement.
    #[arg(long)]
    quick: bool,
    /// Rounds (default 3, or 1 with --quick).
    #[arg(long)]
    rounds: Option<usize>,
    /// Variants to measure, comma-separated (default: all available).
    #[arg(long, value_delimiter = ',')]
    variants: Option<Vec<Variant>>,
    /// Calls in flight, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,128")]
    concurrency: Vec<usize>,
    /// Where latest.json and latest.md go.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/results"))]
    results_dir: PathBuf,
    /// Where the SVG chart goes; the Chinese edition's goes to `zh-CN/` beside it.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../book/src/images/benchmark.svg"))]
    svg: PathBuf,
    /// Idle connections per server in the scale section (default 10,000;
    /// 1,000 with --quick; 0 skips it).
    #[arg(long)]
    idle_connections: Option<usize>,
    /// Connections × 1 call in flight in the scale section's load (default
    /// 1,000; 100 with --quick; 0 skips it).
    #[arg(long)]
    load_connections: Option<usize>,
    /// Message sizes of the streaming section, comma-separated (default
    /// 64,1024; 0 skips it).
    #[arg(long, value_delimiter = ',')]
    stream_sizes: Option<Vec<usize>>,
    /// Print and keep nothing on disk.
    #[arg(long)]
    no_write: bool,
    /// Measure nothing: redraw the chart (`--svg`) from a committed run's
    /// JSON, e.g. after a change to how the chart is drawn.
    #[arg(long, value_name = "LATEST_JSON")]
    chart_from: Option<PathBuf>,
}

/// A server that `bench idle` or `bench stream` measures instead of
/// starting one: both flags, or neither.
#[derive(Debug, clap::Args)]
struct Running {
    /// Server address.
    #[arg(long, requires = "server_pid")]
    addr: Option<SocketAddr>,
    /// The server's process id (its VmRSS or CPU time is read).
    #[arg(long, requires = "addr")]
    server_pid: Option<u32>,
}

/// The child roles, and the sections' own runs.
#[derive(Debug, Subcommand)]
enum Role {
    /// Serve one variant until stdin closes.
    Server {
        /// Which implementation to serve.
        #[arg(long, value_enum)]
        variant: Variant,
        /// Address to bind (port 0 = any free port; the chosen one is printed).
        #[arg(long, default_value = "127.0.0.1:0")]
        bind: SocketAddr,
    },
    /// Run one load run and print its result as JSON.
    Load {
        /// Which client to use.
        #[arg(long, value_enum)]
        variant: Variant,
        /// Server address.
        #[arg(long)]
        addr: SocketAddr,
        /// Calls in flight (default: one per connection).
        #[arg(long)]
        concurrency: Option<usize>,
        /// Connections (separate clients) the calls are spread over.
        #[arg(long, default_value_t = 1)]
        connections: usize,
        /// Warm-up, milliseconds.
        #[arg(long)]
        warmup_ms: u64,
        /// Measured window, milliseconds.
        #[arg(long)]
        window_ms: u64,
        /// The server's process id, to read its CPU time over the window.
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// Serve one variant's streaming side (`feed.Feed/Watch`) until stdin closes.
    StreamServer {
        /// Which implementation to serve (final, tonic or floor).
        #[arg(long, value_enum)]
        variant: Variant,
        /// Address to bind (port 0 = any free port; the chosen one is printed).
        #[arg(long, default_value = "127.0.0.1:0")]
        bind: SocketAddr,
    },
    /// Read one server stream as fast as it comes and print messages/s as JSON.
    Stream {
        /// Which client (final, tonic or floor).
        #[arg(long, value_enum)]
        variant: Variant,
        /// A server already running; absent: a fresh one is started for the run.
        #[command(flatten)]
        running: Running,
        /// Bytes of filler per message.
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Warm-up, milliseconds.
        #[arg(long, default_value_t = 1000)]
        warmup_ms: u64,
        /// Counted window, milliseconds.
        #[arg(long, default_value_t = 3000)]
        window_ms: u64,
    },
    /// Open idle connections to a server and print its memory growth per
    /// connection as JSON (VmRSS of `--server-pid`).
    Idle {
        /// Which server it is (`final` or `floor`).
        #[arg(long, value_enum)]
        variant: Variant,
        /// A server already running; absent: a fresh one is started for the run.
        #[command(flatten)]
        running: Running,
        /// Connections to open and hold.
        #[arg(long, default_value_t = mprpc_bench::scale::IDLE_CONNECTIONS)]
        connections: usize,
    },
}

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Dispatches on the role.
fn real_main() -> Result<(), BoxError> {
    let cli = Cli::parse();
    match cli.role {
        Some(Role::Server { variant, bind }) => {
            tokio::runtime::Runtime::new()?.block_on(server::run(variant, bind))
        }
        Some(Role::Load {
            variant,
            addr,
            concurrency,
            connections,
            warmup_ms,
            window_ms,
            server_pid,
        }) => {
            let spec = LoadSpec {
                variant,
                addr,
                concurrency: concurrency.unwrap_or(connections),
                connections,
                warmup: Duration::from_millis(warmup_ms),
                window: Duration::from_millis(window_ms),
                server_pid,
            };
            let result = tokio::runtime::Runtime::new()?.block_on(load::run(&spec))?;
            println!("{}", serde_json::to_string(&result)?);
            Ok(())
        }
        Some(Role::Idle {
            variant,
            running,
            connections,
        }) => {
            let result = match (running.addr, running.server_pid) {
                (Some(addr), Some(pid)) => tokio::runtime::Runtime::new()?
                    .block_on(mprpc_bench::scale::idle(variant, addr, pid, connections))?,
                _ => driver::measure_idle(&std::env::current_exe()?, variant, connections)?,
            };
            println!("{}", serde_json::to_string(&result)?);
            Ok(())
        }
        Some(Role::StreamServer { variant, bind }) => {
            tokio::runtime::Runtime::new()?.block_on(mprpc_bench::stream::serve(variant, bind))
        }
        Some(Role::Stream {
            variant,
            running,
            size,
            warmup_ms,
            window_ms,
        }) => {
            let result = match (running.addr, running.server_pid) {
                (Some(addr), Some(pid)) => {
                    let spec = mprpc_bench::stream::StreamSpec {
                        variant,
                        addr,
                        size,
                        warmup: Duration::from_millis(warmup_ms),
                        window: Duration::from_millis(window_ms),
                        server_pid: Some(pid),
                    };
                    tokio::runtime::Runtime::new()?.block_on(mprpc_bench::stream::run(&spec))?
                }
                _ => {
                    let mut opts = Options::new(std::env::current_exe()?, false);
                    opts.warmup = Duration::from_millis(warmup_ms);
                    opts.window = Duration::from_millis(window_ms);
                    driver::measure_stream(&opts, variant, size)?
                }
            };
            println!("{}", serde_json::to_string(&result)?);
            Ok(())
        }
        None if cli.chart_from.is_some() => {
            let path = cli.chart_from.unwrap_or_default();
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            let report: mprpc_bench::report::Report = serde_json::from_str(&text)
                .map_err(|e| format!("{} is not a benchmark report: {e}", path.display()))?;
            mprpc_bench::chart::draw_all(&report, &cli.svg)?;
            eprintln!(
                "redrew {} and its translations from {}",
                cli.svg.display(),
                path.display()
            );
            Ok(())
        }
        None => {
            let mut opts = Options::new(std::env::current_exe()?, cli.quick);
            if let Some(rounds) = cli.rounds {
                opts.rounds = rounds;
            }
            if let Some(variants) = cli.variants {
                opts.variants = variants;
            }
            opts.concurrencies = cli.concurrency;
            if let Some(n) = cli.idle_connections {
                opts.idle_connections = n;
            }
            if let Some(n) = cli.load_connections {
                opts.load_connections = n;
            }
            if let Some(sizes) = cli.stream_sizes {
                opts.stream_sizes = sizes.into_iter().filter(|&s| s > 0).collect();
            }
            if !cli.no_write {
                opts.results_dir = Some(cli.results_dir);
                opts.svg = Some(cli.svg);
            }
            let report = driver::run(&opts)?;
            println!("{}", report.to_markdown());
            if let (Some(dir), Some(svg)) = (&opts.results_dir, &opts.svg) {
                eprintln!(
                    "wrote {}/latest.json, {}/latest.md and {}",
                    dir.display(),
                    dir.display(),
                    svg.display()
                );
            }
            Ok(())
        }
    }
}
