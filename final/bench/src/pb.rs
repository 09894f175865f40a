//! Message types (and tonic glue) generated from `proto/user.proto` and
//! `proto/rpcheader.proto` by `build.rs`. Every variant that speaks protobuf
//! uses these same types, so encoding cost is identical across them.

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

/// Package `mprpc`: the course's `RpcHeader`, used by the `step` variant.
#[allow(
    missing_docs,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic
)]
pub mod mprpc {
    tonic::include_proto!("mprpc");
}
