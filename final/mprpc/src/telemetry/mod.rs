//! What the framework tells its operators: Prometheus metrics per method
//! and the admin endpoint that serves them (`metrics`). The spans of each
//! call (`rpc.server`, `rpc.client`) are opened where the call is, in
//! `server/hooks.rs` and `client/channel.rs`.

pub(crate) mod metrics;
