//! # mprpc — the course's RPC framework, finished
//!
//! The twelve step crates of this tutorial rebuild the C++ course "mprpc"
//! (muduo + protobuf + ZooKeeper) faithfully: synchronous, one connection
//! per call, one provider per method. This crate is what step 12 would need
//! before it could be deployed. It keeps the course's names — [`RpcProvider`],
//! [`MprpcChannel`], [`MprpcController`], [`MprpcApplication`],
//! [`MprpcConfig`], [`ZkClient`] — and its wire format, and still answers
//! the course's C++ callers byte for byte. Services are yours: describe them
//! in a `.proto` file and let `mprpc-build` generate the glue (below).
//!
//! Like [mini-redis](https://github.com/tokio-rs/mini-redis), it is written to
//! be read: every item is documented, and comments say *why*, and what a
//! production system would do differently where this one stops short.
//!
//! ## Concepts and where they live
//!
//! | course concept | here | public path | source (`src/`) |
//! |---|---|---|---|
//! | `protoc --cpp_out` with `cc_generic_services` | the `mprpc-build` crate, called from a user's `build.rs`, generates per service a descriptor, an async callee trait, a server adapter, async and blocking stubs; [`include_proto!`] includes them | [`codegen`], [`service`] | `codegen.rs`, `service.rs` |
//! | `google::protobuf::Service::CallMethod` | object-safe [`Service`] trait returning a boxed future | [`service`] | `service.rs` |
//! | `RpcProvider::NotifyService` / `Run` | [`RpcProvider::notify_service`], [`RpcProvider::run`] / [`RpcProvider::start`] | [`provider`] | `server/`: `mod.rs` (builder, lifecycle), `accept.rs` (accept loop, connection slots, TLS), `connection.rs` (a connection's reads and writes), `dispatch.rs` (handlers, adaptive fairness), `hooks.rs` (interceptors, metrics, spans) |
//! | `[u32 header_size][RpcHeader][args]`, one call per connection | a preamble, then length-prefixed frames with call ids; many calls in flight per connection | [`frame`] | `wire/frame.rs` |
//! | the same format, for old callers | still served, detected from the first four bytes | [`legacy`] | `wire/course.rs` (codec), `server/course.rs` (served), `client/course.rs` (called) |
//! | `MprpcChannel::CallMethod` | pooled multiplexed connections, load balancing, retries only when safe | [`channel`] | `client/`: `channel.rs` (the call), `channel/pool.rs` (pool, balancing), `connection.rs` + `connection/io.rs` (the connection's tasks), `blocking.rs` |
//! | `MprpcController` (`Failed`, `ErrorText`) | plus deadline and cancellation; error codes carried on the wire | [`controller`], [`error`] | `controller.rs`, `error.rs` |
//! | `MprpcApplication::Init(-i file)`, `MprpcConfig` | TOML with the course's four keys plus limits, timeouts, a static registry; `-i` as a clap [`ConfigArgs`] a program can embed | [`application`], [`config`] | `application.rs`, `config.rs` |
//! | `ZkClient` (`Start`, `Create`, `GetData`) | the same, async, plus watches and session tracking | [`zk_client`] | `zk_client/` (`mod.rs`, `types.rs`) |
//! | `/Service/Method` ephemeral znodes | a [`Registry`]: static (config) or ZooKeeper with cached, watched provider lists; the course's layout too, published and followed with `[course_compat]` | [`registry`] | `registry/` (`mod.rs` static, `zookeeper.rs`, `zookeeper/course.rs`) |
//! | the async logger (queue + writer thread) | behind the `log` facade, installed when the program chooses | [`logger`] | `logger.rs` |
//! | — (the course had none) | [`Metadata`] with each request and response: set on the controller, read in [`CallContext`] | [`metadata`] | `metadata.rs` |
//! | — | [`ServerInterceptor`] / [`ClientInterceptor`]: see every call, change its metadata, refuse it | [`interceptor`] | `interceptor.rs` |
//! | plain TCP only | TLS with rustls: `[tls]` in the config ([`TlsConfig`]), optional client certificates | (private) | `tls.rs` |
//! | `LOG_INFO` lines | plus a `tracing` span per call on both sides (`rpc.server`, `rpc.client`) | [`provider`], [`channel`] | `server/hooks.rs`, `client/channel.rs` |
//! | — | Prometheus metrics per method on `[admin] address` ([`RunningProvider::admin_addr`]) | (private) | `telemetry/metrics.rs`, `telemetry/prometheus.rs` |
//! | — | the caller's metrics per method and per provider, on the same endpoint or [`MprpcApplication::start_admin`]'s | [`metrics`] | `telemetry/client_metrics.rs` |
//! | — | a health service `mprpc.health.v1.Health` on every provider, `/healthz` and `/readyz` on the admin endpoint; the channel asks it before readmitting a provider it ejected | [`health`] | `telemetry/health.rs` (served), `client/health.rs` (`HealthClient`), `client/channel/probe.rs` (readmission) |
//! | — | W3C `traceparent` in request metadata: one trace across A → B → C; with the `otel` feature, OpenTelemetry's ids when `tracing-opentelemetry` records the spans | [`trace`] | `telemetry/trace.rs`, `telemetry/otel.rs` |
//!
//! Dependencies point one way: `server` and `client` use `wire`,
//! `registry`, `telemetry` and the shared types (`config`, `error`,
//! `metadata`, `service`), never each other's insides, and no two modules
//! import each other (`tools/check_modules.py` in the repository fails on a
//! circle, and on a file over 800 lines).
//!
//! The course's example services are not part of this crate: they live in
//! the repository's `final/examples`, built on `mprpc` and `mprpc-build`
//! exactly as any user's crate is.
//!
//! ## A service of your own
//!
//! ```toml
//! # Cargo.toml
//! [dependencies]
//! mprpc = "0.1"
//! tokio = { version = "1", features = ["rt-multi-thread", "macros"] }
//!
//! [build-dependencies]
//! mprpc-build = "0.1"
//! ```
//!
//! ```rust,ignore
//! // build.rs
//! fn main() -> std::io::Result<()> {
//!     mprpc_build::compile_protos(&["proto/kv.proto"], &["proto"])
//! }
//! ```
//!
//! ```rust,ignore
//! // src/main.rs: `service KvStore` of package `kv` becomes a trait `KvStore`,
//! // a `KvStoreServer<T>` adapter and `KvStoreStub` / `BlockingKvStoreStub`.
//! mod kv {
//!     mprpc::include_proto!("kv");
//! }
//! use kv::{GetRequest, GetResponse, KvStore, KvStoreServer, KvStoreStub};
//! use mprpc::{CallContext, MprpcChannel, MprpcConfig, MprpcController, RpcProvider, Status};
//!
//! struct Store;
//! impl KvStore for Store {
//!     async fn get(&self, _ctx: CallContext, req: GetRequest) -> Result<GetResponse, Status> {
//!         Ok(GetResponse { found: false, value: Vec::new() })
//!     }
//!     // put, delete …
//! }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // Callee: publish the service on a free port.
//! let mut config = MprpcConfig::default();
//! config.rpcserverport = 0;
//! let mut provider = RpcProvider::new(config);
//! provider.notify_service(KvStoreServer::new(Store));
//! let running = provider.start().await?;
//!
//! // Caller: a stub over a channel; the controller sets a deadline.
//! let stub = KvStoreStub::new(MprpcChannel::direct(&running.local_addr().to_string()));
//! let controller = MprpcController::with_timeout(std::time::Duration::from_secs(1));
//! match stub.get_with(&controller, &GetRequest { key: "a".into() }).await {
//!     Ok(response) => println!("found = {}", response.found),
//!     Err(status) => println!("call failed: {status} (code {:?})", status.code),
//! }
//!
//! // Graceful shutdown: deregister, drain, close.
//! running.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! ## What the course got wrong, and where it is fixed
//!
//! * One whole request per read assumed → frames are reassembled however TCP
//!   splits or merges them ([`frame::try_decode`], [`legacy`]).
//! * Unknown service/method: no reply, caller hangs → an error code and text
//!   ([`ErrorCode`]); legacy callers get the connection closed.
//! * Response read once into 1024 bytes; empty reply = success → responses
//!   are length-prefixed and carry a status.
//! * A TCP connection and a ZooKeeper session per call → one pooled
//!   connection per provider, one session per process, a watched cache.
//! * One provider per method, no balancing → many providers per service,
//!   round-robin or power-of-two-choices.
//! * No limits → `max_frame_size`, `max_connections`,
//!   `max_in_flight_per_connection`, buffered bytes per connection and in
//!   all, checked before allocating; deadlines for handshakes and frames.
//! * No shutdown → deregister, goaway, drain ([`RunningProvider::shutdown`]).
#![deny(missing_docs)]

/// prost, re-exported: generated messages derive `::mprpc::prost::Message`,
/// so a crate using mprpc needs no prost dependency of its own (and can never
/// have a different version of it). Use it to encode or decode messages
/// yourself: `use mprpc::prost::Message;`.
pub use prost;

/// bytes, re-exported for the same reason as [`prost`].
pub use bytes;

/// Includes the code `mprpc-build` generated for protobuf package `package`
/// (the `package` line of the `.proto` file) from `OUT_DIR`:
///
/// ```rust,ignore
/// pub mod kv {
///     mprpc::include_proto!("kv");
/// }
/// ```
///
/// For a nested package such as `acme.kv`, name it in full:
/// `include_proto!("acme.kv")`.
#[macro_export]
macro_rules! include_proto {
    ($package:tt) => {
        include!(concat!(env!("OUT_DIR"), concat!("/", $package, ".rs")));
    };
}

pub mod application;
pub mod codegen;
pub mod config;
pub mod controller;
pub mod error;
pub mod interceptor;
pub mod logger;
pub mod metadata;
pub mod reflection;
pub mod registry;
pub mod service;
mod tls;
pub mod zk_client;

// The rooms. A call goes from `client` (or arrives at `server`) down
// through `wire`, `registry`, `telemetry` and the shared modules above;
// nothing points back up (`tools/check_layout.py` checks it).
mod client;
mod credit;
mod server;
// Streams of messages, shared by both sides and the service trait.
mod streaming;
mod telemetry;
mod wire;

/// [`MprpcChannel`] and [`BlockingChannel`]: where every stub call goes —
/// discovery, load balancing, the connection pool, deadlines and
/// cancellation. They live in the private `client` folder; this is their
/// public path.
pub mod channel {
    pub use crate::client::{BlockingChannel, MprpcChannel};
}

/// mprpc's own wire format: a preamble, then length-prefixed frames with
/// call ids, and the metadata block. Lives in `wire/frame.rs`.
pub mod frame {
    pub use crate::wire::frame::*;
}

/// The C++ course's wire format, still served and called so existing
/// callers and providers keep working while they migrate: the codec lives
/// in `wire/course.rs`, [`call`](legacy::call) in `client/course.rs`.
pub mod legacy {
    pub use crate::client::course::call;
    pub use crate::wire::course::*;
}

/// The built-in health service `mprpc.health.v1.Health` (grpc.health.v1's
/// messages and numbers): every provider answers it on its own port, and
/// `GET /healthz` / `GET /readyz` on its admin endpoint. The messages live
/// in `telemetry/health.rs`, [`HealthClient`] in
/// `client/health.rs`.
pub mod health {
    pub use crate::client::HealthClient;
    pub use crate::telemetry::health::{
        HEALTH, HealthCheckRequest, HealthCheckResponse, ServingStatus,
    };
}

/// Metrics for programs that serve them on an endpoint of their own (the
/// admin endpoint, `[admin] address`, serves them by itself). Lives in
/// `telemetry/client_metrics.rs`.
pub mod metrics {
    pub use crate::telemetry::client_metrics::MAX_PROVIDERS as MAX_CLIENT_PROVIDERS;

    /// Turns the client-side metrics (`mprpc_client_*`) on for the rest of
    /// the process. An admin endpoint does this when it starts; call it
    /// yourself when you serve [`client_metrics_text`] elsewhere.
    pub fn enable_client_metrics() {
        crate::telemetry::client_metrics::enable();
    }

    /// The client-side metrics in Prometheus' text format (0.0.4): every
    /// `mprpc_client_*` series of this process; empty while they are off.
    pub fn client_metrics_text() -> String {
        crate::telemetry::client_metrics::render()
    }
}

/// W3C trace context (`traceparent`, `tracestate`) carried in request
/// metadata from span to span. Lives in `telemetry/trace.rs`.
///
/// With the cargo feature `otel` (off by default), the ids are
/// OpenTelemetry's whenever a `tracing-opentelemetry` layer records the
/// spans: the caller sends its `rpc.client` span's OpenTelemetry context,
/// and the provider makes the received one the parent of its `rpc.server`
/// span, so an exporter shows one trace across processes. The layer must
/// be of the versions re-exported here (`tracing_opentelemetry` 0.33 on
/// `opentelemetry` 0.32); without one, mprpc's own ids as before.
/// Lives in `telemetry/otel.rs`.
pub mod trace {
    pub use crate::telemetry::trace::{TRACEPARENT, TRACESTATE, TraceContext, current};
    /// The OpenTelemetry API mprpc's `otel` feature is built on.
    #[cfg(feature = "otel")]
    pub use opentelemetry;
    /// The `tracing` layer whose spans mprpc's `otel` feature reads.
    #[cfg(feature = "otel")]
    pub use tracing_opentelemetry;
}

/// [`RpcProvider`]: publishes services, accepts connections, dispatches
/// calls. Lives in the private `server` folder; this is its public path.
pub mod provider {
    pub use crate::server::{LEARN_AFTER, RpcProvider, RunningProvider};
}

pub use application::{AdminEndpoint, ConfigArgs, MprpcApplication};
pub use channel::{BlockingChannel, MprpcChannel};
pub use config::{Admin, CourseCompat, LoadBalance, MprpcConfig, TlsConfig};
pub use controller::MprpcController;
pub use error::{Error, ErrorCode, RpcError, Status};
pub use health::HealthClient;
pub use interceptor::{ClientCall, ClientInterceptor, ServerCall, ServerInterceptor};
pub use metadata::Metadata;
pub use provider::{RpcProvider, RunningProvider};
pub use registry::{ProviderList, Registry, StaticRegistry, ZkRegistry};
pub use service::{
    CallContext, MessageStream, MethodKind, ResponseFuture, Service, ServiceDescriptor,
    StreamFuture,
};
pub use streaming::{BlockingStreaming, Streaming};
pub use zk_client::{ZkAuth, ZkClient};
