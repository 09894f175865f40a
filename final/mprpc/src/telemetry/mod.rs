//! What the framework tells its operators: Prometheus metrics per method
//! and the admin endpoint that serves them (`metrics`), the caller's
//! metrics (`client_metrics`), the text format both write (`prometheus`), the provider's health (`health`) and the
//! trace context carried from call to call (`trace`; with the `otel`
//! feature taken from OpenTelemetry when it records the spans, `otel`). The spans of each
//! call (`rpc.server`, `rpc.client`) are opened where the call is, in
//! `server/hooks.rs` and `client/channel.rs`.

pub(crate) mod client_metrics;
pub(crate) mod health;
pub(crate) mod metrics;
#[cfg(feature = "otel")]
pub(crate) mod otel;
pub(crate) mod prometheus;
pub(crate) mod trace;
