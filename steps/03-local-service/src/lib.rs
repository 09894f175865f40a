//! Step 03: a local service, then the same service behind the generated trait.
//!
//! [`rpc`] is the abstract layer; [`fixbug`] the generated code;
//! [`user_service`] the example services the rest of the tutorial publishes.

pub mod rpc;
pub mod user_service;

// ANCHOR: generated
/// Messages, service traits and stubs of protobuf package `fixbug`.
#[allow(missing_debug_implementations)]
pub mod fixbug {
    include!(concat!(env!("OUT_DIR"), "/fixbug.rs"));
}
// ANCHOR_END: generated
