//! The driver: starts one server process per variant, then for every round,
//! every concurrency and every variant (order rotated each round so no
//! variant always runs first or last) starts one load-generator process,
//! then the scale and streaming sections, and finally summarizes, prints
//! and writes the report.
//!
//! It compiles nothing: the server and the load generator are this same
//! executable started with `server` / `load`, so `cargo run --release` of the
//! `bench` binary is all it takes.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::BoxError;
use crate::load::LoadResult;
use crate::report::{Failure, Machine, Report, Sample, Settings, loadavg, summarize};
use crate::scale::{IdleResult, Scale};
use crate::server::READY_PREFIX;
use crate::stream::{StreamResult, Streams};
use crate::variant::Variant;

/// How long a server may take to print its address.
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(20);

/// What the driver should do.
#[derive(Debug, Clone)]
pub struct Options {
    /// Executable that implements `server` and `load` (normally this one).
    pub exe: PathBuf,
    /// Variants, in report order.
    pub variants: Vec<Variant>,
    /// In-flight call counts.
    pub concurrencies: Vec<usize>,
    /// Rounds over all cells.
    pub rounds: usize,
    /// Warm-up per run.
    pub warmup: Duration,
    /// Measured window per run.
    pub window: Duration,
    /// Whether this is a `--quick` run (recorded in the report).
    pub quick: bool,
    /// Directory for `latest.json` and `latest.md`; nothing written if `None`.
    pub results_dir: Option<PathBuf>,
    /// Where the SVG chart goes; none drawn if `None`.
    pub svg: Option<PathBuf>,
    /// Progress lines on stderr.
    pub verbose: bool,
    /// Idle connections per server in the scale section (0: skip it).
    pub idle_connections: usize,
    /// Connections of the scale section's load (one call in flight each; 0: skip).
    pub load_connections: usize,
    /// Message sizes of the streaming section (empty: skip it).
    pub stream_sizes: Vec<usize>,
}

impl Options {
    /// The full benchmark (3 rounds, 1 s warm-up, 3 s window) or `--quick`
    /// (1 round, 0.2 s warm-up, 0.5 s window), run by `exe`.
    pub fn new(exe: PathBuf, quick: bool) -> Self {
        let variants = Variant::DEFAULT
            .into_iter()
            .filter(|v| *v != Variant::Final || crate::final_variant::AVAILABLE)
            .collect();
        Self {
            exe,
            variants,
            concurrencies: vec![1, 16, 128],
            rounds: if quick { 1 } else { 3 },
            warmup: Duration::from_millis(if quick { 200 } else { 1000 }),
            window: Duration::from_millis(if quick { 500 } else { 3000 }),
            quick,
            results_dir: None,
            svg: None,
            verbose: true,
            idle_connections: if quick {
                crate::scale::IDLE_QUICK
            } else {
                crate::scale::IDLE_CONNECTIONS
            },
            load_connections: if quick {
                crate::scale::LOAD_QUICK
            } else {
                crate::scale::LOAD_CONNECTIONS
            },
            stream_sizes: crate::stream::SIZES.to_vec(),
        }
    }
}

/// A server child process; killed and reaped when dropped.
#[derive(Debug)]
struct ServerProcess {
    /// The process (its stdin is a pipe we hold: closing it stops the server).
    child: Child,
    /// Where it listens.
    addr: SocketAddr,
}

impl ServerProcess {
    /// Starts `exe server --variant <variant>` and waits for its address.
    fn start(exe: &Path, variant: Variant) -> Result<Self, BoxError> {
        Self::start_role(exe, "server", variant)
    }

    /// [`ServerProcess::start`] with another server role (`stream-server`).
    fn start_role(exe: &Path, role: &str, variant: Variant) -> Result<Self, BoxError> {
        let mut child = Command::new(exe)
            .args([role, "--variant", variant.name(), "--bind", "127.0.0.1:0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting {} server ({}): {e}", variant, exe.display()))?;
        let stdout = child.stdout.take().ok_or("server stdout not captured")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next();
            let _ = tx.send(first);
            // Keep draining so the server can never block on a full pipe.
            for _ in lines {}
        });
        let mut server = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let line = match rx.recv_timeout(SERVER_START_TIMEOUT) {
            Ok(Some(Ok(line))) => line,
            Ok(_) => {
                return Err(
                    format!("{variant} server exited before announcing its address").into(),
                );
            }
            Err(_) => {
                return Err(format!(
                    "{variant} server did not start within {SERVER_START_TIMEOUT:?}"
                )
                .into());
            }
        };
        let addr = line
            .strip_prefix(READY_PREFIX)
            .ok_or_else(|| format!("{variant} server said {line:?}"))?;
        server.addr = addr.parse()?;
        Ok(server)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs one load-generator process and parses its JSON line.
fn run_load(
    opts: &Options,
    variant: Variant,
    server: (SocketAddr, u32),
    concurrency: usize,
) -> Result<LoadResult, BoxError> {
    run_load_on(opts, variant, server, concurrency, 1)
}

/// [`run_load`] with the calls spread over `connections` clients.
fn run_load_on(
    opts: &Options,
    variant: Variant,
    server: (SocketAddr, u32),
    concurrency: usize,
    connections: usize,
) -> Result<LoadResult, BoxError> {
    let (addr, server_pid) = server;
    let mut command = Command::new(&opts.exe);
    command
        .args([
            "load",
            "--variant",
            variant.name(),
            "--addr",
            &addr.to_string(),
        ])
        .args(["--concurrency", &concurrency.to_string()])
        .args(["--connections", &connections.to_string()])
        .args(["--warmup-ms", &opts.warmup.as_millis().to_string()])
        .args(["--window-ms", &opts.window.as_millis().to_string()])
        .args(["--server-pid", &server_pid.to_string()]);
    json_of(command, "load generator")
}

/// Runs `exe stream` against the stream server at `server` (address, pid)
/// and parses its JSON line.
fn run_stream(
    opts: &Options,
    variant: Variant,
    server: (SocketAddr, u32),
    size: usize,
) -> Result<StreamResult, BoxError> {
    let mut command = Command::new(&opts.exe);
    command
        .args(["stream", "--variant", variant.name()])
        .args(["--addr", &server.0.to_string()])
        .args(["--server-pid", &server.1.to_string()])
        .args(["--size", &size.to_string()])
        .args(["--warmup-ms", &opts.warmup.as_millis().to_string()])
        .args(["--window-ms", &opts.window.as_millis().to_string()]);
    json_of(command, "stream run")
}

/// Runs `command` (a child role of this executable) and parses the JSON
/// line it prints last; a failure says what `what` was and what it wrote
/// on stderr.
fn json_of<T: serde::de::DeserializeOwned>(
    mut command: Command,
    what: &str,
) -> Result<T, BoxError> {
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!("{what} failed ({}): {}", output.status, stderr.trim()).into());
    }
    let stdout = String::from_utf8(output.stdout)?;
    let line = stdout
        .lines()
        .last()
        .ok_or_else(|| format!("{what} printed nothing"))?;
    Ok(serde_json::from_str(line)?)
}

/// One streaming run on a fresh `variant` stream server: `bench stream`
/// without `--addr`.
pub fn measure_stream(
    opts: &Options,
    variant: Variant,
    size: usize,
) -> Result<StreamResult, BoxError> {
    let server = ServerProcess::start_role(&opts.exe, "stream-server", variant)?;
    run_stream(opts, variant, (server.addr, server.child.id()), size)
}

/// The streaming section: one stream server per variant that has a
/// streaming side, then every round, every size and every variant (order
/// rotated each round, as in the main table).
fn run_streams(opts: &Options) -> Streams {
    let mut streams = Streams::default();
    if opts.stream_sizes.is_empty() {
        return streams;
    }
    let mut servers = Vec::new();
    for variant in crate::stream::VARIANTS
        .into_iter()
        .filter(|v| opts.variants.contains(v))
    {
        match ServerProcess::start_role(&opts.exe, "stream-server", variant) {
            Ok(server) => servers.push((variant, server)),
            Err(e) => streams
                .failures
                .push(format!("{variant} stream server: {e}")),
        }
    }
    if servers.is_empty() {
        return streams;
    }
    for round in 1..=opts.rounds {
        let order = round_order(&servers, round);
        for &size in &opts.stream_sizes {
            for &(variant, server) in &order {
                match run_stream(opts, variant, server, size) {
                    Ok(r) => {
                        if opts.verbose {
                            eprintln!(
                                "stream round {round}/{}  {size:>5} B  {variant:<13}  {:>10.0} messages/s  {:>7.1} MiB/s  CPU {:>6.0} ns/message",
                                opts.rounds,
                                r.messages_per_sec,
                                r.mib_per_sec,
                                r.cpu_ns_per_message.unwrap_or(f64::NAN)
                            );
                        }
                        streams.results.push(r);
                    }
                    Err(e) => streams
                        .failures
                        .push(format!("round {round}, {size} B, {variant}: {e}")),
                }
            }
        }
    }
    streams
}

/// Runs `exe idle` against the server at `server` (address, pid) and parses
/// its JSON line.
fn run_idle(
    exe: &Path,
    variant: Variant,
    server: (SocketAddr, u32),
    connections: usize,
) -> Result<IdleResult, BoxError> {
    let mut command = Command::new(exe);
    command
        .args(["idle", "--variant", variant.name()])
        .args(["--addr", &server.0.to_string()])
        .args(["--server-pid", &server.1.to_string()])
        .args(["--connections", &connections.to_string()]);
    json_of(command, "idle run")
}

/// Memory per idle connection of a fresh `variant` server (started here,
/// measured by a child `idle` process, stopped): `bench idle` without
/// `--addr`, and the scale section. A fresh server, so that the main runs'
/// buffers do not hide the growth.
pub fn measure_idle(
    exe: &Path,
    variant: Variant,
    connections: usize,
) -> Result<IdleResult, BoxError> {
    let server = ServerProcess::start(exe, variant)?;
    run_idle(exe, variant, (server.addr, server.child.id()), connections)
}

/// The scale section: memory per idle connection (final and floor) and
/// calls/s with many connections × one call in flight (final, floor, tarpc),
/// for the variants being measured.
fn run_scale(opts: &Options) -> Scale {
    let mut scale = Scale::default();
    let measured = |v: &Variant| opts.variants.contains(v);
    if opts.idle_connections > 0 {
        for variant in [Variant::Final, Variant::Floor]
            .iter()
            .filter(|v| measured(v))
        {
            match measure_idle(&opts.exe, *variant, opts.idle_connections) {
                Ok(r) => {
                    if opts.verbose {
                        eprintln!(
                            "scale  {} idle connections  {variant:<13}  {:>8.0} bytes per connection",
                            r.connections, r.bytes_per_connection
                        );
                    }
                    scale.idle.push(r);
                }
                Err(e) => scale.failures.push(format!("idle {variant}: {e}")),
            }
        }
    }
    let n = opts.load_connections;
    if n > 0 {
        for variant in [Variant::Final, Variant::Floor, Variant::Tarpc]
            .iter()
            .filter(|v| measured(v))
        {
            let run = ServerProcess::start(&opts.exe, *variant).and_then(|server| {
                run_load_on(opts, *variant, (server.addr, server.child.id()), n, n)
            });
            match run {
                Ok(r) => {
                    if opts.verbose {
                        eprintln!(
                            "scale  {n} connections × 1 in flight  {variant:<13}  {:>9.0} calls/s  p99 {:>8.1} µs  errors {}",
                            r.calls_per_sec, r.p99_us, r.errors
                        );
                    }
                    scale.load.push(r);
                }
                Err(e) => scale
                    .failures
                    .push(format!("{n} connections, {variant}: {e}")),
            }
        }
    }
    scale
}

/// The servers as (variant, (address, pid)), rotated by one more place each
/// round, so that no variant always runs first or last.
fn round_order(
    servers: &[(Variant, ServerProcess)],
    round: usize,
) -> Vec<(Variant, (SocketAddr, u32))> {
    let mut order: Vec<_> = servers
        .iter()
        .map(|(v, s)| (*v, (s.addr, s.child.id())))
        .collect();
    if !order.is_empty() {
        let shift = (round.saturating_sub(1)) % order.len();
        order.rotate_left(shift);
    }
    order
}

/// Runs the whole benchmark as `opts` says; writes files if asked.
pub fn run(opts: &Options) -> Result<Report, BoxError> {
    if opts.variants.is_empty() || opts.concurrencies.is_empty() || opts.rounds == 0 {
        return Err("nothing to measure".into());
    }
    let mut machine = Machine::probe();
    let settings = Settings {
        rounds: opts.rounds,
        warmup_s: opts.warmup.as_secs_f64(),
        window_s: opts.window.as_secs_f64(),
        concurrencies: opts.concurrencies.clone(),
        variants: opts.variants.clone(),
        quick: opts.quick,
    };

    let mut servers = Vec::new();
    for &variant in &opts.variants {
        servers.push((variant, ServerProcess::start(&opts.exe, variant)?));
    }

    let mut samples = Vec::new();
    let mut failures = Vec::new();
    for round in 1..=opts.rounds {
        let order = round_order(&servers, round);
        for &concurrency in &opts.concurrencies {
            for &(variant, server) in &order {
                match run_load(opts, variant, server, concurrency) {
                    Ok(result) => {
                        if opts.verbose {
                            eprintln!(
                                "round {round}/{}  {:>3} in flight  {:<13}  {:>9.0} calls/s  p50 {:>7.1} µs  p99 {:>8.1} µs  CPU {:>5.2} µs/call  errors {}",
                                opts.rounds,
                                concurrency,
                                variant,
                                result.calls_per_sec,
                                result.p50_us,
                                result.p99_us,
                                result.cpu_us_per_call.unwrap_or(f64::NAN),
                                result.errors
                            );
                        }
                        samples.push(Sample { round, result });
                    }
                    Err(err) => {
                        if opts.verbose {
                            eprintln!(
                                "round {round}/{}  {concurrency:>3} in flight  {variant:<13}  FAILED: {err}",
                                opts.rounds
                            );
                        }
                        failures.push(Failure {
                            round,
                            variant,
                            concurrency,
                            error: err.to_string(),
                        });
                    }
                }
            }
        }
    }
    drop(servers);
    let scale = run_scale(opts);
    let streams = run_streams(opts);
    machine.loadavg_end = loadavg();

    let (summary, ratios) = summarize(&settings, &samples);
    let mut notes = vec![
        "closed loop: each of the N in-flight slots sends its next call as soon as the previous one returns; \
         calls/s counts calls completed inside the window, latency is per call as the caller sees it"
            .to_owned(),
        "the step variant runs without ZooKeeper (static address lookup); the course also opened a ZooKeeper \
         session per call, so its real cost is higher"
            .to_owned(),
    ];
    if !opts.variants.contains(&Variant::Final) {
        notes.push(
            "the final variant was not measured (not wired into this build), so its ratios are n/a"
                .to_owned(),
        );
    }
    let report = Report {
        finished_at: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        machine,
        settings,
        descriptions: opts
            .variants
            .iter()
            .map(|v| (*v, v.description().to_owned()))
            .collect(),
        summary,
        ratios,
        failures,
        notes,
        samples,
        scale: Some(scale),
        streams: Some(streams),
    };

    if let Some(dir) = &opts.results_dir {
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join("latest.json"),
            serde_json::to_string_pretty(&report)? + "\n",
        )?;
        std::fs::write(dir.join("latest.md"), report.to_markdown())?;
    }
    if let Some(svg) = &opts.svg {
        // The English chart and, beside it, the translated editions' ones.
        crate::chart::draw_all(&report, svg)?;
    }
    Ok(report)
}
