//! The server side, [`RpcProvider`]: publishes services, accepts connections,
//! dispatches calls (public at its old path, `mprpc::provider`).
//!
//! The course's provider (on muduo) registered services with
//! `NotifyService`, then `Run()` started an event loop whose `OnMessage`
//! assumed each read delivered exactly one whole request, answered it and
//! closed the connection. This one:
//!
//! * tells the new, multiplexed format from the course's format by the
//!   first four bytes of a connection ([`crate::frame`], [`crate::legacy`]);
//! * runs **one task per connection**, not per request. That task reads
//!   frames, starts each handler and polls it once right there; a handler
//!   that completes immediately (most do) is answered without any task
//!   switch or allocation beyond its boxed future. Handlers that really wait
//!   go into a bounded `FuturesUnordered` owned by the same task. Measured
//!   with `examples/load.rs` (release build, provider and caller in one
//!   process on a 2-core machine, one connection): 312,000 calls/s at 128 in
//!   flight handled inline versus 91,000 calls/s with `tokio::spawn` per
//!   request — a spawned task per call costs 3.4× in throughput (55,000
//!   versus 42,000 calls/s with one call in flight). But a handler that
//!   computes without awaiting would hold up every call of its connection,
//!   so only methods whose handlers have proved quick are polled inline;
//!   the others run on tasks of their own (`MethodStats`,
//!   `[handlers]` in the config);
//! * collects all responses produced in one turn of the loop into one
//!   buffer and writes it with one syscall;
//! * enforces `max_connections` (the least productive connection makes room,
//!   `Slots`), `max_in_flight_per_connection`, `max_frame_size`, a memory
//!   budget per connection and in all, and deadlines for the handshake and
//!   for each frame, answering the peer with a clear error;
//! * shuts down gracefully: deregister, stop accepting, send goaway, serve
//!   until callers close, then close ([`RunningProvider::shutdown`]).

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::future::AbortHandle;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

use crate::config::{HandlerMode, MprpcConfig};
use crate::error::{Error, ErrorCode, Status};
use crate::interceptor::{ServerCall, ServerInterceptor};
use crate::metadata::{Metadata, MetadataLimits};
use crate::registry::Registry;
use crate::service::{CallContext, ResponseFuture, Service, ServiceDescriptor};
use crate::telemetry::health::{HealthService, HealthState};
use crate::telemetry::metrics::{AdminPages, MethodMetrics, Metrics};
use crate::telemetry::trace::TraceContext;
use crate::wire::frame::{self, Frame, MAGIC, PREAMBLE};

// How the files fit together: this one builds and runs a provider; `accept`
// takes connections (slots, TLS, the preamble); `connection` runs the mprpc
// loop of one connection and `dispatch` handles its frames; `course` serves
// the course's format; `hooks` wraps every call in interceptors, a span and
// metrics.
mod accept;
mod advertise;
mod connection;
mod course;
mod dispatch;
mod hooks;
pub(crate) mod streams;

use accept::*;
use connection::*;
use hooks::*;

/// A buffer left with more capacity than this once empty is replaced by a
/// small one: one large frame must not pin its memory for the connection's
/// lifetime.
const SHRINK_ABOVE: usize = 32 << 10;

/// How long a closing connection may spend handing its last bytes (queued
/// responses, a connection-error frame) to a peer that may not be reading.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Calls in a row whose every poll stayed under `handlers.inline_budget_us`
/// before a method's handlers are polled inline (adaptive mode).
pub const LEARN_AFTER: u32 = 8;

/// Calls one connection may have running on tasks of their own. More wait,
/// unread, until one finishes: spawning beyond the cores adds no
/// parallelism, and each finished task holds its result until the
/// connection takes it (which it does not while its caller reads nothing).
const MAX_SPAWNED_PER_CONNECTION: usize = 64;

/// A connection at least this long without a frame in progress, a call in
/// flight or a response unsent may be closed (after goaway) to admit a new
/// one at `max_connections`. Slow senders go first, at any age.
const EVICT_IDLE_AFTER: Duration = Duration::from_secs(1);

// ANCHOR: provider
/// Publishes services over TCP (the course's `RpcProvider`).
///
/// ```no_run
/// # async fn demo(service: impl mprpc::Service) -> Result<(), mprpc::Error> {
/// // `service`: a generated adapter, e.g. `KvStoreServer::new(MyStore)`.
/// let config = mprpc::MprpcConfig::default();
/// let mut provider = mprpc::RpcProvider::new(config);
/// provider.notify_service(service);
/// provider.run().await // until Ctrl-C, then graceful shutdown
/// # }
/// ```
pub struct RpcProvider {
    /// Address, limits, timeouts, registry settings.
    config: MprpcConfig,
    /// Published services by full name ("fixbug.UserServiceRpc").
    services: HashMap<Vec<u8>, Arc<dyn Service>>,
    /// Registry override (tests, custom discovery); else from config.
    registry: Option<Arc<dyn Registry>>,
    /// Run before every handler, in order.
    interceptors: Vec<Arc<dyn ServerInterceptor>>,
}
// ANCHOR_END: provider

impl std::fmt::Debug for RpcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcProvider")
            .field(
                "address",
                &format_args!("{}:{}", self.config.rpcserverip, self.config.rpcserverport),
            )
            .field("services", &self.service_names())
            .finish_non_exhaustive()
    }
}

/// A published service, what has been learned about each of its methods
/// and each method's metrics, by method index.
type Published = (
    Arc<dyn Service>,
    Box<[Arc<MethodStats>]>,
    Box<[Arc<MethodMetrics>]>,
);

/// A service ready to dispatch to: fresh statistics and metrics for each
/// of its methods.
fn published_entry(svc: &Arc<dyn Service>) -> Published {
    let methods = svc.descriptor().methods;
    let stats = methods
        .iter()
        .map(|_| Arc::new(MethodStats::default()))
        .collect();
    let metrics = methods
        .iter()
        .map(|_| Arc::new(MethodMetrics::default()))
        .collect();
    (Arc::clone(svc), stats, metrics)
}

/// The methods of `desc` the course's format can carry: the unary ones
/// (it has no way to stream), which are all `course_compat.register`
/// publishes.
fn unary_methods(desc: &ServiceDescriptor) -> Vec<&'static str> {
    (0..desc.methods.len())
        .filter(|&i| desc.method_kind(i) == crate::service::MethodKind::Unary)
        .map(|i| desc.methods[i])
        .collect()
}

/// A service by its short name for the course's format, with its methods'
/// metrics.
pub(crate) type LegacyEntry = (Arc<dyn Service>, Box<[Arc<MethodMetrics>]>);

/// A call's result once it ends: `None` if the caller cancelled it.
type Outcome = Pin<Box<dyn Future<Output = Option<Result<Vec<u8>, Status>>> + Send>>;

/// What every connection task needs, shared read-only.
struct Shared {
    /// Published services by full name ("fixbug.UserServiceRpc"), the name
    /// framed requests carry, with per-method dispatch statistics.
    published: HashMap<Vec<u8>, Published>,
    /// The same services by short name ("UserServiceRpc"), the name the
    /// course's format carries; a short name two services share is left out.
    legacy_services: HashMap<Vec<u8>, LegacyEntry>,
    /// Interceptors, tracing and metrics around every call.
    pub(crate) hooks: Hooks,
    /// `[tls]`: every connection is TLS when set.
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// "A, B" — for "unknown service" messages.
    names: String,
    /// Largest frame accepted or sent.
    max_frame_size: usize,
    /// Handlers allowed to wait at once per connection.
    max_in_flight: usize,
    /// Streams allowed open at once per connection.
    max_streams: usize,
    /// `limits.stream_window_bytes`: the credit granted to a caller's
    /// messages on each client or bidirectional stream.
    stream_window: usize,
    /// Bytes a connection may buffer from its own allowance.
    per_conn: usize,
    /// Bytes connections may borrow for frames above `per_conn`.
    pool: Arc<Semaphore>,
    /// Time from accept to a complete preamble / legacy request.
    handshake: Duration,
    /// Longest time an mprpc connection may make no progress; `None` = no limit.
    idle: Option<Duration>,
    /// Longest time one request frame may take to arrive; `None` = no limit.
    frame: Option<Duration>,
    /// How long shutdown waits for callers.
    drain: Duration,
    /// Inline, spawned or learned.
    mode: HandlerMode,
    /// Longest poll that still counts as quick.
    budget: Duration,
}

impl RpcProvider {
    /// A provider configured by `config` (address, limits, registry).
    pub fn new(config: MprpcConfig) -> RpcProvider {
        RpcProvider {
            config,
            services: HashMap::new(),
            registry: None,
            interceptors: Vec::new(),
        }
    }

    // ANCHOR: add_interceptor
    /// Runs `interceptor` before every handler of this provider, after the
    /// ones added before it (see [`crate::interceptor`]).
    pub fn add_interceptor(&mut self, interceptor: impl ServerInterceptor) -> &mut RpcProvider {
        self.interceptors.push(Arc::new(interceptor));
        self
    }
    // ANCHOR_END: add_interceptor

    /// Uses `registry` instead of the one the config describes.
    pub fn with_registry(mut self, registry: Arc<dyn Registry>) -> RpcProvider {
        self.registry = Some(registry);
        self
    }

    /// Publishes a service (the course's `NotifyService`) under its full
    /// name, [`ServiceDescriptor::full_name`](crate::ServiceDescriptor). A
    /// second service with the same full name replaces the first, with a
    /// warning.
    pub fn notify_service<S: Service>(&mut self, service: S) -> &mut RpcProvider {
        let name = service.descriptor().full_name;
        if self
            .services
            .insert(name.as_bytes().to_vec(), Arc::new(service))
            .is_some()
        {
            log::warn!("service {name} published twice; the last one wins");
        }
        log::info!("published {name}");
        self
    }

    /// Published service names, sorted.
    fn service_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .services
            .keys()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        names.sort();
        names
    }

    // ANCHOR: start
    /// Binds, registers every service with the registry, and starts serving
    /// in the background. Returns a handle for the address and for shutdown.
    pub async fn start(self) -> Result<RunningProvider, Error> {
        // Reach the registry before binding: while ZooKeeper is unreachable
        // (up to `timeouts.zk_connect_ms`) nobody would accept, and callers
        // connecting meanwhile would sit in the kernel's listen backlog
        // until they time out or are reset. Unbound, the port refuses them
        // at once and they try another provider.
        // Bad TLS files fail the start, before anything is announced.
        let tls = crate::tls::acceptor(&self.config.tls)?;
        if tls.is_some() && self.config.course_compat.register {
            return Err(Error::Config(
                "course_compat.register cannot be used with [tls]: the course's callers speak plaintext".into(),
            ));
        }
        let registry = match self.registry.clone() {
            Some(r) => r,
            None => crate::registry::from_config(&self.config).await?,
        };
        // Refused before binding: nothing is listening or announced yet.
        let host = advertise::advertised_host(&self.config, registry.announces()).await?;
        let bind = format!("{}:{}", self.config.rpcserverip, self.config.rpcserverport);
        let listener = listen(&bind)
            .await
            .map_err(|e| Error::io(format!("binding the provider to {bind}"), e))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading the bound address", e))?;
        // Advertise the chosen host with the real port (port 0 in tests).
        let advertised = advertise::with_port(&host, local_addr.port());
        let names = self.service_names();
        // The course layout uses the short names, whatever the framed
        // registry uses.
        let mut course: Vec<&'static ServiceDescriptor> = if self.config.course_compat.register {
            self.services.values().map(|s| s.descriptor()).collect()
        } else {
            Vec::new()
        };
        course.sort_by_key(|d| d.name);
        let limits = &self.config.limits;
        // ANCHOR: health_published
        // The health service is answered like any other, but neither
        // registered nor offered to the course's callers: it is added to
        // `published` only, after the course's table is made.
        let health = Arc::new(HealthState::new(names.clone()));
        let builtin: Arc<dyn Service> = Arc::new(HealthService(Arc::clone(&health)));
        let mut published: HashMap<Vec<u8>, Published> = self
            .services
            .iter()
            .map(|(name, svc)| (name.clone(), published_entry(svc)))
            .collect();
        let legacy_services = legacy_table(&published);
        let mut builtins = vec![builtin];
        // Reflection likewise, and only when the config asks for it: it
        // hands out every published schema (`[reflection]` says why).
        if self.config.reflection.enabled {
            let descriptors = self.services.values().map(|s| s.descriptor());
            builtins.push(crate::reflection::service(descriptors));
        }
        for builtin in &builtins {
            let entry = published_entry(builtin);
            published.insert(builtin.descriptor().full_name.as_bytes().to_vec(), entry);
        }
        // ANCHOR_END: health_published
        // Metrics are collected only when somebody can read them.
        let admin = match &self.config.admin.address {
            Some(addr) => {
                let (listener, local) = crate::telemetry::metrics::bind_admin(addr)
                    .await
                    .map_err(|e| Error::io(format!("binding the admin endpoint to {addr}"), e))?;
                let mut methods: Vec<_> = published
                    .values()
                    .flat_map(|(svc, _, metrics)| {
                        let d = svc.descriptor();
                        d.methods
                            .iter()
                            .zip(metrics.iter())
                            .map(|(m, c)| (d.full_name, *m, Arc::clone(c)))
                    })
                    .collect();
                methods.sort_by_key(|(s, m, _)| (*s, *m));
                Some((listener, local, Arc::new(Metrics::new(methods))))
            }
            None => None,
        };
        let shared = Arc::new(Shared {
            published,
            legacy_services,
            names: names.join(", "),
            max_frame_size: limits.max_frame_size,
            max_in_flight: limits.max_in_flight_per_connection,
            max_streams: limits.max_streams_per_connection,
            stream_window: limits.stream_window_bytes,
            per_conn: limits.max_buffered_per_connection,
            pool: Arc::new(Semaphore::new(limits.max_buffered_total)),
            handshake: Duration::from_millis(self.config.timeouts.handshake_ms.max(1)),
            idle: crate::config::Timeouts::opt(self.config.timeouts.idle_ms),
            frame: crate::config::Timeouts::opt(self.config.timeouts.frame_ms),
            drain: Duration::from_millis(self.config.timeouts.drain_ms),
            mode: self.config.handlers.mode,
            budget: Duration::from_micros(self.config.handlers.inline_budget_us),
            hooks: Hooks {
                interceptors: self.interceptors.into(),
                metrics: admin.as_ref().map(|(_, _, m)| Arc::clone(m)),
                metadata_limits: self.config.metadata_limits(),
            },
            tls,
        });
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        // The admin endpoint outlives the drain (`/readyz` says so), so it
        // has a stop signal of its own, sent when the handle goes.
        let (admin_tx, admin_rx) = watch::channel(false);
        let admin_addr = match admin {
            Some((listener, local, metrics)) => {
                crate::telemetry::client_metrics::enable();
                let pages = AdminPages {
                    server: Some(metrics),
                    health: Some(Arc::clone(&health)),
                };
                tokio::spawn(crate::telemetry::metrics::serve_admin(
                    listener,
                    Arc::new(pages),
                    admin_rx,
                ));
                log::info!("admin endpoint: http://{local}/metrics");
                Some(local)
            }
            None => None,
        };
        // Serve before registering: a caller that learns our address from
        // the registry must find us accepting.
        let task = tokio::spawn(accept_loop(
            listener,
            shared,
            Arc::new(Slots::new(limits.max_connections)),
            shutdown_rx,
        ));
        for name in &names {
            registry.register(name, &advertised).await?;
        }
        // ANCHOR: register_course
        for desc in &course {
            registry
                .register_course(desc.name, &unary_methods(desc), &advertised)
                .await?;
        }
        // ANCHOR_END: register_course
        health.set_registered(Arc::clone(&registry));
        log::info!(
            "provider serving {} on {advertised} (bound to {local_addr})",
            names.join(", ")
        );
        Ok(RunningProvider {
            local_addr,
            admin_addr,
            advertised,
            services: names,
            course,
            registry,
            shutdown_tx,
            admin_tx,
            health,
            task: Some(task),
        })
    }
    // ANCHOR_END: start

    /// Starts, serves until Ctrl-C (or SIGTERM on Unix), then shuts down
    /// gracefully — the course's `Run()`.
    pub async fn run(self) -> Result<(), Error> {
        let running = self.start().await?;
        wait_for_signal().await;
        log::info!("shutdown requested");
        running.shutdown().await
    }
}

/// A started provider. Dropping it without calling
/// [`shutdown`](RunningProvider::shutdown) still stops it gracefully in the
/// background, but nobody waits for that.
#[must_use = "dropping the handle shuts the provider down"]
#[derive(Debug)]
pub struct RunningProvider {
    /// The bound socket address.
    local_addr: SocketAddr,
    /// Where `GET /metrics` is served (`[admin] address`), if anywhere.
    admin_addr: Option<SocketAddr>,
    /// "ip:port" registered with the registry.
    advertised: String,
    /// Published services.
    services: Vec<String>,
    /// Services also published in the course's layout
    /// (`course_compat.register`).
    course: Vec<&'static ServiceDescriptor>,
    /// Where we registered.
    registry: Arc<dyn Registry>,
    /// Flips to `true` to start shutdown.
    shutdown_tx: watch::Sender<bool>,
    /// Flips to `true` to stop the admin endpoint (when the handle goes).
    admin_tx: watch::Sender<bool>,
    /// What the health service and `/readyz` report.
    health: Arc<HealthState>,
    /// The accept loop, which owns every connection task.
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningProvider {
    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound address of the admin endpoint (`[admin] address`), if
    /// configured: `http://<it>/metrics` serves the metrics.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The "host:port" announced to the registry: `advertise_host` (or the
    /// address `"auto"` chose), else `rpcserverip`, with the bound port.
    /// [`local_addr`](Self::local_addr) is where the socket is bound, which
    /// differs when the provider binds `0.0.0.0`.
    pub fn address(&self) -> &str {
        &self.advertised
    }

    // ANCHOR: shutdown
    /// Graceful shutdown, in the order that keeps every caller's call alive:
    ///
    /// 1. deregister from the registry (and the course's layout, with
    ///    `course_compat.register`), so callers stop choosing us;
    /// 2. stop accepting connections;
    /// 3. send goaway on every connection: callers send new calls elsewhere;
    /// 4. keep serving until each caller has closed its side (it does so when
    ///    its last call here completed) or `timeouts.drain_ms` runs out;
    /// 5. close.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        // Health checks and `/readyz` say NOT_SERVING from the first step.
        self.health.set_draining();
        let mut first_err = None;
        // C++ callers first: they have no goaway and look the node up on
        // every call.
        for desc in &self.course {
            if let Err(e) = self
                .registry
                .deregister_course(desc.name, &unary_methods(desc))
                .await
            {
                log::warn!(
                    "withdrawing {} from the course layout failed: {e}",
                    desc.name
                );
                first_err.get_or_insert(e);
            }
        }
        for name in &self.services {
            if let Err(e) = self.registry.deregister(name, &self.advertised).await {
                log::warn!("deregistering {name} failed: {e}; callers will learn from goaway");
                first_err.get_or_insert(e);
            }
        }
        let _ = self.shutdown_tx.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        log::info!("provider {} stopped", self.advertised);
        first_err.map_or(Ok(()), Err)
    }
    // ANCHOR_END: shutdown

    /// Stops at once, without deregistering or draining: open connections
    /// are dropped, calls in flight fail. Simulates a crash in tests; a real
    /// process would just exit.
    pub fn abort(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for RunningProvider {
    fn drop(&mut self) {
        self.health.set_draining();
        let _ = self.shutdown_tx.send(true);
        let _ = self.admin_tx.send(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::MethodKind;

    /// `course_compat.register` publishes a service's unary methods only:
    /// no server, client or bidirectional stream.
    #[test]
    fn the_course_layout_gets_only_unary_methods() {
        static DESC: ServiceDescriptor =
            ServiceDescriptor::new("Feed", "feed.Feed", &["Watch", "Ping", "Upload", "Chat"])
                .with_method_kinds(&[
                    MethodKind::ServerStreaming,
                    MethodKind::Unary,
                    MethodKind::ClientStreaming,
                    MethodKind::Bidi,
                ]);
        assert_eq!(unary_methods(&DESC), ["Ping"]);
    }
}
