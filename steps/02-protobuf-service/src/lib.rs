//! Step 02: services and stubs generated from `.proto` files.
//!
//! [`rpc`] is the abstract layer (descriptors, `Service`, `RpcChannel`,
//! `RpcController`); [`fixbug`] holds what `build.rs` generated from
//! `proto/user.proto` and `proto/friend.proto` against it.

pub mod rpc;

// ANCHOR: generated
/// Messages, service traits and stubs of protobuf package `fixbug`.
#[allow(missing_debug_implementations)]
pub mod fixbug {
    include!(concat!(env!("OUT_DIR"), "/fixbug.rs"));
}
// ANCHOR_END: generated
