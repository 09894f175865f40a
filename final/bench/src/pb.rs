//! Message types (and tonic glue) generated from `proto/user.proto` by
//! `build.rs`. The variants that speak protobuf through this crate's own code
//! (tonic, the floor) use these types; `final` and `step` use the types their
//! crates generate from the same file, and convert at the edges.

/// Package `fixbug`: `LoginRequest`, `LoginResponse`, `ResultCode`, and the
/// tonic client/server for `UserServiceRpc`.
#[allow(
    missing_docs,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic
)]
pub mod fixbug {
    tonic::include_proto!("fixbug");
}

/// Package `feed`: `WatchRequest`, `Event`, and the tonic client/server for
/// `Feed`, the streaming section's service.
#[allow(
    missing_docs,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic
)]
pub mod feed {
    tonic::include_proto!("feed");
}
