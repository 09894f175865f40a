//! Loopback benchmark of one RPC, `UserServiceRpc.Login`, served five ways:
//!
//! | variant | what it is |
//! |---|---|
//! | `final` | this tutorial's finished framework (`mprpc`, crate in `final/`) |
//! | `tonic` | gRPC over HTTP/2 with tonic, one shared `Channel` |
//! | `tarpc` | tarpc over TCP with bincode, one shared client |
//! | `step`  | the course's design (`steps/12-…`): a new TCP connection per call |
//! | `floor` | raw tokio + prost: length-prefixed frames with a request id on one connection |
//!
//! Servers and the load generator are separate processes (the same `bench`
//! binary started with `server` or `load`); the driver in [`driver`] starts
//! them, collects the numbers and writes the report. A streaming section
//! ([`stream`]) measures messages/s of one server stream for `final`,
//! tonic and a hand-written floor. See the book chapter
//! *Performance* for how to run it and how to read the results.

pub mod chart;
pub mod driver;
pub mod final_variant;
pub mod floor;
pub mod grpc;
pub mod load;
pub mod pb;
pub mod report;
pub mod rpc_tarpc;
pub mod scale;
pub mod server;
pub mod service;
pub mod step_variant;
pub mod stream;
pub mod variant;

/// Error type used across the benchmark: any error, sendable between tasks.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
