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
use crate::{BoxError, course, final_variant, floor, grpc, rpc_tarpc};

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

/// A connected client of any variant. Cloning shares the underlying
/// connection (or, for `step`, just the address).
#[derive(Debug, Clone)]
enum Caller {
    /// mprpc.
    Final(final_variant::Client),
    /// tonic.
    Tonic(grpc::Client),
    /// tarpc.
    Tarpc(rpc_tarpc::Client),
    /// Course design.
    Step(course::Client),
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
            Variant::Step => Caller::Step(course::Client::new(addr)),
            Variant::Floor => Caller::Floor(floor::Client::connect(addr).await?),
        })
    }

    /// One `Login` call.
    async fn call(&mut self, request: &LoginRequest) -> Result<LoginResponse, BoxError> {
        match self {
            Caller::Final(client) => client.login().await,
            Caller::Tonic(client) => client.login(request).await,
            Caller::Tarpc(client) => client.login().await,
            Caller::Step(client) => client.login(request).await,
            Caller::Floor(client) => client.login(request).await,
        }
    }
}

/// What one caller task brings back.
struct TaskResult {
    /// Latencies of successful calls in the window, nanoseconds.
    histogram: Histogram<u64>,
    /// Failed calls in the window.
    errors: u64,
    /// First failure, described.
    first_error: Option<String>,
}

/// A histogram covering 1 ns to a minute at 3 significant digits.
fn new_histogram() -> Result<Histogram<u64>, BoxError> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).map_err(|e| format!("histogram: {e:?}").into())
}

/// Runs one load run as described by `spec`.
pub async fn run(spec: &LoadSpec) -> Result<LoadResult, BoxError> {
    if spec.concurrency == 0 {
        return Err("concurrency must be at least 1".into());
    }
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
        let mut histogram = new_histogram()?;
        tasks.spawn(async move {
            let mut errors = 0;
            let mut first_error = None;
            loop {
                let start = Instant::now();
                if start >= until {
                    break;
                }
                let outcome = caller.call(&request).await;
                let end = Instant::now();
                if end < from || end > until {
                    continue;
                }
                match outcome {
                    Ok(response) if response.success => {
                        let nanos = u64::try_from((end - start).as_nanos()).unwrap_or(u64::MAX);
                        histogram.saturating_record(nanos.max(1));
                    }
                    Ok(_) => {
                        errors += 1;
                        first_error
                            .get_or_insert_with(|| "response with success = false".to_owned());
                    }
                    Err(err) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| err.to_string());
                    }
                }
            }
            TaskResult {
                histogram,
                errors,
                first_error,
            }
        });
    }
    // ANCHOR_END: closed_loop
    drop(caller);

    let deadline = until + GRACE;
    let mut total = new_histogram()?;
    let mut errors = 0;
    let mut first_error = None;
    while let Some(joined) = tokio::time::timeout_at(deadline.into(), tasks.join_next())
        .await
        .map_err(|_| "calls still in flight long after the window closed")?
    {
        let task = joined?;
        total
            .add(&task.histogram)
            .map_err(|e| format!("histogram merge: {e:?}"))?;
        errors += task.errors;
        if first_error.is_none() {
            first_error = task.first_error;
        }
    }

    let window_s = spec.window.as_secs_f64();
    let us = |ns: u64| ns as f64 / 1_000.0;
    Ok(LoadResult {
        variant: spec.variant,
        concurrency: spec.concurrency,
        window_s,
        calls: total.len(),
        errors,
        calls_per_sec: total.len() as f64 / window_s,
        p50_us: us(total.value_at_quantile(0.50)),
        p99_us: us(total.value_at_quantile(0.99)),
        p999_us: us(total.value_at_quantile(0.999)),
        max_us: us(total.max()),
        mean_us: total.mean() / 1_000.0,
        first_error,
    })
}
