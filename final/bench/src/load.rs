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
    /// Time before measuring starts.
    pub warmup: Duration,
    /// Measured window.
    pub window: Duration,
}

/// What one load run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadResult {
    /// Variant measured.
    pub variant: Variant,
    /// Calls in flight.
    pub concurrency: usize,
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
            Variant::Final => Caller::Final(final_variant::Client::new(addr, request)),
            Variant::Tonic => Caller::Tonic(grpc::Client::connect(addr).await?),
            Variant::Tarpc => Caller::Tarpc(rpc_tarpc::Client::connect(addr, request).await?),
            Variant::Step => return Err("the step client is blocking: run it on threads".into()),
            Variant::Floor => Caller::Floor(floor::Client::connect(addr).await?),
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

/// Runs one load run as described by `spec`.
pub async fn run(spec: &LoadSpec) -> Result<LoadResult, BoxError> {
    if spec.concurrency == 0 {
        return Err("concurrency must be at least 1".into());
    }
    let results = if spec.variant == Variant::Step {
        let spec = spec.clone();
        tokio::task::spawn_blocking(move || run_threads(&spec)).await??
    } else {
        run_tasks(spec).await?
    };
    summarize(spec, results)
}

/// The closed loop on tokio tasks, for the asynchronous clients.
async fn run_tasks(spec: &LoadSpec) -> Result<Vec<TaskResult>, BoxError> {
    let request = crate::service::sample_request();
    let mut caller = tokio::time::timeout(
        CONNECT_TIMEOUT,
        Caller::connect(spec.variant, spec.addr, &request),
    )
    .await
    .map_err(|_| "timed out connecting")??;
    // One checked call first: a variant that answers wrongly must not be timed.
    let first = tokio::time::timeout(CONNECT_TIMEOUT, caller.call(&request))
        .await
        .map_err(|_| "first call timed out")??;
    if !first.success {
        return Err("first call returned success = false".into());
    }

    // ANCHOR: closed_loop
    let from = Instant::now() + spec.warmup;
    let until = from + spec.window;
    let mut tasks = JoinSet::new();
    for _ in 0..spec.concurrency {
        let mut caller = caller.clone();
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
    drop(caller);

    let deadline = until + GRACE;
    let mut results = Vec::new();
    while let Some(joined) = tokio::time::timeout_at(deadline.into(), tasks.join_next())
        .await
        .map_err(|_| "calls still in flight long after the window closed")?
    {
        results.push(joined?);
    }
    Ok(results)
}

/// The same closed loop on OS threads, for the blocking `step` client (the
/// course's caller blocks in `CallMethod`): one thread per call in flight.
/// Every call is bounded by the step channel's own connect and read
/// timeouts, so the threads end.
fn run_threads(spec: &LoadSpec) -> Result<Vec<TaskResult>, BoxError> {
    let request = crate::service::sample_request();
    if !step_variant::Client::new(spec.addr, &request)
        .login()?
        .success
    {
        return Err("first call returned success = false".into());
    }
    let from = Instant::now() + spec.warmup;
    let until = from + spec.window;
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
    threads
        .into_iter()
        .map(|t| t.join().map_err(|_| "a caller thread panicked".into()))
        .collect()
}

/// Merges the per-task results into the run's result.
fn summarize(spec: &LoadSpec, results: Vec<TaskResult>) -> Result<LoadResult, BoxError> {
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
    Ok(LoadResult {
        variant: spec.variant,
        concurrency: spec.concurrency,
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
    })
}
