//! The caller's metrics: per service and method, calls by code and a
//! latency histogram; per provider address, attempts by code and whether
//! the channel is avoiding it now (ejected).
//!
//! They are process-wide, like the channels' connections are shared by
//! clones: one set of series per program, whatever the number of channels.
//! Off until something turns them on — an admin endpoint starting (a
//! provider's, or [`MprpcApplication::start_admin`]'s), or
//! [`enable`](crate::metrics::enable_client_metrics) for a program that
//! serves [`render`](crate::metrics::client_metrics_text) on its own
//! endpoint. While off, a call pays one relaxed load and nothing else: no
//! clock, no lock, no lookup.
//!
//! Bounds: service and method labels come from the program's own generated
//! descriptors (`&'static` names compiled in), so there are as many as it
//! has methods. Provider labels are addresses taken from the registry or
//! the config — never from a peer's bytes — and at most
//! [`MAX_PROVIDERS`] are kept; calls to any further address are counted
//! under `provider="other"`.
//!
//! [`MprpcApplication::start_admin`]: crate::MprpcApplication::start_admin

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::prometheus::{Histogram, code_label, escape, header};
use crate::error::ErrorCode;

/// Provider addresses given series of their own; the rest share "other".
pub const MAX_PROVIDERS: usize = 256;

/// Every code a caller can see, in the order counted and rendered.
const CODES: [ErrorCode; 17] = [
    ErrorCode::Ok,
    ErrorCode::UnknownService,
    ErrorCode::UnknownMethod,
    ErrorCode::BadRequest,
    ErrorCode::HandlerError,
    ErrorCode::DeadlineExceeded,
    ErrorCode::Overloaded,
    ErrorCode::FrameTooLarge,
    ErrorCode::Unauthenticated,
    ErrorCode::PermissionDenied,
    ErrorCode::Unsupported,
    ErrorCode::Transport,
    ErrorCode::Protocol,
    ErrorCode::BadResponse,
    ErrorCode::Cancelled,
    ErrorCode::NoProvider,
    ErrorCode::Internal,
];

/// Whether anything is collected: the one load on the call path.
static ON: AtomicBool = AtomicBool::new(false);

/// Everything collected, made when first turned on.
static STATE: OnceLock<State> = OnceLock::new();

/// The process's client-side counters.
#[derive(Debug, Default)]
struct State {
    /// Per (service full name, method name).
    methods: Mutex<HashMap<(&'static str, &'static str), Arc<MethodCounters>>>,
    /// Per provider address, at most [`MAX_PROVIDERS`] plus "other".
    providers: Mutex<HashMap<String, Arc<ProviderCounters>>>,
    /// The clock `ejected_until_ms` counts from.
    epoch: OnceLock<Instant>,
}

/// One method's counters.
#[derive(Debug, Default)]
struct MethodCounters {
    /// Calls finished, by code, in the order of [`CODES`].
    calls: [AtomicU64; CODES.len()],
    /// Durations.
    latency: Histogram,
}

/// One provider address's counters.
#[derive(Debug, Default)]
struct ProviderCounters {
    /// Attempts sent to it (or failing to reach it), by code.
    calls: [AtomicU64; CODES.len()],
    /// Until when a channel avoids it, in ms after `State::epoch` (+1, so
    /// that 0 means "not ejected").
    ejected_until_ms: AtomicU64,
}

/// Locks, ignoring poisoning (every critical section is one map update).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Turns collection on for the rest of the process.
pub(crate) fn enable() {
    STATE.get_or_init(State::default);
    ON.store(true, Ordering::Release);
}

/// Whether client metrics are collected (one relaxed load).
#[inline]
pub(crate) fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// The state, once turned on.
fn state() -> Option<&'static State> {
    if enabled() { STATE.get() } else { None }
}

/// The index of `code` in [`CODES`].
fn code_index(code: ErrorCode) -> usize {
    CODES.iter().position(|c| *c == code).unwrap_or(0)
}

/// A call to `service`.`method` ended with `code` after `took`.
#[inline(never)] // only while on
pub(crate) fn record_call(
    service: &'static str,
    method: &'static str,
    code: ErrorCode,
    took: Duration,
) {
    let Some(state) = state() else { return };
    let counters = Arc::clone(lock(&state.methods).entry((service, method)).or_default());
    counters.calls[code_index(code)].fetch_add(1, Ordering::Relaxed);
    counters.latency.observe(took);
}

/// The counters of provider `addr` (or of "other", past the bound).
fn provider(state: &State, addr: &str) -> Arc<ProviderCounters> {
    let mut providers = lock(&state.providers);
    if let Some(c) = providers.get(addr) {
        return Arc::clone(c);
    }
    let key = if providers.len() < MAX_PROVIDERS {
        addr
    } else {
        "other"
    };
    Arc::clone(providers.entry(key.to_string()).or_default())
}

/// An attempt to call provider `addr` (an address from the registry or
/// the config) ended with `code`.
#[inline(never)] // only while on
pub(crate) fn record_attempt(addr: &str, code: ErrorCode) {
    let Some(state) = state() else { return };
    provider(state, addr).calls[code_index(code)].fetch_add(1, Ordering::Relaxed);
}

/// A channel avoids `addr` for `for_`.
#[inline(never)] // only while on
pub(crate) fn record_ejected(addr: &str, for_: Duration) {
    let Some(state) = state() else { return };
    let epoch = *state.epoch.get_or_init(Instant::now);
    let until = epoch.elapsed() + for_;
    let ms = u64::try_from(until.as_millis()).unwrap_or(u64::MAX - 1) + 1;
    provider(state, addr)
        .ejected_until_ms
        .store(ms, Ordering::Relaxed);
}

/// A channel reached `addr` again: no longer avoided.
#[inline(never)] // only while on
pub(crate) fn record_restored(addr: &str) {
    let Some(state) = state() else { return };
    if let Some(c) = lock(&state.providers).get(addr) {
        c.ejected_until_ms.store(0, Ordering::Relaxed);
    }
}

// ANCHOR: render
/// The Prometheus text of every client-side series; empty while off.
pub(crate) fn render() -> String {
    let Some(state) = state() else {
        return String::new();
    };
    let mut out = String::with_capacity(2048);
    let mut methods: Vec<_> = lock(&state.methods)
        .iter()
        .map(|(k, v)| (*k, Arc::clone(v)))
        .collect();
    methods.sort_by_key(|(k, _)| *k);
    let mut providers: Vec<_> = lock(&state.providers)
        .iter()
        .map(|(k, v)| (k.clone(), Arc::clone(v)))
        .collect();
    providers.sort_by(|a, b| a.0.cmp(&b.0));
    let labels = |s: &str, m: &str| format!("service=\"{}\",method=\"{}\"", escape(s), escape(m));
    header(
        &mut out,
        "mprpc_client_calls_total",
        "counter",
        "Calls finished by this process's channels, by service, method and code.",
    );
    for ((s, m), c) in &methods {
        for (code, n) in CODES.iter().zip(&c.calls) {
            let n = n.load(Ordering::Relaxed);
            if n > 0 {
                let code = code_label(*code);
                let _ = writeln!(
                    out,
                    "mprpc_client_calls_total{{{},code=\"{code}\"}} {n}",
                    labels(s, m)
                );
            }
        }
    }
    header(
        &mut out,
        "mprpc_client_call_duration_seconds",
        "histogram",
        "Time from a call's start to its result, as the caller saw it.",
    );
    for ((s, m), c) in &methods {
        let name = "mprpc_client_call_duration_seconds";
        c.latency.render(&mut out, name, &labels(s, m));
    }
    header(
        &mut out,
        "mprpc_client_provider_calls_total",
        "counter",
        "Attempts per provider address (from the registry or the config), by code.",
    );
    for (addr, c) in &providers {
        for (code, n) in CODES.iter().zip(&c.calls) {
            let n = n.load(Ordering::Relaxed);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "mprpc_client_provider_calls_total{{provider=\"{}\",code=\"{}\"}} {n}",
                    escape(addr),
                    code_label(*code)
                );
            }
        }
    }
    header(
        &mut out,
        "mprpc_client_provider_ejected",
        "gauge",
        "1 while a channel avoids the provider after a failure, else 0.",
    );
    let now_ms = state.epoch.get().map_or(0, |e| {
        u64::try_from(e.elapsed().as_millis()).unwrap_or(u64::MAX)
    });
    for (addr, c) in &providers {
        let until = c.ejected_until_ms.load(Ordering::Relaxed);
        let ejected = u8::from(until > now_ms.saturating_add(1));
        let _ = writeln!(
            out,
            "mprpc_client_provider_ejected{{provider=\"{}\"}} {ejected}",
            escape(addr)
        );
    }
    out
}
// ANCHOR_END: render
