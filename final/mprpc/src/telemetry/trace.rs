//! Trace context across calls: W3C Trace Context (`traceparent`,
//! `tracestate`) carried in the request metadata, so that a caller's
//! `rpc.client` span, the provider's `rpc.server` span and the calls its
//! handler makes form one trace, A → B → C.
//!
//! No OpenTelemetry needed: mprpc makes the ids itself and records them on
//! its spans as the fields `trace_id`, `span_id` and `parent_span_id`, so
//! any `tracing` subscriber (a log file, a JSON formatter) shows the links.
//! With the `otel` feature and a `tracing-opentelemetry` layer, the ids
//! are OpenTelemetry's instead (`telemetry/otel.rs`), carried the same way.
//! Inside a handler the context is a tokio task-local, set around the
//! handler's future on every poll, wherever it runs; [`current`] reads it.
//!
//! Pay-for-use: contexts are made only for calls whose span is recorded
//! (a subscriber takes INFO spans); with tracing off a call does not look
//! at trace metadata at all, and a `traceparent` it receives is passed to
//! nobody.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::metadata::Metadata;

/// The metadata key of the W3C trace context.
pub const TRACEPARENT: &str = "traceparent";
/// The metadata key of vendor trace state, passed on unchanged.
pub const TRACESTATE: &str = "tracestate";

// ANCHOR: context
/// One span's place in a trace, as `traceparent` carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TraceContext {
    /// The trace every span of one request shares (never all zeros).
    pub trace_id: [u8; 16],
    /// This span (never all zeros).
    pub span_id: [u8; 8],
    /// The span this one is a child of, if any.
    pub parent_span_id: Option<[u8; 8]>,
    /// `traceparent`'s flags (bit 0: sampled).
    pub flags: u8,
    /// `tracestate`, passed on unchanged.
    pub tracestate: Option<String>,
}
// ANCHOR_END: context

tokio::task_local! {
    /// The context of the handler being polled.
    static CURRENT: TraceContext;
}

impl TraceContext {
    /// A new trace: fresh ids, no parent, sampled.
    pub fn new_root() -> TraceContext {
        let hi = next_id();
        let lo = next_id();
        let mut trace_id = [0u8; 16];
        trace_id[..8].copy_from_slice(&hi.to_be_bytes());
        trace_id[8..].copy_from_slice(&lo.to_be_bytes());
        TraceContext {
            trace_id,
            span_id: next_id().to_be_bytes(),
            parent_span_id: None,
            flags: 1,
            tracestate: None,
        }
    }

    /// A child of this span: same trace, new span id, this one as parent.
    pub fn child(&self) -> TraceContext {
        TraceContext {
            trace_id: self.trace_id,
            span_id: next_id().to_be_bytes(),
            parent_span_id: Some(self.span_id),
            flags: self.flags,
            tracestate: self.tracestate.clone(),
        }
    }

    /// Parses a `traceparent` value: `00-<32 hex>-<16 hex>-<2 hex>`
    /// (lower case; all-zero ids invalid). Later versions may append
    /// fields after a further `-`, which are ignored, as the
    /// specification asks. `None` if it is not valid.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<TraceContext> {
        let v = traceparent.as_bytes();
        if v.len() < 55 || v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
            return None;
        }
        let version = hex_bytes::<1>(&v[0..2])?[0];
        // Version ff is invalid; 00 is exactly 55 bytes long.
        if version == 0xff || (version == 0 && v.len() != 55) || (v.len() > 55 && v[55] != b'-') {
            return None;
        }
        let trace_id = hex_bytes::<16>(&v[3..35])?;
        let span_id = hex_bytes::<8>(&v[36..52])?;
        let flags = hex_bytes::<1>(&v[53..55])?[0];
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(TraceContext {
            trace_id,
            span_id,
            parent_span_id: None,
            flags,
            tracestate: tracestate.map(str::to_string),
        })
    }

    /// The `traceparent` value naming this span as the parent.
    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.span_id),
            self.flags
        )
    }

    /// The context a request's metadata carries, if valid.
    pub fn from_metadata(md: &Metadata) -> Option<TraceContext> {
        TraceContext::parse(md.get(TRACEPARENT)?, md.get(TRACESTATE))
    }

    /// Writes `traceparent` (and `tracestate`) naming this span into `md`.
    pub(crate) fn inject(&self, md: &mut Metadata) {
        // Both values are ASCII and short: insert cannot refuse them.
        let _ = md.insert(TRACEPARENT, self.traceparent());
        if let Some(state) = &self.tracestate {
            let _ = md.insert(TRACESTATE, state.as_str());
        }
    }

    /// Records the ids on `span` (fields `trace_id`, `span_id`,
    /// `parent_span_id`, declared empty where the span was made).
    pub(crate) fn record(&self, span: &tracing::Span) {
        span.record("trace_id", hex(&self.trace_id).as_str());
        span.record("span_id", hex(&self.span_id).as_str());
        if let Some(parent) = &self.parent_span_id {
            span.record("parent_span_id", hex(parent).as_str());
        }
    }
}

/// The trace context of the handler running now, if any: what calls made
/// from it carry as their parent. `None` outside handlers, and inside
/// handlers whose call is not traced (tracing off).
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(Clone::clone).ok()
}

/// `future` with `ctx` as the current context on every poll.
pub(crate) fn scope<F: std::future::Future>(
    ctx: TraceContext,
    future: F,
) -> impl std::future::Future<Output = F::Output> {
    CURRENT.scope(ctx, future)
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `N` bytes from `2N` lower-case hex digits.
fn hex_bytes<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        let d = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        out[i] = d(pair[0])? << 4 | d(pair[1])?;
    }
    Some(out)
}

/// A new non-zero 64-bit id: SplitMix64 over a counter seeded once from
/// the process's random hasher keys and the clock. Unique and unguessable
/// enough for tracing (ids are not secrets), with no dependency.
fn next_id() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        h.write_u64(now);
        h.write_u32(std::process::id());
        h.finish()
    });
    loop {
        let n = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        let mut z = n.wrapping_add(seed);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        if z != 0 {
            return z;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_bad_values_are_refused() {
        let v = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let ctx = TraceContext::parse(v, Some("congo=t61rcWkgMzE")).expect("valid");
        assert_eq!(ctx.traceparent(), v);
        assert_eq!(
            ctx.span_id,
            [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
        );
        let child = ctx.child();
        assert_eq!(child.trace_id, ctx.trace_id);
        assert_eq!(child.parent_span_id, Some(ctx.span_id));
        assert_ne!(child.span_id, ctx.span_id);
        assert_eq!(child.tracestate.as_deref(), Some("congo=t61rcWkgMzE"));
        // A later version may append fields.
        let future = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra";
        assert!(TraceContext::parse(future, None).is_some());
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\u{e9}",
        ] {
            assert_eq!(TraceContext::parse(bad, None), None, "{bad:?}");
        }
    }

    #[test]
    fn roots_are_distinct_and_never_zero() {
        let a = TraceContext::new_root();
        let b = TraceContext::new_root();
        assert_ne!(a.trace_id, b.trace_id);
        assert_ne!(a.trace_id, [0; 16]);
        assert_eq!(a.parent_span_id, None);
        assert!(TraceContext::parse(&a.traceparent(), None).is_some());
    }
}
