//! [`RpcProvider`]: publishes services, accepts connections, dispatches calls.
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
use crate::frame::{self, Frame, MAGIC, PREAMBLE};
use crate::interceptor::{ServerCall, ServerInterceptor};
use crate::metadata::{Metadata, MetadataLimits};
use crate::metrics::{MethodMetrics, Metrics};
use crate::registry::Registry;
use crate::service::{CallContext, ResponseFuture, Service, ServiceDescriptor};

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
        let bind = format!("{}:{}", self.config.rpcserverip, self.config.rpcserverport);
        let listener = listen(&bind)
            .await
            .map_err(|e| Error::io(format!("binding the provider to {bind}"), e))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading the bound address", e))?;
        // Advertise the configured ip with the real port (port 0 in tests).
        let advertised = format!("{}:{}", self.config.rpcserverip, local_addr.port());
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
        let published: HashMap<Vec<u8>, Published> = self
            .services
            .iter()
            .map(|(name, svc)| {
                let methods = svc.descriptor().methods;
                let stats = methods
                    .iter()
                    .map(|_| Arc::new(MethodStats::default()))
                    .collect();
                let metrics = methods
                    .iter()
                    .map(|_| Arc::new(MethodMetrics::default()))
                    .collect();
                (name.clone(), (Arc::clone(svc), stats, metrics))
            })
            .collect();
        let legacy_services = legacy_table(&published);
        // Metrics are collected only when somebody can read them.
        let admin = match &self.config.admin.address {
            Some(addr) => {
                let (listener, local) = crate::metrics::bind_admin(addr)
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
        let admin_addr = match admin {
            Some((listener, local, metrics)) => {
                tokio::spawn(crate::metrics::serve_admin(
                    listener,
                    metrics,
                    shutdown_rx.clone(),
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
                .register_course(desc.name, desc.methods, &advertised)
                .await?;
        }
        // ANCHOR_END: register_course
        log::info!("provider serving {} on {advertised}", names.join(", "));
        Ok(RunningProvider {
            local_addr,
            admin_addr,
            advertised,
            services: names,
            course,
            registry,
            shutdown_tx,
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

// ANCHOR: listen
/// Pending connections the kernel queues for `accept` (Linux caps it at
/// `net.core.somaxconn`, 4096 by default). `TcpListener::bind` uses 128, as
/// the standard library does: a burst of more than 128 connections (a
/// restart of many callers, or a flood) then overflows the queue, the kernel
/// drops the excess SYNs and those callers retry only after 1 s — longer
/// than the default `connect_ms`. Measured in `tests/hostile_clients.rs`.
const LISTEN_BACKLOG: u32 = 1024;

/// Binds `addr` ("ip:port", or "host:port" resolved once) and listens with
/// [`LISTEN_BACKLOG`].
async fn listen(addr: &str) -> std::io::Result<TcpListener> {
    let mut last_err = None;
    for a in tokio::net::lookup_host(addr).await? {
        let socket = if a.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        // As TcpListener::bind does: a restarted provider can rebind while
        // old connections linger in TIME_WAIT.
        socket.set_reuseaddr(true)?;
        match socket.bind(a).and_then(|()| socket.listen(LISTEN_BACKLOG)) {
            Ok(listener) => return Ok(listener),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "address resolves to nothing",
        )
    }))
}
// ANCHOR_END: listen

/// Waits for Ctrl-C or SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
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

    /// The "ip:port" announced to the registry.
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
        let mut first_err = None;
        // C++ callers first: they have no goaway and look the node up on
        // every call.
        for desc in &self.course {
            if let Err(e) = self
                .registry
                .deregister_course(desc.name, desc.methods)
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
        let _ = self.shutdown_tx.send(true);
    }
}

// ANCHOR: accept_loop
/// Accepts connections until shutdown, then waits (up to the drain timeout)
/// for the connection tasks to finish.
async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    slots: Arc<Slots>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    // Each connection gets its own receiver; this one is only waited on.
    let for_conns = shutdown.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    match Slots::admit(&slots) {
                        Some(slot) => {
                            conns.spawn(serve_connection(stream, peer, Arc::clone(&shared), for_conns.clone(), slot));
                        }
                        // Refusals run on a task of their own so that a
                        // slow peer cannot stall accepting; the handshake
                        // timeout bounds how long each one lives.
                        None => {
                            log::warn!("refusing {peer}: max_connections = {} reached, every connection busy", slots.max);
                            conns.spawn(refuse(stream, Arc::clone(&shared), slots.max));
                        }
                    }
                }
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    log::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = stopped(&mut shutdown) => break,
        }
    }
    drop(listener);
    let drain = tokio::time::sleep(shared.drain);
    tokio::pin!(drain);
    loop {
        tokio::select! {
            next = conns.join_next() => if next.is_none() { break },
            _ = &mut drain => {
                log::warn!("drain timeout: closing {} connections that are still busy", conns.len());
                conns.abort_all();
                break;
            }
        }
    }
}
// ANCHOR_END: accept_loop

/// Completes when shutdown is requested (or the handle is gone).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`; drop it here.
    let _ = rx.wait_for(|stop| *stop).await.map(|_| ());
}

/// What a connection is doing, for choosing whom to close at
/// `max_connections`. Stored in [`Slot::phase`].
mod phase {
    /// Accepted; the preamble (framed) or the request (legacy) is not
    /// complete.
    pub const HANDSHAKE: u8 = 0;
    /// A request frame has started arriving and is not complete.
    pub const PARTIAL: u8 = 1;
    /// Responses wait to be written and the caller does not take them.
    pub const STALLED: u8 = 2;
    /// Nothing in progress in either direction.
    pub const IDLE: u8 = 3;
    /// Calls running or responses being written: never evicted.
    pub const BUSY: u8 = 4;
}

// ANCHOR: slots
/// The provider's open connections, for `max_connections`.
///
/// A plain semaphore would lock callers out for as long as the admitted
/// connections stay: 1,024 slow senders, each trickling a byte just often
/// enough, would hold every slot. Instead, at the limit the least
/// productive connection makes room: the one that has been longest in the
/// handshake or in the middle of a frame, else the one that has been
/// longest stalled on responses it does not read, else one idle for at least
/// [`EVICT_IDLE_AFTER`]. A connection with calls running is never evicted;
/// when every connection is running calls, the newcomer is refused.
struct Slots {
    /// `limits.max_connections`.
    max: usize,
    /// Time origin of [`Slot::since`].
    epoch: Instant,
    /// Open connections by serial number.
    table: Mutex<HashMap<u64, Arc<Slot>>>,
    /// Next serial number.
    next: AtomicU64,
    /// Connections told to close that have not yet closed: they no longer
    /// count against `max`.
    evicting: AtomicUsize,
}

/// One connection's entry in [`Slots`].
struct Slot {
    /// One of [`phase`].
    phase: AtomicU8,
    /// When the current phase began, in nanoseconds since [`Slots::epoch`].
    since: AtomicU64,
    /// Set once the connection has been chosen to make room.
    evicted: AtomicBool,
    /// Wakes the connection's task to close.
    evict: Notify,
    /// The table, for the phase clock and for removal.
    slots: Arc<Slots>,
    /// Key in the table.
    serial: u64,
}

impl Slots {
    /// No connections yet.
    fn new(max: usize) -> Slots {
        Slots {
            max,
            epoch: Instant::now(),
            table: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
            evicting: AtomicUsize::new(0),
        }
    }

    /// Nanoseconds since the epoch.
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// A slot for a new connection, making room if needed; `None` when
    /// every connection is busy.
    fn admit(this: &Arc<Slots>) -> Option<Arc<Slot>> {
        let mut table = lock(&this.table);
        if table
            .len()
            .saturating_sub(this.evicting.load(Ordering::SeqCst))
            >= this.max
        {
            let victim = this.least_productive(&table)?;
            victim.evicted.store(true, Ordering::SeqCst);
            this.evicting.fetch_add(1, Ordering::SeqCst);
            victim.evict.notify_one();
        }
        let serial = this.next.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot {
            phase: AtomicU8::new(phase::HANDSHAKE),
            since: AtomicU64::new(this.now()),
            evicted: AtomicBool::new(false),
            evict: Notify::new(),
            slots: Arc::clone(this),
            serial,
        });
        table.insert(serial, Arc::clone(&slot));
        Some(slot)
    }

    /// The connection to close first, if any may be closed.
    fn least_productive(&self, table: &HashMap<u64, Arc<Slot>>) -> Option<Arc<Slot>> {
        let now = self.now();
        let idle_after = u64::try_from(EVICT_IDLE_AFTER.as_nanos()).unwrap_or(u64::MAX);
        table
            .values()
            .filter(|s| !s.evicted.load(Ordering::SeqCst))
            .filter_map(|s| {
                let since = s.since.load(Ordering::Relaxed);
                let rank = match s.phase.load(Ordering::Relaxed) {
                    phase::HANDSHAKE | phase::PARTIAL => 0,
                    phase::STALLED => 1,
                    phase::IDLE if now.saturating_sub(since) >= idle_after => 2,
                    _ => return None,
                };
                Some(((rank, since), s))
            })
            .min_by_key(|(key, _)| *key)
            .map(|(_, s)| Arc::clone(s))
    }
}

impl Slot {
    /// Records the connection's phase; the clock is read only on a change.
    fn set(&self, p: u8) {
        if self.phase.load(Ordering::Relaxed) != p {
            self.phase.store(p, Ordering::Relaxed);
            self.since.store(self.slots.now(), Ordering::Relaxed);
        }
    }

    /// How long the current phase has lasted.
    fn age(&self) -> Duration {
        let since = self.since.load(Ordering::Relaxed);
        Duration::from_nanos(self.slots.now().saturating_sub(since))
    }

    /// Completes once the connection has been chosen to make room.
    async fn evicted(&self) {
        self.evict.notified().await;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Only the connection's task and the table hold a slot; the task
        // removes it (below), so this runs once the task is gone.
        if self.evicted.load(Ordering::SeqCst) {
            self.slots.evicting.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Removes a connection's slot from the table when its task ends, however
/// it ends (returned, or aborted at the drain timeout).
struct SlotGuard(Arc<Slot>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        lock(&self.0.slots.table).remove(&self.0.serial);
    }
}
// ANCHOR_END: slots

/// Locks, ignoring poisoning: every critical section here is a single
/// insert, remove or scan.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Answers a connection over the limit with a clear error, then closes it.
async fn refuse(mut stream: TcpStream, shared: Arc<Shared>, max: usize) {
    let mut first = [0u8; 4];
    let read = tokio::time::timeout(shared.handshake, stream.read_exact(&mut first)).await;
    if matches!(read, Ok(Ok(_))) && first == MAGIC {
        let mut out = BytesMut::from(&PREAMBLE[..]);
        frame::encode_connection_error(
            &mut out,
            ErrorCode::Overloaded,
            &format!(
                "provider has reached max_connections = {max}, all of them busy; try another provider or later"
            ),
        );
        let _ = tokio::time::timeout(CLOSE_GRACE, stream.write_all(&out)).await;
    }
    // Legacy callers have no error channel: closing is all we can say.
    let _ = tokio::time::timeout(CLOSE_GRACE, stream.shutdown()).await;
}

/// Reads until `buf` holds at least `n` bytes; `false` if the peer closed
/// first.
async fn read_at_least<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut BytesMut,
    n: usize,
) -> std::io::Result<bool> {
    while buf.len() < n {
        if stream.read_buf(buf).await? == 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Reads the first bytes, decides which protocol the peer speaks, serves it.
async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
    slot: Arc<Slot>,
) {
    let _guard = SlotGuard(Arc::clone(&slot));
    let _counted = shared.hooks.metrics.as_ref().map(|m| m.connection());
    // One deadline from accept for the whole handshake: first bytes and
    // preamble (or the whole legacy request) together, however they trickle.
    let deadline = Instant::now() + shared.handshake;
    if let Some(acceptor) = &shared.tls {
        return serve_tls(acceptor, stream, peer, &shared, shutdown, &slot, deadline).await;
    }
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let first = tokio::select! {
        r = tokio::time::timeout_at(deadline.into(), read_at_least(&mut stream, &mut buf, 4)) => r,
        () = slot.evicted() => return log::debug!("{peer}: closed during its handshake to make room"),
    };
    match first {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => return, // connected and left (port probes)
        Ok(Err(e)) => return log::debug!("{peer}: read failed before the first frame: {e}"),
        Err(_) => {
            return log::warn!("{peer} sent nothing within {:?}; closing", shared.handshake);
        }
    }
    // ANCHOR: detect
    if buf[..4] == MAGIC {
        serve_mprpc(stream, peer, buf, &shared, shutdown, &slot, deadline).await;
    } else {
        let shared = &*shared;
        // Anything else is the course's format, whose first four bytes are
        // a little-endian header size. See frame.rs for why this cannot
        // collide with the magic.
        let legacy = crate::legacy::serve(
            stream,
            peer,
            buf,
            &shared.legacy_services,
            &shared.hooks,
            shared.max_frame_size,
            deadline,
            shared.handshake,
            || slot.set(phase::BUSY),
        );
        tokio::select! {
            () = legacy => {}
            () = slot.evicted() => log::warn!("legacy caller {peer}: request incomplete after {:?}, closed to make room", slot.age()),
        }
    }
    // ANCHOR_END: detect
}

// ANCHOR: serve_tls
/// A connection on a TLS port: the handshake (within the handshake
/// deadline), then the framed format inside. Anything but the mprpc
/// preamble inside is refused: the course's format is plaintext only.
async fn serve_tls(
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    shutdown: watch::Receiver<bool>,
    slot: &Slot,
    deadline: Instant,
) {
    let accepted = tokio::select! {
        r = tokio::time::timeout_at(deadline.into(), acceptor.accept(stream)) => r,
        () = slot.evicted() => return log::debug!("{peer}: closed during its TLS handshake to make room"),
    };
    let mut tls = match accepted {
        Ok(Ok(tls)) => tls,
        // A plaintext caller (the course's format, or a framed caller
        // without `[tls] ca`) ends here: its first bytes are no TLS record.
        Ok(Err(e)) => {
            return log::warn!(
                "{peer}: TLS handshake failed: {e} (a plaintext caller on a TLS port?)"
            );
        }
        Err(_) => {
            return log::warn!(
                "{peer}: TLS handshake not complete within {:?}; closing",
                shared.handshake
            );
        }
    };
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let first = tokio::select! {
        r = tokio::time::timeout_at(deadline.into(), read_at_least(&mut tls, &mut buf, 4)) => r,
        () = slot.evicted() => return,
    };
    if !matches!(first, Ok(Ok(true))) {
        return;
    }
    if buf[..4] != MAGIC {
        return log::warn!(
            "{peer}: no mprpc preamble inside TLS; the course's format is not served over TLS"
        );
    }
    serve_mprpc(tls, peer, buf, shared, shutdown, slot, deadline).await;
}
// ANCHOR_END: serve_tls

/// A byte stream the framed protocol runs on, split into halves that can
/// be polled at once: plain TCP (borrowed halves, no lock) or TLS.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Unpin + Send {
    /// The read half.
    type Rd<'a>: AsyncRead + Unpin + Send
    where
        Self: 'a;
    /// The write half.
    type Wr<'a>: AsyncWrite + Unpin + Send
    where
        Self: 'a;
    /// Splits the stream.
    fn halves(&mut self) -> (Self::Rd<'_>, Self::Wr<'_>);
}

impl Transport for TcpStream {
    type Rd<'a> = tokio::net::tcp::ReadHalf<'a>;
    type Wr<'a> = tokio::net::tcp::WriteHalf<'a>;
    fn halves(&mut self) -> (Self::Rd<'_>, Self::Wr<'_>) {
        self.split()
    }
}

impl Transport for tokio_rustls::server::TlsStream<TcpStream> {
    type Rd<'a> = tokio::io::ReadHalf<&'a mut Self>;
    type Wr<'a> = tokio::io::WriteHalf<&'a mut Self>;
    fn halves(&mut self) -> (Self::Rd<'_>, Self::Wr<'_>) {
        tokio::io::split(self)
    }
}

/// The services by their short names, for the course's format, which carries
/// no package. A short name that two published services share (`a.Store`,
/// `b.Store`) cannot be served in that format at all: it is left out, with a
/// warning, so such a request is refused rather than sent to a guess.
fn legacy_table(services: &HashMap<Vec<u8>, Published>) -> HashMap<Vec<u8>, LegacyEntry> {
    let mut table: HashMap<Vec<u8>, LegacyEntry> = HashMap::new();
    let mut ambiguous = Vec::new();
    for (svc, _, metrics) in services.values() {
        let short = svc.descriptor().name.as_bytes().to_vec();
        if table
            .insert(short.clone(), (Arc::clone(svc), metrics.clone()))
            .is_some()
        {
            ambiguous.push(short);
        }
    }
    for short in ambiguous {
        if table.remove(&short).is_some() {
            log::warn!(
                "two published services are called {}: the course's format, which carries no package, cannot reach either",
                String::from_utf8_lossy(&short)
            );
        }
    }
    table
}

// ANCHOR: hooks
/// What runs around every call, framed or in the course's format: the
/// interceptors, a tracing span and the metrics.
pub(crate) struct Hooks {
    /// `RpcProvider::add_interceptor`, in order.
    interceptors: Box<[Arc<dyn ServerInterceptor>]>,
    /// Present when `[admin] address` is set.
    pub(crate) metrics: Option<Arc<Metrics>>,
    /// `limits.max_metadata_*`.
    metadata_limits: MetadataLimits,
}

/// One call's span, clock, metrics and response metadata, from the moment
/// its method is known until it is answered.
///
/// Small on purpose (three words): it travels inside every call's future,
/// and the provider moves those. Everything that exists only while tracing
/// or metrics are on lives behind one `Box`, made only then.
pub(crate) struct CallEnd {
    /// Span, clock and counters; `None` when neither a tracing subscriber
    /// wants the span nor metrics are on.
    observed: Option<Box<Observed>>,
    /// Response metadata added by interceptors (rare: boxed).
    extra: Option<Box<Metadata>>,
    /// The handler's response metadata (shared with its [`CallContext`]);
    /// `None` for course-format calls, which cannot carry any.
    handler: Option<ResponseCell>,
}

/// What [`CallEnd`] keeps while tracing or metrics are on.
struct Observed {
    /// `rpc.server`.
    span: tracing::Span,
    /// When the call started.
    started: Instant,
    /// The method's counters, when metrics are on.
    metrics: Option<Arc<MethodMetrics>>,
}

/// Who is calling what: what an interceptor is shown.
pub(crate) struct Who {
    /// The call's service and method.
    pub(crate) desc: &'static ServiceDescriptor,
    /// Index of the method in `desc`.
    pub(crate) index: usize,
    /// The caller.
    pub(crate) peer: SocketAddr,
    /// Id on its connection (0: course format).
    pub(crate) call_id: u64,
    /// Course format.
    pub(crate) legacy: bool,
}

impl Hooks {
    /// Starts observing the call `who`, which arrived at `now`, counted in
    /// `metrics` (when metrics are on).
    #[inline]
    pub(crate) fn begin(&self, who: &Who, metrics: &Arc<MethodMetrics>, now: Instant) -> CallEnd {
        // With metrics off and no subscriber taking INFO spans, nothing is
        // made at all: one load, where `info_span!` would still build a
        // disabled span (and, where `tracing`'s `log` feature is on, offer
        // its fields to the logger).
        let observed = if self.metrics.is_none() && !tracing::level_enabled!(tracing::Level::INFO) {
            None
        } else {
            self.observe(who, metrics, now)
        };
        CallEnd {
            observed,
            extra: None,
            handler: None,
        }
    }

    /// The span, clock and counters of the call `who`, if anything records
    /// them.
    #[inline(never)] // out of the everything-off path
    fn observe(
        &self,
        who: &Who,
        metrics: &Arc<MethodMetrics>,
        now: Instant,
    ) -> Option<Box<Observed>> {
        let span = tracing::info_span!(
            "rpc.server",
            service = who.desc.full_name,
            method = who.desc.methods[who.index],
            call_id = who.call_id,
            peer = %who.peer,
            legacy = who.legacy,
            status = tracing::field::Empty,
            duration_us = tracing::field::Empty,
        );
        let metrics = self.metrics.as_ref().map(|_| {
            metrics.start();
            Arc::clone(metrics)
        });
        (metrics.is_some() || !span.is_disabled()).then(|| {
            Box::new(Observed {
                span,
                started: now,
                metrics,
            })
        })
    }

    /// Runs the interceptors on the call `who` with request metadata
    /// `metadata`; returns the metadata the handler sees, or the refusal.
    #[inline]
    pub(crate) fn intercept(
        &self,
        end: &mut CallEnd,
        who: &Who,
        metadata: Metadata,
    ) -> Result<Metadata, Status> {
        if self.interceptors.is_empty() {
            return Ok(metadata);
        }
        self.run_interceptors(end, who, metadata)
    }

    /// [`intercept`](Self::intercept) when there are interceptors.
    #[inline(never)] // out of the everything-off path
    fn run_interceptors(
        &self,
        end: &mut CallEnd,
        who: &Who,
        metadata: Metadata,
    ) -> Result<Metadata, Status> {
        let mut call = ServerCall {
            service: who.desc.full_name,
            method: who.desc.methods[who.index],
            peer: who.peer,
            call_id: who.call_id,
            legacy: who.legacy,
            metadata,
            response_metadata: Metadata::new(),
        };
        let verdict = self
            .interceptors
            .iter()
            .try_for_each(|i| i.intercept(&mut call));
        if !call.response_metadata.is_empty() {
            end.extra = Some(Box::new(call.response_metadata));
        }
        verdict.map(|()| call.metadata)
    }
}

impl CallEnd {
    /// `future` running inside this call's span, if anyone records spans;
    /// else `future` itself (no wrapper, no allocation).
    #[inline]
    pub(crate) fn in_span(&self, future: ResponseFuture) -> ResponseFuture {
        match &self.observed {
            Some(o) if !o.span.is_disabled() => {
                Box::pin(tracing::Instrument::instrument(future, o.span.clone()))
            }
            _ => future,
        }
    }

    /// The response metadata: the interceptors', then the handler's; and
    /// the handler's cell, emptied, when nothing else holds it any more
    /// (the handler has returned and kept no clone of its context): then
    /// it takes no lock, and can serve another call.
    #[inline]
    fn take_response_metadata(&mut self) -> (Metadata, Option<ResponseCell>) {
        let mut md = self.extra.take().map_or_else(Metadata::new, |b| *b);
        let Some(mut cell) = self.handler.take() else {
            return (md, None);
        };
        let (theirs, spare) = match Arc::get_mut(&mut cell) {
            Some(alone) => (
                std::mem::take(alone.get_mut().unwrap_or_else(|p| p.into_inner())),
                true,
            ),
            None => (
                std::mem::take(&mut *cell.lock().unwrap_or_else(|p| p.into_inner())),
                false,
            ),
        };
        if !theirs.is_empty() {
            md.extend_from(theirs);
        }
        (md, spare.then_some(cell))
    }

    /// Records how the call ended: the code sent, or `None` if the caller
    /// cancelled it.
    #[inline]
    pub(crate) fn finish(mut self, code: Option<ErrorCode>) {
        self.record(code);
    }

    /// Records the outcome once (later calls do nothing).
    #[inline]
    fn record(&mut self, code: Option<ErrorCode>) {
        if let Some(o) = self.observed.take() {
            o.close(code);
        }
    }
}

impl Observed {
    /// Counts the call's end and fills in its span's last fields.
    fn close(&self, code: Option<ErrorCode>) {
        let took = self.started.elapsed();
        if let Some(m) = &self.metrics {
            m.finish(took, code);
        }
        self.span
            .record("status", code.map_or("cancelled", ErrorCode::as_str));
        self.span.record("duration_us", took.as_micros() as u64);
    }
}

impl Drop for CallEnd {
    /// A call dropped unanswered — its connection closed, or the provider
    /// shut down, while it ran — ends as cancelled: the in-flight gauge
    /// must not keep counting it.
    #[inline]
    fn drop(&mut self) {
        self.record(None);
    }
}
// ANCHOR_END: hooks

/// A call's eventual output: its id, whether it ran on a task of its own,
/// its result (`None` when the caller cancelled it) and its [`CallEnd`].
type InFlight =
    Pin<Box<dyn Future<Output = (u64, bool, Option<Result<Vec<u8>, Status>>, CallEnd)> + Send>>;

/// A handler's future as the provider runs it (inside its span when one
/// is recorded, see [`CallEnd::in_span`]): panics
/// caught, cancellable, its polls timed.
type Guarded = futures_util::future::Abortable<
    Timed<futures_util::future::CatchUnwind<AssertUnwindSafe<crate::service::ResponseFuture>>>,
>;

/// Per-connection state of the mprpc protocol loop.
struct ConnState<'a> {
    /// Provider-wide state.
    shared: &'a Shared,
    /// Caller address (for handlers and logs).
    peer: SocketAddr,
    /// Encoded frames waiting to be written.
    out: BytesMut,
    /// Calls that did not complete on their first inline poll, or run on
    /// tasks of their own.
    in_flight: FuturesUnordered<InFlight>,
    /// Abort handles of `in_flight`, by call id: for cancel frames, and to
    /// tell a duplicate id.
    aborts: HashMap<u64, AbortHandle>,
    /// Calls of `in_flight` running on tasks of their own.
    spawned: usize,
    /// The caller's preamble set [`frame::FLAG_METADATA`]: responses may
    /// carry metadata.
    metadata_ok: bool,
    /// Response-metadata cells of finished calls, for the next calls.
    spare_cells: Vec<ResponseCell>,
    /// The service the last request named, as found in `published`: a
    /// caller names the same one call after call, and comparing the bytes
    /// is cheaper than hashing them again.
    last_service: Option<(&'a [u8], &'a Published)>,
}

// ANCHOR: serve_mprpc
/// The connection loop of the mprpc protocol.
async fn serve_mprpc<S: Transport>(
    mut stream: S,
    peer: SocketAddr,
    mut inbuf: BytesMut,
    shared: &Shared,
    mut shutdown: watch::Receiver<bool>,
    slot: &Slot,
    handshake_deadline: Instant,
) {
    let mut st = ConnState {
        shared,
        peer,
        out: BytesMut::with_capacity(16 * 1024),
        in_flight: FuturesUnordered::new(),
        aborts: HashMap::new(),
        spawned: 0,
        metadata_ok: false,
        spare_cells: Vec::new(),
        last_service: None,
    };
    st.out.extend_from_slice(&PREAMBLE);
    // Wait for the full preamble, then check the version.
    let ok = tokio::select! {
        r = tokio::time::timeout_at(
            handshake_deadline.into(),
            read_at_least(&mut stream, &mut inbuf, PREAMBLE.len()),
        ) => r,
        () = slot.evicted() => return log::debug!("{peer}: closed during its handshake to make room"),
    };
    if !matches!(ok, Ok(Ok(true))) {
        return;
    }
    let mut preamble = [0u8; 8];
    preamble.copy_from_slice(&inbuf.split_to(PREAMBLE.len()));
    match frame::check_preamble(&preamble) {
        Ok(flags) => st.metadata_ok = flags & frame::FLAG_METADATA != 0,
        Err(msg) => {
            frame::encode_connection_error(&mut st.out, ErrorCode::BadRequest, &msg);
            let _ = tokio::time::timeout(CLOSE_GRACE, stream.write_all(&st.out)).await;
            return;
        }
    }

    let (mut rd, mut wr) = stream.halves();
    // Half of the allowance for requests received and not yet handled,
    // half for responses not yet written. Buffers grow by doubling, so
    // their capacity stays within about the whole allowance.
    let half = shared.per_conn / 2;
    let mut read_closed = false;
    let mut draining = false;
    // A loan from the provider-wide pool for the frame being received, when
    // it is larger than this connection's own allowance; or the wait for one.
    let mut loan: Option<OwnedSemaphorePermit> = None;
    let mut borrowing: Option<Borrowing> = None;
    // When the partial frame at the front of `inbuf` started arriving.
    let mut frame_started: Option<Instant> = None;
    let frame_timer = tokio::time::sleep(Duration::MAX / 4);
    tokio::pin!(frame_timer);
    // Idle detection costs one timestamp per event: the timer is only
    // re-armed when it fires, from the last sign of progress.
    let mut progress = Instant::now();
    let idle_timer = tokio::time::sleep(shared.idle.unwrap_or(Duration::MAX / 4));
    tokio::pin!(idle_timer);
    loop {
        // ANCHOR: budget
        // Handle the complete frames received, as long as the responses
        // waiting to be written stay within this connection's allowance.
        let completed =
            match with_context(|cx| st.handle_frames(&mut inbuf, &mut loan, &mut borrowing, cx))
                .await
            {
                Ok(completed) => completed,
                Err(e) => {
                    log::warn!("{peer}: {e}");
                    frame::encode_connection_error(&mut st.out, e.code(), &e.to_string());
                    return close(&mut wr, &st.out).await;
                }
            };
        if read_closed && st.in_flight.is_empty() && st.out.is_empty() {
            break;
        }
        if inbuf.is_empty() && inbuf.capacity() > SHRINK_ABOVE {
            inbuf = BytesMut::with_capacity(8 * 1024);
        }
        let allowance = half + loan.as_ref().map_or(0, |l| l.num_permits());
        let room = allowance.saturating_sub(inbuf.len());
        let out_full = st.out.len() >= half;
        let can_read = !read_closed && borrowing.is_none() && !out_full && room > 0;
        if can_read && inbuf.capacity() - inbuf.len() < 1024 {
            // Read in useful sizes, not the 64 bytes an exhausted buffer grows by.
            inbuf.reserve(room.min(8 * 1024));
        }
        // Unless decoding is held back (responses unsent, a loan awaited,
        // too many calls on their own tasks), bytes left in `inbuf` now are
        // a frame the caller has not finished sending; its clock runs only
        // while we are willing to read.
        let held_back = out_full || borrowing.is_some() || st.spawned >= MAX_SPAWNED_PER_CONNECTION;
        let partial = !inbuf.is_empty() && !held_back;
        if completed {
            // A frame arrived whole: what is left is a new one, whose clock
            // starts now (a caller streaming requests is always mid-frame).
            frame_started = None;
        }
        if partial && can_read {
            if frame_started.is_none() {
                let now = Instant::now();
                frame_started = Some(now);
                if let Some(limit) = shared.frame {
                    frame_timer.as_mut().reset((now + limit).into());
                }
            }
        } else {
            frame_started = None;
        }
        // ANCHOR_END: budget
        slot.set(if out_full {
            phase::STALLED
        } else if !st.in_flight.is_empty() {
            phase::BUSY
        } else if partial || borrowing.is_some() {
            phase::PARTIAL
        } else if !st.out.is_empty() {
            phase::BUSY
        } else {
            phase::IDLE
        });
        tokio::select! {
            r = read_some(&mut rd, &mut inbuf, room), if can_read => match r {
                Ok(0) => read_closed = true,
                Ok(_) => progress = Instant::now(),
                Err(e) => {
                    log::debug!("{peer}: read failed: {e}");
                    return;
                }
            },
            Some((id, spawned, result, end)) = st.in_flight.next(), if !st.in_flight.is_empty() && !out_full => {
                st.aborts.remove(&id);
                st.spawned -= usize::from(spawned);
                progress = Instant::now();
                match result {
                    Some(result) => st.finish_call(id, result, end),
                    None => end.finish(None),
                }
            }
            r = wr.write_buf(&mut st.out), if !st.out.is_empty() => {
                if let Err(e) = r {
                    log::debug!("{peer}: write failed: {e}");
                    return;
                }
                progress = Instant::now();
                if st.out.is_empty() && st.out.capacity() > SHRINK_ABOVE {
                    st.out = BytesMut::with_capacity(16 * 1024);
                }
            }
            Some(granted) = async { borrowing.as_mut()?.await }, if borrowing.is_some() => {
                borrowing = None;
                loan = Some(granted);
            }
            () = &mut frame_timer, if frame_started.is_some() && shared.frame.is_some() => {
                let limit = shared.frame.unwrap_or_default();
                let msg = format!(
                    "request frame not complete within frame_ms = {} ms ({} bytes received{}); closing",
                    limit.as_millis(),
                    inbuf.len(),
                    frame::peek_len(&inbuf).map(|l| format!(" of {}", l + 4)).unwrap_or_default(),
                );
                log::warn!("{peer}: {msg}");
                frame::encode_connection_error(&mut st.out, ErrorCode::DeadlineExceeded, &msg);
                return close(&mut wr, &st.out).await;
            }
            () = slot.evicted() => {
                // Chosen to make room at max_connections: hand over what
                // can go without waiting, and close.
                let what = slot.phase.load(Ordering::Relaxed);
                if what == phase::IDLE {
                    frame::encode_goaway(&mut st.out);
                } else {
                    let msg = format!(
                        "provider is at max_connections and this connection made no progress for {:?} \
                         ({}); closed to make room",
                        slot.age(),
                        if what == phase::STALLED { "responses not read" } else { "frame incomplete" },
                    );
                    log::warn!("{peer}: {msg}");
                    frame::encode_connection_error(&mut st.out, ErrorCode::Overloaded, &msg);
                }
                // Hand over what goes without waiting, and close.
                let _ = tokio::time::timeout(Duration::from_millis(10), async {
                    let _ = wr.write_all(&st.out).await;
                    let _ = wr.shutdown().await;
                })
                .await;
                return;
            }
            _ = stopped(&mut shutdown), if !draining => {
                // Keep reading: calls the caller sent before it saw goaway
                // are still served. The caller closes when it is done.
                draining = true;
                frame::encode_goaway(&mut st.out);
            }
            // ANCHOR: idle
            () = &mut idle_timer, if shared.idle.is_some() => {
                let idle = shared.idle.unwrap_or(Duration::MAX / 4);
                // Calls running count as progress; calls whose results we
                // hold back because the caller reads nothing do not.
                let working = !st.in_flight.is_empty() && !out_full;
                if working || progress.elapsed() < idle {
                    let from = if working { Instant::now() } else { progress };
                    idle_timer.as_mut().reset((from + idle).into());
                } else if !inbuf.is_empty() || !st.out.is_empty() || !st.in_flight.is_empty() {
                    // Half a frame, or responses the caller does not read:
                    // a well-behaved caller never stalls like this.
                    return log::warn!(
                        "{peer}: no progress for {idle:?} with {} bytes of a frame received and {} bytes unsent; closing",
                        inbuf.len(),
                        st.out.len()
                    );
                } else if !draining {
                    // Idle: ask the caller to go elsewhere, as in a
                    // shutdown, so a call racing with this is still served.
                    draining = true;
                    frame::encode_goaway(&mut st.out);
                    progress = Instant::now();
                    idle_timer.as_mut().reset((progress + idle).into());
                } else {
                    log::debug!("{peer}: still idle {idle:?} after goaway; closing");
                    break;
                }
            }
            // ANCHOR_END: idle
        }
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, wr.shutdown()).await;
}
// ANCHOR_END: serve_mprpc

/// Reads at most `max` bytes into `buf`: what the connection's allowance
/// has room for.
async fn read_some<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    max: usize,
) -> std::io::Result<usize> {
    rd.take(max as u64).read_buf(buf).await
}

/// Writes the last bytes for at most [`CLOSE_GRACE`] (the peer may not be
/// reading), then closes.
async fn close<W: AsyncWrite + Unpin>(wr: &mut W, out: &[u8]) {
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        let _ = wr.write_all(out).await;
        let _ = wr.shutdown().await;
    })
    .await;
}

// ANCHOR: method_stats
/// What the provider has learned about one method's handlers (adaptive
/// mode): whether they are quick enough to poll inline.
#[derive(Debug, Default)]
struct MethodStats {
    /// Poll inline; else spawn.
    quick: AtomicBool,
    /// Calls in a row whose every poll stayed under the budget.
    streak: AtomicU32,
}

impl MethodStats {
    /// Records the longest poll of one call (or of its first poll).
    fn record(&self, longest: Duration, budget: Duration) {
        if longest > budget {
            // Re-learn from scratch: the next calls run on their own tasks.
            self.streak.store(0, Ordering::Relaxed);
            self.quick.store(false, Ordering::Relaxed);
        } else if !self.quick.load(Ordering::Relaxed)
            && self.streak.fetch_add(1, Ordering::Relaxed) + 1 >= LEARN_AFTER
        {
            self.quick.store(true, Ordering::Relaxed);
        }
    }
}

/// Polls a handler, noting its longest poll, and reports to its method's
/// statistics when it completes or is dropped.
struct Timed<F> {
    /// The handler (already boxed by the service: `Unpin`).
    fut: F,
    /// Where to report; `None` when not learning (forced modes).
    stats: Option<Arc<MethodStats>>,
    /// `handlers.inline_budget_us`.
    budget: Duration,
    /// Longest poll so far.
    longest: Duration,
    /// When the first poll starts, if the caller has just read the clock
    /// (it has: for the deadline), so that poll needs no clock read of its own.
    first_poll: Option<Instant>,
}

impl<F: Future + Unpin> Future for Timed<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let Some(stats) = &this.stats else {
            return Pin::new(&mut this.fut).poll(cx);
        };
        let started = this.first_poll.take().unwrap_or_else(Instant::now);
        let r = Pin::new(&mut this.fut).poll(cx);
        let took = started.elapsed();
        this.longest = this.longest.max(took);
        if took > this.budget {
            // Demote at once, not at the end: the next call of this method
            // must not be polled inline while this one is still computing.
            stats.record(took, this.budget);
        } else if r.is_ready() {
            stats.record(this.longest, this.budget);
        }
        r
    }
}
// ANCHOR_END: method_stats

/// Aborts a spawned handler when its call is dropped (connection closed,
/// deadline passed).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A handler's response metadata, shared by its [`CallContext`] and the
/// provider.
type ResponseCell = Arc<Mutex<Metadata>>;

/// Most spare response-metadata cells a connection keeps (a few KiB).
const MAX_SPARE_CELLS: usize = 128;

/// The wait for a loan from the provider-wide buffer pool.
type Borrowing = Pin<Box<dyn Future<Output = Option<OwnedSemaphorePermit>> + Send>>;

/// Runs `f` with the connection task's context. A frame is handled by
/// plain functions given the context (to poll a handler inline), not by an
/// `async fn`: such a future holds everything the handling keeps across its
/// one poll, and would be built and moved, whole, for every frame.
async fn with_context<R>(f: impl FnOnce(&mut Context<'_>) -> R) -> R {
    let mut f = Some(f);
    std::future::poll_fn(move |cx| match f.take() {
        Some(f) => Poll::Ready(f(cx)),
        // Never polled again after `Ready`.
        None => Poll::Pending,
    })
    .await
}

impl ConnState<'_> {
    // ANCHOR: handle_frames
    /// Handles the complete frames in `inbuf` while the responses waiting
    /// to be written stay within half the connection's allowance (and
    /// while no loan is awaited, and not too many calls run on tasks of
    /// their own). A frame larger than that half first borrows from the
    /// provider-wide pool into `loan`, or starts waiting for it in
    /// `borrowing` and stops. Returns whether a frame was completed, or
    /// the decoding error that ends the connection.
    fn handle_frames(
        &mut self,
        inbuf: &mut BytesMut,
        loan: &mut Option<OwnedSemaphorePermit>,
        borrowing: &mut Option<Borrowing>,
        cx: &mut Context<'_>,
    ) -> Result<bool, frame::FrameError> {
        let shared = self.shared;
        let half = shared.per_conn / 2;
        let mut completed = false;
        while self.out.len() < half
            && borrowing.is_none()
            && self.spawned < MAX_SPAWNED_PER_CONNECTION
        {
            if loan.is_none() {
                // A frame above the allowance borrows before its bytes are
                // reserved, or waits (reading nothing meanwhile).
                if let Some(len) = frame::peek_len(inbuf) {
                    let need = len.saturating_add(4);
                    if need > half && len <= shared.max_frame_size {
                        let permits = u32::try_from(need).unwrap_or(u32::MAX);
                        match Arc::clone(&shared.pool).try_acquire_many_owned(permits) {
                            Ok(p) => *loan = Some(p),
                            Err(_) => {
                                let pool = Arc::clone(&shared.pool);
                                *borrowing = Some(Box::pin(async move {
                                    pool.acquire_many_owned(permits).await.ok()
                                }));
                                break;
                            }
                        }
                    }
                }
            }
            match frame::try_decode(inbuf, shared.max_frame_size)? {
                Some(f) => {
                    completed = true;
                    self.on_frame(f, loan.take(), cx);
                }
                None => break,
            }
        }
        Ok(completed)
    }
    // ANCHOR_END: handle_frames

    /// Handles one frame from the caller. `loan` is pool memory borrowed
    /// for this frame, held until its call completes; `cx` is the
    /// connection task's, for polling a handler inline.
    fn on_frame(&mut self, f: Frame, loan: Option<OwnedSemaphorePermit>, cx: &mut Context<'_>) {
        match f {
            Frame::Request {
                id,
                timeout_ms,
                service,
                method,
                metadata,
                payload,
            } => self.on_request(
                id, timeout_ms, &service, &method, &metadata, payload, loan, cx,
            ),
            Frame::Cancel { id } => {
                if let Some(handle) = self.aborts.remove(&id) {
                    handle.abort();
                }
            }
            Frame::Response { .. } | Frame::GoAway | Frame::ConnectionError { .. } => {
                log::warn!(
                    "{}: ignoring a provider-side frame sent by a caller",
                    self.peer
                );
            }
        }
    }

    // ANCHOR: on_request
    /// Looks up the method, then either polls the handler once inline or
    /// starts it on a task of its own.
    #[allow(clippy::too_many_arguments)]
    fn on_request(
        &mut self,
        id: u64,
        timeout_ms: u32,
        service: &[u8],
        method: &[u8],
        metadata: &[u8],
        payload: Bytes,
        loan: Option<OwnedSemaphorePermit>,
        cx: &mut Context<'_>,
    ) {
        let found = match self.last_service {
            Some((name, published)) if name == service => Some(published),
            _ => {
                let hit = self.shared.published.get_key_value(service);
                self.last_service = hit.map(|(name, published)| (name.as_slice(), published));
                hit.map(|(_, published)| published)
            }
        };
        let Some((svc, stats, metrics)) = found else {
            // A caller that sent the course's short name gets told the name
            // it should have used.
            let hint = match self.shared.legacy_services.get(service) {
                Some((svc, _)) => format!(
                    "; names are package-qualified: did you mean {}?",
                    svc.descriptor().full_name
                ),
                None => String::new(),
            };
            let msg = format!(
                "no service {:?} here (this provider has: {}){hint}",
                String::from_utf8_lossy(service),
                self.shared.names
            );
            return self.refuse(id, Status::new(ErrorCode::UnknownService, msg));
        };
        let desc = svc.descriptor();
        let Some(index) = desc.method_index(method) else {
            let msg = format!(
                "service {} has no method {:?} (it has: {})",
                desc.full_name,
                String::from_utf8_lossy(method),
                desc.methods.join(", ")
            );
            return self.refuse(id, Status::new(ErrorCode::UnknownMethod, msg));
        };
        if self.aborts.contains_key(&id) {
            // Two calls under one id: a cancel or a response could not say
            // which one it means. The first keeps running.
            let msg = format!(
                "call id {id} is already in flight on this connection; ids must be unique among calls in flight"
            );
            return self.refuse(id, Status::new(ErrorCode::BadRequest, msg));
        }
        if self.in_flight.len() >= self.shared.max_in_flight {
            let msg = format!(
                "{} calls already in flight on this connection (max_in_flight_per_connection)",
                self.in_flight.len()
            );
            return self.refuse(id, Status::new(ErrorCode::Overloaded, msg));
        }
        // One clock read serves the deadline, the call's clock and the
        // timing of the first poll.
        let now = Instant::now();
        let deadline = (timeout_ms > 0).then(|| now + Duration::from_millis(u64::from(timeout_ms)));
        // ANCHOR: on_request_hooks
        let hooks = &self.shared.hooks;
        let who = Who {
            desc,
            index,
            peer: self.peer,
            call_id: id,
            legacy: false,
        };
        let mut end = hooks.begin(&who, &metrics[index], now);
        let md = if metadata.is_empty() {
            Metadata::new()
        } else {
            match Metadata::decode(metadata, hooks.metadata_limits) {
                Ok(md) => md,
                Err(why) => {
                    let status =
                        Status::new(ErrorCode::BadRequest, format!("request metadata: {why}"));
                    return self.finish_call(id, Err(status), end);
                }
            }
        };
        let md = match hooks.intercept(&mut end, &who, md) {
            Ok(md) => md,
            Err(status) => return self.finish_call(id, Err(status), end),
        };
        // The handler's response-metadata cell, shared with its context:
        // a spare one of this connection's when there is one.
        let cell = self.spare_cells.pop().unwrap_or_default();
        end.handler = Some(Arc::clone(&cell));
        let ctx = CallContext::for_call(self.peer, deadline, id, false, md, cell);
        // ANCHOR_END: on_request_hooks
        let stats = &stats[index];
        let (learning, spawn) = match self.shared.mode {
            HandlerMode::Inline => (false, false),
            HandlerMode::Spawn => (false, true),
            _ => (true, !stats.quick.load(Ordering::Relaxed)),
        };
        let (name, mname) = (desc.full_name, desc.methods[index]);
        let handler = end.in_span(svc.call(index, ctx, payload));
        let mut fut = Timed {
            fut: AssertUnwindSafe(handler).catch_unwind(),
            stats: learning.then(|| Arc::clone(stats)),
            budget: self.shared.budget,
            longest: Duration::ZERO,
            // Inline, the first poll starts now; a spawned call's first
            // poll starts whenever its task runs, and times itself.
            first_poll: (!spawn).then_some(now),
        };
        let outcome: Outcome = if spawn {
            // Not known to be quick: a task of its own, so that a handler
            // computing for a while holds up no other call.
            let (fut, handle) = futures_util::future::abortable(fut);
            self.aborts.insert(id, handle);
            let task = AbortOnDrop(tokio::spawn(fut));
            self.spawned += 1;
            Box::pin(async move {
                match task.await {
                    Ok(r) => outcome(r, name, mname),
                    Err(e) if e.is_panic() => Some(Err(panicked(name, mname))),
                    Err(_) => None,
                }
            })
        } else {
            // First poll right here, on the connection task: no spawn,
            // no channel, no wake-up.
            match Pin::new(&mut fut).poll(cx) {
                Poll::Ready(Ok(result)) => return self.finish_call(id, result, end),
                Poll::Ready(Err(_panic)) => {
                    return self.finish_call(id, Err(panicked(name, mname)), end);
                }
                Poll::Pending => {}
            }
            let (fut, handle): (Guarded, _) = futures_util::future::abortable(fut);
            self.aborts.insert(id, handle);
            Box::pin(async move { outcome(fut.await, name, mname) })
        };
        self.in_flight.push(Box::pin(async move {
            // Pool memory borrowed for a large request is returned when the
            // call is over, not when its frame was parsed: the handler holds
            // the payload until then.
            let _loan = loan;
            let result = match deadline {
                Some(d) => tokio::time::timeout_at(d.into(), outcome)
                    .await
                    .unwrap_or_else(|_| {
                        Some(Err(Status::new(
                            ErrorCode::DeadlineExceeded,
                            format!("{name}.{mname} did not finish within {timeout_ms} ms"),
                        )))
                    }),
                None => outcome.await,
            };
            (id, spawn, result, end)
        }));
    }
    // ANCHOR_END: on_request

    /// Answers a call refused before its method was known (or before it
    /// could start), counting it.
    fn refuse(&mut self, id: u64, status: Status) {
        if let Some(m) = &self.shared.hooks.metrics {
            m.refused(status.code);
        }
        self.respond(id, Err(status), Metadata::new());
    }

    /// Answers a call that started, and records how it ended.
    fn finish_call(&mut self, id: u64, mut result: Result<Vec<u8>, Status>, mut end: CallEnd) {
        let (mut md, spare) = end.take_response_metadata();
        // Spares save an allocation per call.
        if let Some(cell) = spare.filter(|_| self.spare_cells.len() < MAX_SPARE_CELLS) {
            self.spare_cells.push(cell);
        }
        if let Err(status) = &mut result {
            // A status may carry metadata of its own (a handler's or an
            // interceptor's).
            md.extend_from(std::mem::take(&mut status.metadata));
        }
        let code = self.respond(id, result, md);
        end.finish(Some(code));
    }

    // ANCHOR: respond
    /// Appends the response frame for call `id`, with `md` if the caller
    /// can receive metadata; returns the code sent.
    fn respond(&mut self, id: u64, result: Result<Vec<u8>, Status>, md: Metadata) -> ErrorCode {
        // Metadata goes only to callers that can read it, and only within
        // our own limits (a handler over them has failed its call).
        let (result, md) = if self.metadata_ok && !md.is_empty() {
            match md.check(self.shared.hooks.metadata_limits) {
                Ok(()) => (result, Some(md)),
                Err(why) => {
                    let status = Status::handler(format!("response metadata: {why}"));
                    (result.and(Err(status)), None)
                }
            }
        } else {
            (result, None)
        };
        let md_len = md.as_ref().map_or(0, |m| 2 + m.encoded_len());
        match result {
            Ok(body) if frame::response_fits(md_len + body.len(), self.shared.max_frame_size) => {
                frame::encode_response_with_metadata(
                    &mut self.out,
                    id,
                    ErrorCode::Ok,
                    md.as_ref(),
                    &body,
                );
                ErrorCode::Ok
            }
            Ok(body) => {
                let msg = format!(
                    "response of {} bytes exceeds max_frame_size {}",
                    md_len + body.len(),
                    self.shared.max_frame_size
                );
                log::warn!("{}: call {id}: {msg}", self.peer);
                frame::encode_response(&mut self.out, id, ErrorCode::FrameTooLarge, msg.as_bytes());
                ErrorCode::FrameTooLarge
            }
            Err(status) => {
                // An error's text is ours or the handler's: keep it within
                // the frame limit too.
                let mut text = status.message.as_bytes();
                let room = self.shared.max_frame_size.saturating_sub(64 + md_len);
                if text.len() > room {
                    text = &text[..room];
                }
                frame::encode_response_with_metadata(
                    &mut self.out,
                    id,
                    status.code,
                    md.as_ref(),
                    text,
                );
                status.code
            }
        }
    }
    // ANCHOR_END: respond
}

/// A guarded handler's result: `None` if cancelled.
fn outcome(
    r: Result<std::thread::Result<Result<Vec<u8>, Status>>, futures_util::future::Aborted>,
    name: &str,
    mname: &str,
) -> Option<Result<Vec<u8>, Status>> {
    match r {
        Ok(Ok(result)) => Some(result),
        Ok(Err(_panic)) => Some(Err(panicked(name, mname))),
        Err(_aborted) => None,
    }
}

/// The status reported for a handler that panicked.
fn panicked(service: &str, method: &str) -> Status {
    log::error!("handler {service}.{method} panicked");
    Status::handler(format!("handler {service}.{method} panicked"))
}
