//! `mprpc bench`: a closed-loop load — N callers, each sending its next
//! call when the last one returns — for a fixed time, then calls/s and
//! latency percentiles. Like `ghz` or brpc's `rpc_press`, and like them a
//! client-side measurement: the latencies include this process's own
//! encoding, scheduling and the network, and nothing here sees the
//! provider's CPU. final/bench measures the framework itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mprpc::{ErrorCode, Metadata, MprpcChannel, MprpcController, ServiceDescriptor};
use prost_reflect::DynamicMessage;

use crate::call;
use crate::schema::Method;

/// What a run measured.
#[derive(Debug)]
pub struct Report {
    /// Calls answered successfully within the window.
    pub ok: u64,
    /// Calls that failed, by code (first seen first).
    pub failed: Vec<(ErrorCode, u64)>,
    /// The window's length.
    pub window: Duration,
    /// Successful calls' latencies, sorted, in microseconds.
    latencies_us: Vec<u32>,
}

impl Report {
    /// The `q` quantile (0..=1) of the latencies, in microseconds.
    fn quantile(&self, q: f64) -> u32 {
        if self.latencies_us.is_empty() {
            return 0;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * q).round() as usize;
        self.latencies_us[i]
    }

    /// The report as text.
    pub fn render(&self, concurrency: usize) -> String {
        let secs = self.window.as_secs_f64();
        let mut out = format!(
            "{} calls in {:.1} s with {concurrency} in flight: {:.0} calls/s\n",
            self.ok,
            secs,
            self.ok as f64 / secs
        );
        out.push_str(&format!(
            "latency p50 {} µs, p99 {} µs, p999 {} µs, max {} µs\n",
            self.quantile(0.5),
            self.quantile(0.99),
            self.quantile(0.999),
            self.latencies_us.last().copied().unwrap_or(0)
        ));
        for (code, n) in &self.failed {
            out.push_str(&format!("failed: {n} × {}\n", code.as_str()));
        }
        out.push_str(
            "(client-side: measured in this process, encoding and network included; the provider's CPU is not seen)\n",
        );
        out
    }
}

/// Runs `concurrency` callers for a 1 s warm-up, then `duration` measured.
pub async fn run(
    channel: MprpcChannel,
    service: &'static ServiceDescriptor,
    method: Method,
    request: DynamicMessage,
    metadata: Metadata,
    concurrency: usize,
    duration: Duration,
) -> Report {
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(1);
    let until = measure_from + duration;
    // Encoded once: a dynamic message walks its descriptor on every encode,
    // which the generated code final/bench calls with does not.
    let request = call::Raw(prost::Message::encode_to_vec(&request));
    let shared = Arc::new((channel, method, request, metadata));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let shared = Arc::clone(&shared);
        tasks.push(tokio::spawn(async move {
            let (channel, method, request, metadata) = &*shared;
            let controller = MprpcController::new();
            let mut lat = Vec::new();
            let mut failed: Vec<(ErrorCode, u64)> = Vec::new();
            loop {
                let t0 = Instant::now();
                if t0 >= until {
                    break;
                }
                controller.reset();
                for (k, v) in metadata.iter() {
                    // Checked when the command line was read: cannot fail.
                    let _ = controller.set_metadata(k, v);
                }
                let r = call::call(channel, &controller, service, method, request).await;
                let t1 = Instant::now();
                if t0 < measure_from || t1 > until {
                    continue;
                }
                match r {
                    Ok(_) => lat.push((t1 - t0).as_micros().min(u32::MAX as u128) as u32),
                    Err(status) => match failed.iter_mut().find(|(c, _)| *c == status.code) {
                        Some((_, n)) => *n += 1,
                        None => failed.push((status.code, 1)),
                    },
                }
            }
            (lat, failed)
        }));
    }
    let mut latencies_us = Vec::new();
    let mut failed: Vec<(ErrorCode, u64)> = Vec::new();
    for task in tasks {
        // A caller task cannot panic on a peer's input; a join error would
        // be a bug here, and costs its samples only.
        if let Ok((lat, f)) = task.await {
            latencies_us.extend(lat);
            for (code, n) in f {
                match failed.iter_mut().find(|(c, _)| *c == code) {
                    Some((_, m)) => *m += n,
                    None => failed.push((code, n)),
                }
            }
        }
    }
    latencies_us.sort_unstable();
    Report {
        ok: latencies_us.len() as u64,
        failed,
        window: duration,
        latencies_us,
    }
}
