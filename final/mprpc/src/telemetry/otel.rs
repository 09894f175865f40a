//! The `otel` feature: the trace context of a call is OpenTelemetry's
//! whenever a `tracing-opentelemetry` layer records mprpc's spans.
//!
//! With such a layer every `tracing` span is also an OpenTelemetry span,
//! with ids of its own. mprpc then takes the ids from there instead of
//! making them: the caller sends its `rpc.client` span's OpenTelemetry
//! context as `traceparent` / `tracestate`, and the provider makes the
//! context it receives the parent of its `rpc.server` span
//! (`set_parent`), so an exporter shows one trace across processes. The
//! span fields `trace_id`, `span_id` and `parent_span_id` carry the same
//! ids, so logs and the exported trace agree.
//!
//! Without a layer (or with a layer of other versions, which
//! `tracing-opentelemetry` cannot find: it looks for its own type), every
//! function here returns `None` and the caller falls back to mprpc's own
//! ids: the feature changes nothing for a program that does not export.

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::trace::TraceContext;

// ANCHOR: otel_client
/// The context of the caller's span `span` (just made, not yet entered),
/// from OpenTelemetry; `explicit` is the `traceparent` the caller set on
/// its controller, which becomes the span's parent. `None` without a
/// layer.
pub(crate) fn client(span: &tracing::Span, explicit: Option<TraceContext>) -> Option<TraceContext> {
    let parent = match explicit {
        Some(remote) => {
            // Must come before anything starts the span (reading its
            // context does): a started span's parent is fixed.
            span.set_parent(remote_context(&remote)).ok()?;
            Some(remote.span_id)
        }
        // The layer took the current span (or context) as the parent.
        None => current_span_id(),
    };
    context_of(span, parent)
}
// ANCHOR_END: otel_client

// ANCHOR: otel_server
/// The context of the provider's span `span` (just made, not yet
/// entered), from OpenTelemetry, with `remote` — the caller's
/// `traceparent` — as its parent. `None` without a layer.
pub(crate) fn server(span: &tracing::Span, remote: Option<&TraceContext>) -> Option<TraceContext> {
    let parent = match remote {
        Some(remote) => {
            span.set_parent(remote_context(remote)).ok()?;
            Some(remote.span_id)
        }
        None => current_span_id(),
    };
    context_of(span, parent)
}
// ANCHOR_END: otel_server

/// An OpenTelemetry context whose span is `remote`, a span of another
/// process.
fn remote_context(remote: &TraceContext) -> opentelemetry::Context {
    // `tracestate` was passed on unchecked; one OpenTelemetry cannot parse
    // is dropped rather than failing the call.
    let state = remote
        .tracestate
        .as_deref()
        .and_then(|s| s.parse::<TraceState>().ok())
        .unwrap_or_default();
    let span = SpanContext::new(
        TraceId::from_bytes(remote.trace_id),
        SpanId::from_bytes(remote.span_id),
        TraceFlags::new(remote.flags),
        true,
        state,
    );
    opentelemetry::Context::new().with_remote_span_context(span)
}

/// The OpenTelemetry span id of the current span (what the layer makes a
/// new span's parent), if there is one.
fn current_span_id() -> Option<[u8; 8]> {
    let from_tracing = tracing::Span::current().context();
    let cx = if from_tracing.has_active_span() {
        from_tracing
    } else {
        opentelemetry::Context::current()
    };
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.span_id().to_bytes())
}

/// `span`'s OpenTelemetry ids as mprpc's [`TraceContext`], with `parent`
/// as the parent recorded; `None` if no layer records the span.
fn context_of(span: &tracing::Span, parent: Option<[u8; 8]>) -> Option<TraceContext> {
    let cx = span.context();
    let otel = cx.span();
    let sc = otel.span_context();
    if !sc.is_valid() {
        return None;
    }
    let state = sc.trace_state().header();
    Some(TraceContext {
        trace_id: sc.trace_id().to_bytes(),
        span_id: sc.span_id().to_bytes(),
        parent_span_id: parent,
        flags: sc.trace_flags().to_u8(),
        tracestate: (!state.is_empty()).then_some(state),
    })
}
