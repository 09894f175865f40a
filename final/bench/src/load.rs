//! `bench load`: the load generator, in its own process.
//!
//! Closed loop: `concurrency` tasks each send a call, wait for its response,
//! and send the next, so exactly `concurrency` calls are in flight. After a
//! warm-up (connections open, caches and allocators warm, tokio's workers
//! spun up) a fixed window begins; every call that *completes* inside the
//! window counts towards calls/s and has its latency recorded in an
//! HdrHistogram (3 significant digits). The result is one JSON line on stdout.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::pb::fixbug::{LoginRequest, LoginResponse};
use crate::variant::Variant;
use crate::{BoxError, final_variant, floor, grpc, rpc_tarpc, step_variant};

/// How long connecting may take before the run is declared failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Extra time after the window for in-flight calls to finish before giving up.
const GRACE: Duration = Duration::from_secs(10);
/// Highest latency the histogram tracks exactly (larger values saturate).
const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// What one load run asks for.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Which client to use.
    pub variant: Variant,
    /// Where the server listens.
    pub addr: SocketAddr,
    /// Calls in flight at all times.
    pub concurrency: usize,
    /// Connections (separate clients) the calls are spread over, round
    /// robin; 1 = one shared client, as in the main table.
    pub connections: usize,
    /// Time before measuring starts.
    pub warmup: Duration,
    /// Measured window.
    pub window: Duration,
    /// The server's process id, so its CPU time over the window can be read
    /// from `/proc` (`None`: only the load generator's own CPU is known).
    pub server_pid: Option<u32>,
}

/// What one load run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadResult {
    /// Variant measured.
    pub variant: Variant,
    /// Calls in flight.
    pub concurrency: usize,
    /// Connections the calls were spread over (1 in the main table).
    #[serde(default = "one")]
    pub connections: usize,
    /// Length of the measured window, seconds.
    pub window_s: f64,
    /// Successful calls completed inside the window.
    pub calls: u64,
    /// Failed calls (transport error or `success == false`) inside the window.
    pub errors: u64,
    /// `calls / window_s`.
    pub calls_per_sec: f64,
    /// Median latency, microseconds.
    pub p50_us: f64,
    /// 99th percentile latency, microseconds.
    pub p99_us: f64,
    /// 99.9th percentile latency, microseconds.
    pub p999_us: f64,
    /// Slowest call, microseconds.
    pub max_us: f64,
    /// Mean latency, microseconds.
    pub mean_us: f64,
    /// The first error seen, if any, so failures are explained, not just counted.
    pub first_error: Option<String>,
    /// CPU time (user + sys) the load generator used during the window, seconds.
    #[serde(default)]
    pub load_cpu_s: Option<f64>,
    /// CPU time (user + sys) the server process used during the window, seconds.
    #[serde(default)]
    pub server_cpu_s: Option<f64>,
    /// `(load_cpu_s + server_cpu_s) / (calls + errors)`, microseconds: what
    /// one call costs both processes together. Steadier than calls/s on a
    /// shared machine, because time the variant spent *waiting* for a core
    /// that a neighbour held does not count.
    #[serde(default)]
    pub cpu_us_per_call: Option<f64>,
}

/// Clock ticks per second in `/proc/<pid>/stat` (`USER_HZ`): fixed at 100
/// in Linux's user-space ABI on every architecture this runs on.
const USER_HZ: f64 = 100.0;

/// User + sys CPU seconds of process `pid` so far, from `/proc/<pid>/stat`
/// (fields 14 and 15, after the parenthesised command name, which may
/// itself contain spaces). Counts every thread, including exited ones.
/// Resolution is one tick (10 ms): over a 3 s window of a process using
/// one core, about 0.3%.
pub fn process_cpu_s(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// CPU used by this process and the server between `from` and `until`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CpuWindow {
    /// This process (the load generator), seconds.
    pub(crate) load: Option<f64>,
    /// The server process, seconds.
    pub(crate) server: Option<f64>,
}

/// Starts a thread that samples both processes' CPU time at `from` and at
/// `until` (a plain OS thread that sleeps in between, so it neither costs
/// CPU nor waits for a busy tokio worker to be sampled on time).
pub(crate) fn meter_cpu(
    server_pid: Option<u32>,
    from: Instant,
    until: Instant,
) -> std::thread::JoinHandle<CpuWindow> {
    std::thread::spawn(move || {
        let me = std::process::id();
        let sample = || (process_cpu_s(me), server_pid.and_then(process_cpu_s));
        std::thread::sleep(from.saturating_duration_since(Instant::now()));
        let (load0, server0) = sample();
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
        let (load1, server1) = sample();
        let diff = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
        CpuWindow {
            load: diff(load0, load1),
            server: diff(server0, server1),
        }
    })
}

/// A connected asynchronous client. Cloning shares the underlying
/// connection. (`step`'s client is blocking and runs on threads instead.)
#[derive(Debug, Clone)]
enum Caller {
    /// mprpc.
    Final(final_variant::Client),
    /// tonic.
    Tonic(grpc::Client),
    /// tarpc.
    Tarpc(rpc_tarpc::Client),
    /// Hand-written floor.
    Floor(floor::Client),
}

impl Caller {
    /// Connects the variant's client to `addr`.
    async fn connect(
        variant: Variant,
        addr: SocketAddr,
        request: &LoginRequest,
    ) -> Result<Self, BoxError> {
        Ok(match variant {
            Variant::Final | Variant::FinalMetrics => {
                Caller::Final(final_variant::Client::new(addr, request, false)?)
            }
            Variant::FinalTls => Caller::Final(final_variant::Client::new(addr, request, true)?),
            Variant::Tonic => Caller::Tonic(grpc::Client::connect(addr).await?),
            Variant::Tarpc => Caller::Tarpc(rpc_tarpc::Client::connect(addr, request).await?),
            Variant::Step => return Err("the step client is blocking: run it on threads".into()),
            Variant::Floor
            | Variant::FloorCombine
            | Variant::FloorShared
            | Variant::FloorQueue
            | Variant::FloorLock => {
                let design = variant.floor_design().ok_or("not a floor variant")?;
                Caller::Floor(floor::Client::connect(addr, design).await?)
            }
        })
    }

    /// One `Login` call.
    async fn call(&mut self, request: &LoginRequest) -> Result<LoginResponse, BoxError> {
        match self {
            Caller::Final(client) => client.login().await,
            Caller::Tonic(client) => client.login(request).await,
            Caller::Tarpc(client) => client.login().await,
            Caller::Floor(client) => client.login(request).await,
        }
    }
}

/// What one caller task (or thread) brings back.
struct TaskResult {
    /// Latencies of successful calls in the window, nanoseconds.
    histogram: Histogram<u64>,
    /// Failed calls in the window.
    errors: u64,
    /// First failure, described.
    first_error: Option<String>,
}

impl TaskResult {
    /// Nothing booked yet; the histogram covers 1 ns to a minute at 3
    /// significant digits.
    fn new() -> Result<Self, BoxError> {
        let histogram = Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
            .map_err(|e| format!("histogram: {e:?}"))?;
        Ok(Self {
            histogram,
            errors: 0,
            first_error: None,
        })
    }

    /// Books one finished call. Only calls that *complete* inside the
    /// window `[from, until]` count.
    fn book(
        &mut self,
        start: Instant,
        end: Instant,
        from: Instant,
        until: Instant,
        outcome: Result<LoginResponse, BoxError>,
    ) {
        if end < from || end > until {
            return;
        }
        match outcome {
            Ok(response) if response.success => {
                let nanos = u64::try_from((end - start).as_nanos()).unwrap_or(u64::MAX);
                self.histogram.saturating_record(nanos.max(1));
            }
            Ok(_) => {
                self.errors += 1;
                self.first_error
                    .get_or_insert_with(|| "response with success = false".to_owned());
            }
            Err(err) => {
                self.errors += 1;
                self.first_error.get_or_insert_with(|| err.to_string());
            }
        }
    }
}

/// The default of [`LoadResult::connections`] in reports written before it.
fn one() -> usize {
    1
}

/// Runs one load run as described by `spec`.
pub async fn run(spec: &LoadSpec) -> Result<LoadResult, BoxError> {
    if spec.concurrency == 0 {
        return Err("concurrency must be at least 1".into());
    }
    let (results, cpu) = if spec.variant == Variant::Step {
        let spec = spec.clone();
        tokio::task::spawn_blocking(move || run_threads(&spec)).await??
    } else {
        run_tasks(spec).await?
    };
    let cpu = cpu.join().map_err(|_| "the CPU meter thread panicked")?;
    summarize(spec, results, cpu)
}

/// What a closed loop hands back: every task's bookings, and the CPU meter
/// that ran over the same window.
type Booked = (Vec<TaskResult>, std::thread::JoinHandle<CpuWindow>);

/// The closed loop on tokio tasks, for the asynchronous clients.
async fn run_tasks(spec: &LoadSpec) -> Result<Booked, BoxError> {
    let request = crate::service::sample_request();
    let connections = spec.connections.max(1);
    if connections > 1 {
        crate::scale::check_fd_limit(connections)?;
    }
    let mut callers = Vec::with_capacity(connections);
    for _ in 0..connections {
        let mut caller = tokio::time::timeout(
            CONNECT_TIMEOUT,
            Caller::connect(spec.variant, spec.addr, &request),
        )
        .await
        .map_err(|_| "timed out connecting")??;
        // One checked call first: a variant that answers wrongly must not be
        // timed (and a lazily connecting client is connected by it).
        let first = tokio::time::timeout(CONNECT_TIMEOUT, caller.call(&request))
            .await
            .map_err(|_| "first call timed out")??;
        if !first.success {
            return Err("first call returned success = false".into());
        }
        callers.push(caller);
    }

    // ANCHOR: closed_loop
    let from = Instant::now() + spec.warmup;
    let until = from + spec.window;
    let cpu = meter_cpu(spec.server_pid, from, until);
    let mut tasks = JoinSet::new();
    for i in 0..spec.concurrency {
        let mut caller = callers[i % connections].clone();
        let request = request.clone();
        let mut booked = TaskResult::new()?;
        tasks.spawn(async move {
            while Instant::now() < until {
                let start = Instant::now();
                let outcome = caller.call(&request).await;
                booked.book(start, Instant::now(), from, until, outcome);
            }
            booked
        });
    }
    // ANCHOR_END: closed_loop
    drop(callers);

    let deadline = until + GRACE;
    let mut results = Vec::new();
    while let Some(joined) = tokio::time::timeout_at(deadline.into(), tasks.join_next())
        .await
        .map_err(|_| "calls still in flight long after the window closed")?
    {
        results.push(joined?);
    }
    Ok((results, cpu))
}

/// The same closed loop on OS threads, for the blocking `step` client (the
/// course's caller blocks in `CallMethod`): one thread per call in flight.
/// Every call is bounded by the step channel's own connect and read
/// timeouts, so the threads end.
fn run_threads(spec: &LoadSpec) -> Result<Booked, BoxError> {
    let request = crate::service::sample_request();
    if !step_variant::Client::new(spec.addr, &request)
        .login()?
        .success
    {
        return Err("first call returned success = false".into());
    }
    let from = Instant::now() + spec.warmup;
    let until = from + spec.window;
    let cpu = meter_cpu(spec.server_pid, from, until);
    let mut threads = Vec::new();
    for _ in 0..spec.concurrency {
        let client = step_variant::Client::new(spec.addr, &request);
        let mut booked = TaskResult::new()?;
        threads.push(std::thread::spawn(move || {
            while Instant::now() < until {
                let start = Instant::now();
                let outcome = client.login();
                booked.book(start, Instant::now(), from, until, outcome);
            }
            booked
        }));
    }
    let results = threads
        .into_iter()
        .map(|t| {
            t.join()
                .map_err(|_| BoxError::from("a caller thread panicked"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((results, cpu))
}

/// Merges the per-task results into the run's result.
fn summarize(
    spec: &LoadSpec,
    results: Vec<TaskResult>,
    cpu: CpuWindow,
) -> Result<LoadResult, BoxError> {
    let mut total = TaskResult::new()?;
    for task in results {
        total
            .histogram
            .add(&task.histogram)
            .map_err(|e| format!("histogram merge: {e:?}"))?;
        total.errors += task.errors;
        if total.first_error.is_none() {
            total.first_error = task.first_error;
        }
    }
    let h = &total.histogram;
    let window_s = spec.window.as_secs_f64();
    let us = |ns: u64| ns as f64 / 1_000.0;
    let finished = h.len() + total.errors;
    let cpu_us_per_call = match (cpu.load, cpu.server) {
        (Some(load), Some(server)) if finished > 0 => Some((load + server) * 1e6 / finished as f64),
        _ => None,
    };
    Ok(LoadResult {
        variant: spec.variant,
        concurrency: spec.concurrency,
        connections: spec.connections.max(1),
        window_s,
        calls: h.len(),
        errors: total.errors,
        calls_per_sec: h.len() as f64 / window_s,
        p50_us: us(h.value_at_quantile(0.50)),
        p99_us: us(h.value_at_quantile(0.99)),
        p999_us: us(h.value_at_quantile(0.999)),
        max_us: us(h.max()),
        mean_us: h.mean() / 1_000.0,
        first_error: total.first_error,
        load_cpu_s: cpu.load,
        server_cpu_s: cpu.server,
        cpu_us_per_call,
    })
}
