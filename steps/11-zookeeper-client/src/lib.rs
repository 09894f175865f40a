//! Step 11: a ZooKeeper client, the course's `ZkClient`.
//!
//! [`rpc`] is the abstract layer; [`fixbug`] the generated code;
//! [`user_service`] the example services the rest of the tutorial publishes,
//! [`user_client`] the example calls to them;
//! [`application`] and [`config`] start the framework from a config file;
//! [`provider`] publishes services and serves calls; [`channel`] makes
//! calls and [`controller`] reports how they went; [`wire`] writes and reads
//! the course's request frame, [`mprpc`] is its generated header;
//! [`logger`] writes the log lines of both sides to daily files, on a
//! thread of its own; [`zk_client`] opens ZooKeeper sessions, creates and
//! reads znodes. (The throw-away ZooKeeper of the demo and the tests is
//! the shared harness `tools/testkit`.)

pub mod application;
pub mod channel;
pub mod config;
pub mod controller;
pub mod logger;
pub mod provider;
pub mod rpc;
pub mod user_client;
pub mod user_service;
pub mod wire;
pub mod zk_client;

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
