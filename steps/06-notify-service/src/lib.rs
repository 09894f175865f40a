//! Step 06: the provider publishes services.
//!
//! [`rpc`] is the abstract layer; [`fixbug`] the generated code;
//! [`user_service`] the example services the rest of the tutorial publishes;
//! [`application`] and [`config`] start the framework from a config file;
//! [`provider`] accepts connections, reports what arrives on them, and
//! keeps the table of published services.

pub mod application;
pub mod config;
pub mod provider;
pub mod rpc;
pub mod user_service;

// ANCHOR: generated
/// Messages, service traits and stubs of protobuf package `fixbug`.
#[allow(missing_debug_implementations)]
pub mod fixbug {
    include!(concat!(env!("OUT_DIR"), "/fixbug.rs"));
}
// ANCHOR_END: generated
