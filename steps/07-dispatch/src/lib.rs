//! Step 07: the provider dispatches calls.
//!
//! [`rpc`] is the abstract layer; [`fixbug`] the generated code;
//! [`user_service`] the example services the rest of the tutorial publishes;
//! [`application`] and [`config`] start the framework from a config file;
//! [`provider`] keeps the table of published services and serves calls;
//! [`wire`] reads the course's request frame ([`mprpc`]: its header).

pub mod application;
pub mod config;
pub mod provider;
pub mod rpc;
pub mod user_service;
pub mod wire;

// ANCHOR: generated
/// Messages, service traits and stubs of protobuf package `fixbug`.
#[allow(missing_debug_implementations)]
pub mod fixbug {
    include!(concat!(env!("OUT_DIR"), "/fixbug.rs"));
}
// ANCHOR_END: generated

// ANCHOR: generated_header
/// `RpcHeader`, the header of every request (package `mprpc`).
pub mod mprpc {
    include!(concat!(env!("OUT_DIR"), "/mprpc.rs"));
}
// ANCHOR_END: generated_header
