//! What runs around every call: interceptors, the `rpc.server` span and the
//! per-method metrics.

use super::*;

// ANCHOR: hooks
/// What runs around every call, framed or in the course's format: the
/// interceptors, a tracing span and the metrics.
pub(crate) struct Hooks {
    /// `RpcProvider::add_interceptor`, in order.
    pub(super) interceptors: Box<[Arc<dyn ServerInterceptor>]>,
    /// Present when `[admin] address` is set.
    pub(crate) metrics: Option<Arc<Metrics>>,
    /// `limits.max_metadata_*`.
    pub(super) metadata_limits: MetadataLimits,
}

/// One call's span, clock, metrics and response metadata, from the moment
/// its method is known until it is answered.
///
/// Small on purpose (three words): it travels inside every call's future,
/// and the provider moves those. Everything that exists only while tracing
/// or metrics are on lives behind one `Box`, made only then.
pub(crate) struct CallEnd {
    /// Span, clock and counters; `None` when neither a tracing subscriber
    /// wants the span nor metrics are on.
    pub(super) observed: Option<Box<Observed>>,
    /// Response metadata added by interceptors (rare: boxed).
    pub(super) extra: Option<Box<Metadata>>,
    /// The handler's response metadata (shared with its [`CallContext`]);
    /// `None` for course-format calls, which cannot carry any.
    pub(super) handler: Option<ResponseCell>,
}

/// What [`CallEnd`] keeps while tracing or metrics are on.
pub(super) struct Observed {
    /// `rpc.server`.
    pub(super) span: tracing::Span,
    /// When the call started.
    pub(super) started: Instant,
    /// The method's counters, when metrics are on.
    pub(super) metrics: Option<Arc<MethodMetrics>>,
    /// The call's place in its trace, once its metadata is read.
    pub(super) trace: Option<TraceContext>,
}

/// Who is calling what: what an interceptor is shown.
pub(crate) struct Who {
    /// The call's service and method.
    pub(crate) desc: &'static ServiceDescriptor,
    /// Index of the method in `desc`.
    pub(crate) index: usize,
    /// The caller.
    pub(crate) peer: SocketAddr,
    /// Id on its connection (0: course format).
    pub(crate) call_id: u64,
    /// Course format.
    pub(crate) legacy: bool,
}

impl Hooks {
    /// Starts observing the call `who`, which arrived at `now`, counted in
    /// `metrics` (when metrics are on).
    #[inline]
    pub(crate) fn begin(&self, who: &Who, metrics: &Arc<MethodMetrics>, now: Instant) -> CallEnd {
        // With metrics off and no subscriber taking INFO spans, nothing is
        // made at all: one load, where `info_span!` would still build a
        // disabled span (and, where `tracing`'s `log` feature is on, offer
        // its fields to the logger).
        let observed = if self.metrics.is_none() && !tracing::level_enabled!(tracing::Level::INFO) {
            None
        } else {
            self.observe(who, metrics, now)
        };
        CallEnd {
            observed,
            extra: None,
            handler: None,
        }
    }

    /// The span, clock and counters of the call `who`, if anything records
    /// them.
    #[inline(never)] // out of the everything-off path
    pub(super) fn observe(
        &self,
        who: &Who,
        metrics: &Arc<MethodMetrics>,
        now: Instant,
    ) -> Option<Box<Observed>> {
        let span = tracing::info_span!(
            "rpc.server",
            service = who.desc.full_name,
            method = who.desc.methods[who.index],
            call_id = who.call_id,
            peer = %who.peer,
            legacy = who.legacy,
            status = tracing::field::Empty,
            duration_us = tracing::field::Empty,
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
            parent_span_id = tracing::field::Empty,
        );
        let metrics = self.metrics.as_ref().map(|_| {
            metrics.start();
            Arc::clone(metrics)
        });
        (metrics.is_some() || !span.is_disabled()).then(|| {
            Box::new(Observed {
                span,
                started: now,
                metrics,
                trace: None,
            })
        })
    }

    /// Runs the interceptors on the call `who` with request metadata
    /// `metadata`; returns the metadata the handler sees, or the refusal.
    #[inline]
    pub(crate) fn intercept(
        &self,
        end: &mut CallEnd,
        who: &Who,
        metadata: Metadata,
    ) -> Result<Metadata, Status> {
        if self.interceptors.is_empty() {
            return Ok(metadata);
        }
        self.run_interceptors(end, who, metadata)
    }

    /// [`intercept`](Self::intercept) when there are interceptors.
    #[inline(never)] // out of the everything-off path
    pub(super) fn run_interceptors(
        &self,
        end: &mut CallEnd,
        who: &Who,
        metadata: Metadata,
    ) -> Result<Metadata, Status> {
        let mut call = ServerCall {
            service: who.desc.full_name,
            method: who.desc.methods[who.index],
            peer: who.peer,
            call_id: who.call_id,
            legacy: who.legacy,
            metadata,
            response_metadata: Metadata::new(),
        };
        let verdict = self
            .interceptors
            .iter()
            .try_for_each(|i| i.intercept(&mut call));
        if !call.response_metadata.is_empty() {
            end.extra = Some(Box::new(call.response_metadata));
        }
        verdict.map(|()| call.metadata)
    }
}

// ANCHOR: server_trace
/// The trace context of the provider's span `span`: a child of `remote`,
/// the caller's `traceparent`, else the root of a new trace. With the
/// `otel` feature and a layer recording `span`, OpenTelemetry's ids for it,
/// `remote` its parent.
fn server_trace(span: &tracing::Span, remote: Option<TraceContext>) -> TraceContext {
    #[cfg(feature = "otel")]
    if let Some(ctx) = crate::telemetry::otel::server(span, remote.as_ref()) {
        return ctx;
    }
    #[cfg(not(feature = "otel"))]
    let _ = span;
    remote.map_or_else(TraceContext::new_root, |parent| parent.child())
}
// ANCHOR_END: server_trace

impl CallEnd {
    // ANCHOR: trace_from
    /// Places the call in the trace its caller's `traceparent` names (a
    /// child of the caller's span), or starts a trace; records the ids on
    /// the span. Only while the span is recorded.
    #[inline]
    pub(crate) fn trace_from(&mut self, metadata: &Metadata) {
        if let Some(o) = self.observed.as_mut().filter(|o| !o.span.is_disabled()) {
            let ctx = server_trace(&o.span, TraceContext::from_metadata(metadata));
            ctx.record(&o.span);
            o.trace = Some(ctx);
        }
    }

    /// `future` running inside this call's span, with its trace context
    /// current (for the calls the handler makes), if anyone records spans;
    /// else `future` itself (no wrapper, no allocation).
    #[inline]
    pub(crate) fn in_span(&self, future: ResponseFuture) -> ResponseFuture {
        match &self.observed {
            Some(o) if !o.span.is_disabled() => {
                // Course-format calls carry no metadata: a trace of their own.
                let ctx = o.trace.clone().unwrap_or_else(|| {
                    let root = server_trace(&o.span, None);
                    root.record(&o.span);
                    root
                });
                let future = crate::telemetry::trace::scope(ctx, future);
                Box::pin(tracing::Instrument::instrument(future, o.span.clone()))
            }
            _ => future,
        }
    }
    // ANCHOR_END: trace_from

    /// The response metadata: the interceptors', then the handler's; and
    /// the handler's cell, emptied, when nothing else holds it any more
    /// (the handler has returned and kept no clone of its context): then
    /// it takes no lock, and can serve another call.
    #[inline]
    pub(super) fn take_response_metadata(&mut self) -> (Metadata, Option<ResponseCell>) {
        let mut md = self.extra.take().map_or_else(Metadata::new, |b| *b);
        let Some(mut cell) = self.handler.take() else {
            return (md, None);
        };
        let (theirs, spare) = match Arc::get_mut(&mut cell) {
            Some(alone) => (
                std::mem::take(alone.get_mut().unwrap_or_else(|p| p.into_inner())),
                true,
            ),
            None => (
                std::mem::take(&mut *cell.lock().unwrap_or_else(|p| p.into_inner())),
                false,
            ),
        };
        if !theirs.is_empty() {
            md.extend_from(theirs);
        }
        (md, spare.then_some(cell))
    }

    /// Records how the call ended: the code sent, or `None` if the caller
    /// cancelled it.
    #[inline]
    pub(crate) fn finish(mut self, code: Option<ErrorCode>) {
        self.record(code);
    }

    /// Records the outcome once (later calls do nothing).
    #[inline]
    pub(super) fn record(&mut self, code: Option<ErrorCode>) {
        if let Some(o) = self.observed.take() {
            o.close(code);
        }
    }
}

impl Observed {
    /// Counts the call's end and fills in its span's last fields.
    pub(super) fn close(&self, code: Option<ErrorCode>) {
        let took = self.started.elapsed();
        if let Some(m) = &self.metrics {
            m.finish(took, code);
        }
        self.span
            .record("status", code.map_or("cancelled", ErrorCode::as_str));
        self.span.record("duration_us", took.as_micros() as u64);
    }
}

impl Drop for CallEnd {
    /// A call dropped unanswered — its connection closed, or the provider
    /// shut down, while it ran — ends as cancelled: the in-flight gauge
    /// must not keep counting it.
    #[inline]
    fn drop(&mut self) {
        self.record(None);
    }
}
// ANCHOR_END: hooks
