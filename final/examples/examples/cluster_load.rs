//! The caller of `scripts/cluster.sh`: keeps `UserServiceRpc.Login` calls
//! running against whatever providers discovery finds, prints calls ok and
//! failed per second, and measures how long each fault took to heal.
//!
//! ```text
//! cargo run -p mprpc-examples --example cluster_load -- -i caller.toml [--seconds 20] [--workers 32]
//! ```
//!
//! Each `SIGUSR1` marks "a fault starts now" (the script sends one when it
//! kills something). At the end, for every mark, it prints the calls that
//! failed until the next mark, when the last of them ended, and the longest
//! stretch without a single successful call. Exit status: 0 if it ran, 1 if
//! it could not start, whatever the calls did (judging them is the script's
//! job).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use mprpc::{ConfigArgs, MprpcChannel};
use mprpc_examples::fixbug::{LoginRequest, UserServiceRpcStub};

/// The command line: mprpc's `-i <file>` and the load's own options.
#[derive(Debug, Parser)]
struct Options {
    /// mprpc's flags.
    #[command(flatten)]
    mprpc: ConfigArgs,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Calls kept in flight (one task each).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    workers: u64,
}

/// One finished call: milliseconds since start, and whether it worked.
type Outcome = (u64, bool);

#[tokio::main]
async fn main() {
    let options = Options::parse();
    let setup = mprpc_examples::cli::setup("cluster_load", &options.mprpc, "mprpc.toml");
    let channel = match MprpcChannel::from_config(&setup.config).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cluster_load: {e}");
            std::process::exit(1);
        }
    };
    run(UserServiceRpcStub::new(channel), options).await;
}

// ANCHOR: load
/// Runs the workers, the per-second report and the fault marks.
async fn run(stub: UserServiceRpcStub, options: Options) {
    let started = Instant::now();
    let since = move || started.elapsed().as_millis() as u64;
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    // The first error of the current second, to show what failing looks like.
    let sample: Arc<Mutex<Option<String>>> = Arc::default();
    let workers: Vec<_> = (0..options.workers)
        .map(|_| {
            let (stub, stop) = (stub.clone(), Arc::clone(&stop));
            let (ok, failed, sample) = (Arc::clone(&ok), Arc::clone(&failed), Arc::clone(&sample));
            tokio::spawn(async move {
                let request = LoginRequest {
                    name: b"zhang san".to_vec(),
                    pwd: b"123456".to_vec(),
                };
                let mut outcomes: Vec<Outcome> = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let result = stub.login(&request).await;
                    outcomes.push((since(), result.is_ok()));
                    match result {
                        Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            let mut s = sample.lock().unwrap_or_else(|p| p.into_inner());
                            s.get_or_insert_with(|| format!("{:?}: {}", e.code, e.message));
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
                outcomes
            })
        })
        .collect();

    let marks = Arc::new(Mutex::new(Vec::new()));
    let marker = tokio::spawn(record_marks(Arc::clone(&marks), since));
    println!(
        "{:>5} {:>8} {:>8}  first error of the second",
        "t(s)", "ok", "failed"
    );
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    for second in 1..=options.seconds {
        tick.tick().await;
        let error = sample.lock().unwrap_or_else(|p| p.into_inner()).take();
        println!(
            "{second:>5} {:>8} {:>8}  {}",
            ok.swap(0, Ordering::Relaxed),
            failed.swap(0, Ordering::Relaxed),
            error.unwrap_or_default()
        );
    }
    stop.store(true, Ordering::Relaxed);
    marker.abort();
    let mut outcomes = Vec::new();
    for w in workers {
        outcomes.extend(w.await.unwrap_or_default());
    }
    outcomes.sort_unstable();
    let marks = marks.lock().unwrap_or_else(|p| p.into_inner()).clone();
    report(&outcomes, &marks);
}

/// Remembers when each `SIGUSR1` arrived (ms since start).
async fn record_marks(marks: Arc<Mutex<Vec<u64>>>, since: impl Fn() -> u64) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut usr1) = signal(SignalKind::user_defined1()) else {
            return;
        };
        while usr1.recv().await.is_some() {
            marks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(since());
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (marks, since);
    }
}

/// For each fault mark: failed calls until the next mark, the last failure
/// and the longest stretch without any successful call.
fn report(outcomes: &[Outcome], marks: &[u64]) {
    let total_failed = outcomes.iter().filter(|(_, ok)| !ok).count();
    println!("total: {} calls, {} failed", outcomes.len(), total_failed);
    for (i, &mark) in marks.iter().enumerate() {
        let end = marks
            .get(i + 1)
            .copied()
            .unwrap_or_else(|| outcomes.last().map_or(mark, |o| o.0));
        let window: Vec<Outcome> = outcomes
            .iter()
            .copied()
            .filter(|&(t, _)| t >= mark && t < end)
            .collect();
        let failures = window.iter().filter(|(_, ok)| !ok).count();
        let last_failure = window
            .iter()
            .rev()
            .find(|(_, ok)| !ok)
            .map(|(t, _)| t - mark);
        let mut gap = 0;
        let mut previous = mark;
        for &(t, ok) in &window {
            if ok {
                gap = gap.max(t - previous);
                previous = t;
            }
        }
        println!(
            "fault {} at t={:.1}s: {} calls until the next mark, {} failed, last failure {}, \
             longest time without a successful call {} ms",
            i + 1,
            mark as f64 / 1000.0,
            window.len(),
            failures,
            last_failure.map_or("none".to_string(), |ms| format!("{ms} ms after the fault")),
            gap
        );
    }
}
// ANCHOR_END: load
