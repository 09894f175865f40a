//! [`MprpcChannel`]: where every stub call goes — discovery, load balancing,
//! the connection pool, deadlines and cancellation — plus [`BlockingChannel`]
//! for synchronous callers.
//!
//! The course's `MprpcChannel::CallMethod` did everything inline for each
//! call: serialize, ask ZooKeeper where the method lives, connect, send, read
//! once, close. Here:
//!
//! 1. the provider list comes from the registry's watch receiver (no
//!    ZooKeeper round trip on the call path);
//! 2. a provider is chosen by the configured [`LoadBalance`] policy, skipping
//!    providers whose connection recently failed or that are draining;
//! 3. the call runs on the pooled, multiplexed connection to that provider
//!    (private module `connection`), created on first use;
//! 4. if the request provably never left (connect refused, connection already
//!    closing) the next provider is tried — never after it may have been
//!    sent, since the method might not be idempotent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

use crate::config::{LoadBalance, MprpcConfig, Timeouts};
use crate::connection::{CallError, ConnEvent, ConnSettings, Connection, EventSink};
use crate::controller::MprpcController;
use crate::error::{Error, ErrorCode, RpcError};
use crate::registry::{ProviderList, Registry, StaticRegistry};
use crate::service::ServiceDescriptor;

/// How many providers one call may try when connecting fails.
const MAX_ATTEMPTS: usize = 3;

/// Locks, ignoring poisoning (all critical sections are single map updates).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// ANCHOR: channel
/// The caller's side of the framework (the course's `MprpcChannel`). Cheap to
/// clone; clones share connections.
#[derive(Clone, Debug)]
pub struct MprpcChannel {
    /// Shared state.
    inner: Arc<ChannelInner>,
}

/// State shared by all clones of a channel.
#[derive(Debug)]
struct ChannelInner {
    /// Where provider lists come from.
    registry: Arc<dyn Registry>,
    /// Provider list per service, kept current by the registry.
    lists: Mutex<HashMap<&'static str, watch::Receiver<ProviderList>>>,
    /// One multiplexed connection per provider address.
    pool: Mutex<HashMap<String, Arc<Connection>>>,
    /// Per-address lock held while connecting, so a burst of first calls
    /// opens one connection, not one each.
    connecting: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Providers to avoid until the given instant (connection failed or
    /// provider draining). Taken out at once, before ZooKeeper notices.
    ejected: Mutex<HashMap<String, Instant>>,
    /// Numbers connections, so events of an old connection cannot evict a
    /// new one from the pool.
    next_serial: AtomicU64,
    /// Round-robin position.
    rr: AtomicUsize,
    /// State of the random generator used by power-of-two-choices.
    rng: AtomicU64,
    /// Load-balancing policy.
    policy: LoadBalance,
    /// Connection parameters.
    settings: ConnSettings,
    /// Deadline of calls whose controller sets none.
    default_timeout: Option<Duration>,
    /// How long a failed provider is avoided.
    eject_for: Duration,
}
// ANCHOR_END: channel

impl MprpcChannel {
    /// A channel using `registry` for discovery and `config` for limits,
    /// timeouts and load balancing.
    pub fn new(config: &MprpcConfig, registry: Arc<dyn Registry>) -> MprpcChannel {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9E37_79B9, |d| d.as_nanos() as u64)
            | 1;
        MprpcChannel {
            inner: Arc::new(ChannelInner {
                registry,
                lists: Mutex::new(HashMap::new()),
                pool: Mutex::new(HashMap::new()),
                connecting: Mutex::new(HashMap::new()),
                ejected: Mutex::new(HashMap::new()),
                next_serial: AtomicU64::new(1),
                rr: AtomicUsize::new(0),
                rng: AtomicU64::new(seed),
                policy: config.load_balance,
                settings: ConnSettings {
                    max_frame_size: config.limits.max_frame_size,
                    max_in_flight: config.limits.max_in_flight_per_connection,
                    connect_timeout: Duration::from_millis(config.timeouts.connect_ms.max(1)),
                },
                default_timeout: Timeouts::opt(config.timeouts.call_ms),
                eject_for: Duration::from_millis(config.timeouts.eject_ms),
            }),
        }
    }

    /// A channel with the registry the config asks for: ZooKeeper when
    /// `zookeeperip` is set, else the `[static_registry]` table.
    pub async fn from_config(config: &MprpcConfig) -> Result<MprpcChannel, Error> {
        let registry = crate::registry::from_config(config).await?;
        Ok(MprpcChannel::new(config, registry))
    }

    /// A channel that sends every service to `addr`, with default settings
    /// (handy for tests, benchmarks and one-provider setups).
    pub fn direct(addr: &str) -> MprpcChannel {
        Self::direct_with(&MprpcConfig::default(), addr)
    }

    /// Like [`direct`](Self::direct) with explicit settings.
    pub fn direct_with(config: &MprpcConfig, addr: &str) -> MprpcChannel {
        MprpcChannel::new(config, Arc::new(StaticRegistry::everything_at([addr])))
    }

    // ANCHOR: call
    /// Calls method number `method` of `service` and decodes the response
    /// (the course's `CallMethod`). Generated stubs call this; it is public
    /// for hand-written clients.
    ///
    /// The deadline is the controller's timeout, else the configured
    /// `timeouts.call_ms`. The outcome is recorded in the controller.
    pub async fn call<Req, Resp>(
        &self,
        controller: Option<&MprpcController>,
        service: &'static ServiceDescriptor,
        method: usize,
        request: &Req,
    ) -> Result<Resp, RpcError>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let timeout = controller
            .and_then(|c| c.timeout())
            .or(self.inner.default_timeout);
        // The connection the request went out on, and when.
        let sent_on = Mutex::new(None);
        let work = async {
            let payload = self
                .send(service, method, timeout, request, &sent_on)
                .await?;
            Resp::decode(payload).map_err(|e| {
                RpcError::new(
                    ErrorCode::BadResponse,
                    format!(
                        "response of {}.{} is not valid protobuf: {e}",
                        service.full_name,
                        method_name(service, method)
                    ),
                )
            })
        };
        let deadline = async {
            match timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        let cancel = async {
            match controller {
                Some(c) => c.cancelled().await,
                None => std::future::pending().await,
            }
        };
        // Whichever finishes first wins; dropping `work` runs the
        // connection's call guard, which sends a cancel frame.
        let result = tokio::select! {
            r = work => r,
            _ = deadline => Err(RpcError::new(
                ErrorCode::DeadlineExceeded,
                format!("{}.{} took longer than {:?}", service.full_name, method_name(service, method), timeout.unwrap_or_default()),
            )),
            _ = cancel => Err(RpcError::new(
                ErrorCode::Cancelled,
                format!("{}.{} was cancelled by its controller", service.full_name, method_name(service, method)),
            )),
        };
        if matches!(&result, Err(e) if e.code == ErrorCode::DeadlineExceeded) {
            self.inner.after_deadline(&sent_on);
        }
        if let Some(c) = controller {
            c.record(&result);
        }
        result
    }
    // ANCHOR_END: call

    /// Chooses a provider and sends; retries only calls that provably never
    /// left this process.
    async fn send<Req: prost::Message>(
        &self,
        service: &'static ServiceDescriptor,
        method: usize,
        timeout: Option<Duration>,
        request: &Req,
        sent_on: &Mutex<Option<(Arc<Connection>, Instant)>>,
    ) -> Result<Bytes, RpcError> {
        let Some(method_name) = service.methods.get(method) else {
            return Err(RpcError::new(
                ErrorCode::UnknownMethod,
                format!(
                    "service {} has no method number {method}",
                    service.full_name
                ),
            ));
        };
        let timeout_ms = timeout.map_or(0, |t| t.as_millis().clamp(1, u32::MAX as u128) as u32);
        let list = self.providers(service.full_name).await?;
        let mut tried = 0u64;
        let mut last_err = None;
        for _ in 0..list.len().clamp(1, MAX_ATTEMPTS) {
            let Some(idx) = self.pick(&list, tried) else {
                break;
            };
            tried |= 1 << (idx % 64);
            let addr = &list[idx];
            let conn = match self.connection(addr).await {
                Ok(c) => c,
                Err(e) => {
                    log::warn!("{e}; trying another provider of {}", service.full_name);
                    self.inner.eject(addr);
                    last_err = Some(e);
                    continue;
                }
            };
            *lock(sent_on) = Some((Arc::clone(&conn), Instant::now()));
            match conn
                .call(service.full_name, method_name, timeout_ms, request)
                .await
            {
                Ok(payload) => return Ok(payload),
                Err(CallError::NotSent(e)) => last_err = Some(e),
                Err(CallError::Failed(e)) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| {
            RpcError::new(
                ErrorCode::NoProvider,
                format!("no provider of {} is available", service.full_name),
            )
        }))
    }

    /// The provider list of `service`, subscribing on first use.
    async fn providers(&self, service: &'static str) -> Result<ProviderList, RpcError> {
        let cached = lock(&self.inner.lists)
            .get(service)
            .map(|rx| rx.borrow().clone());
        let list = match cached {
            Some(list) => list,
            None => {
                let rx = self.inner.registry.subscribe(service).await.map_err(|e| {
                    RpcError::new(
                        ErrorCode::NoProvider,
                        format!("looking up {service} failed: {e}"),
                    )
                })?;
                let list = rx.borrow().clone();
                lock(&self.inner.lists).insert(service, rx);
                list
            }
        };
        if list.is_empty() {
            return Err(RpcError::new(
                ErrorCode::NoProvider,
                format!("no provider of {service} is registered"),
            ));
        }
        Ok(list)
    }

    // ANCHOR: pick
    /// Index of the provider to use, skipping those in `tried` (bit mask) and
    /// — unless nothing else is left — those recently ejected.
    fn pick(&self, list: &[String], tried: u64) -> Option<usize> {
        let inner = &self.inner;
        let now = Instant::now();
        let usable = |i: usize, allow_ejected: bool, ejected: &HashMap<String, Instant>| {
            tried & (1 << (i % 64)) == 0
                && (allow_ejected || ejected.get(&list[i]).is_none_or(|until| *until <= now))
        };
        let ejected = lock(&inner.ejected);
        let mut allow_ejected = false;
        let mut count = (0..list.len())
            .filter(|&i| usable(i, false, &ejected))
            .count();
        if count == 0 {
            // Every provider failed recently: try them anyway rather than
            // fail without trying (they may be back).
            allow_ejected = true;
            count = (0..list.len())
                .filter(|&i| usable(i, true, &ejected))
                .count();
        }
        if count == 0 {
            return None;
        }
        let nth = |n: usize| {
            (0..list.len())
                .filter(|&i| usable(i, allow_ejected, &ejected))
                .nth(n)
        };
        match inner.policy {
            LoadBalance::RoundRobin => nth(inner.rr.fetch_add(1, Ordering::Relaxed) % count),
            LoadBalance::P2c => {
                if count == 1 {
                    return nth(0);
                }
                let r = inner.next_random();
                let a = (r % count as u64) as usize;
                let mut b = ((r >> 32) % (count as u64 - 1)) as usize;
                if b >= a {
                    b += 1;
                }
                let (a, b) = (nth(a)?, nth(b)?);
                drop(ejected);
                // Fewer calls in flight wins; a provider we have no
                // connection to yet counts as idle.
                let pool = lock(&inner.pool);
                let load = |i: usize| pool.get(&list[i]).map_or(0, |c| c.in_flight());
                Some(if load(b) < load(a) { b } else { a })
            }
        }
    }
    // ANCHOR_END: pick

    /// The pooled connection to `addr`, connecting if there is none.
    async fn connection(&self, addr: &str) -> Result<Arc<Connection>, RpcError> {
        if let Some(c) = self.inner.pooled(addr) {
            return Ok(c);
        }
        let gate = Arc::clone(
            lock(&self.inner.connecting)
                .entry(addr.to_string())
                .or_default(),
        );
        let _held = gate.lock().await;
        if let Some(c) = self.inner.pooled(addr) {
            return Ok(c);
        }
        let serial = self.inner.next_serial.fetch_add(1, Ordering::Relaxed);
        let weak = Arc::downgrade(&self.inner);
        let owner = addr.to_string();
        let events: EventSink = Arc::new(move |serial, event| {
            if let Some(inner) = weak.upgrade() {
                inner.on_event(&owner, serial, event);
            }
        });
        let conn = Arc::new(Connection::connect(addr, serial, &self.inner.settings, events).await?);
        lock(&self.inner.pool).insert(addr.to_string(), Arc::clone(&conn));
        lock(&self.inner.ejected).remove(addr);
        Ok(conn)
    }
}

impl ChannelInner {
    /// The pooled connection to `addr`, if it is open.
    fn pooled(&self, addr: &str) -> Option<Arc<Connection>> {
        lock(&self.pool).get(addr).filter(|c| c.is_open()).cloned()
    }

    /// Avoids `addr` for a while; `true` if it was not avoided already.
    fn eject(&self, addr: &str) -> bool {
        let mut ejected = lock(&self.ejected);
        let now = Instant::now();
        ejected.retain(|_, until| *until > now);
        ejected
            .insert(addr.to_string(), now + self.eject_for)
            .is_none()
    }

    // ANCHOR: after_deadline
    /// A call missed its deadline. If its provider sent nothing at all on
    /// that connection since the call went out, it is silent — a frozen
    /// process or a host gone from the network resets no connection, and
    /// ZooKeeper drops it only a whole session timeout later. Avoid it now,
    /// as after a failed connection. A provider merely too slow to answer
    /// anything within a deadline is avoided too; a real system would send
    /// pings (gRPC keepalive, HTTP/2 PING) to tell slow from gone.
    fn after_deadline(&self, sent_on: &Mutex<Option<(Arc<Connection>, Instant)>>) {
        if let Some((conn, sent_at)) = lock(sent_on).take() {
            if conn.silent_since(sent_at) {
                // Every call stuck there ends at about the same time: log once.
                if self.eject(conn.addr()) {
                    log::warn!(
                        "{} sent nothing for {:?}; avoiding it",
                        conn.addr(),
                        sent_at.elapsed()
                    );
                }
            }
        }
    }
    // ANCHOR_END: after_deadline

    /// A connection reported draining or death: take its provider out now,
    /// without waiting for ZooKeeper to tell us.
    fn on_event(&self, addr: &str, serial: u64, event: ConnEvent) {
        log::debug!("connection {serial} to {addr}: {event:?}");
        let mut pool = lock(&self.pool);
        if pool.get(addr).is_some_and(|c| c.serial() == serial) {
            pool.remove(addr);
        }
        drop(pool);
        self.eject(addr);
    }

    /// xorshift64: good enough to spread picks, no dependency needed.
    fn next_random(&self) -> u64 {
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.store(x, Ordering::Relaxed);
        x
    }
}

/// Name of method `i`, or "?" for a bad index.
fn method_name(service: &ServiceDescriptor, i: usize) -> &'static str {
    service.methods.get(i).copied().unwrap_or("?")
}

// ANCHOR: blocking
/// A channel plus the runtime that drives it, for synchronous callers such as
/// the course's `main`-function consumers. Used by the generated
/// `Blocking*Stub` types.
#[derive(Clone, Debug)]
pub struct BlockingChannel {
    /// Runs the channel's connection tasks and each blocked-on call.
    runtime: Arc<tokio::runtime::Runtime>,
    /// The async channel doing the work.
    channel: MprpcChannel,
}
// ANCHOR_END: blocking

impl BlockingChannel {
    /// Builds a one-worker runtime and a channel configured by `config`.
    pub fn from_config(config: &MprpcConfig) -> Result<BlockingChannel, Error> {
        let runtime = Self::runtime()?;
        let channel = runtime.block_on(MprpcChannel::from_config(config))?;
        Ok(BlockingChannel {
            runtime: Arc::new(runtime),
            channel,
        })
    }

    /// Like [`MprpcChannel::direct`].
    pub fn direct(addr: &str) -> Result<BlockingChannel, Error> {
        let runtime = Self::runtime()?;
        // The channel spawns its connection tasks lazily, inside block_on,
        // so they land on this runtime.
        let channel = MprpcChannel::direct(addr);
        Ok(BlockingChannel {
            runtime: Arc::new(runtime),
            channel,
        })
    }

    /// A runtime with one worker thread: connection tasks keep running
    /// between calls (a current-thread runtime would only run them inside
    /// `block_on`).
    fn runtime() -> Result<tokio::runtime::Runtime, Error> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("mprpc-blocking")
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting the blocking channel's runtime", e))
    }

    /// The underlying async channel.
    pub fn channel(&self) -> &MprpcChannel {
        &self.channel
    }

    /// Blocking form of [`MprpcChannel::call`]. Returns an
    /// [`ErrorCode::Internal`] error instead of panicking when called from
    /// inside an async runtime (where blocking would stall its workers).
    pub fn call<Req, Resp>(
        &self,
        controller: Option<&MprpcController>,
        service: &'static ServiceDescriptor,
        method: usize,
        request: &Req,
    ) -> Result<Resp, RpcError>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(RpcError::new(
                ErrorCode::Internal,
                "blocking stub used inside an async runtime; use the async stub there",
            ));
        }
        self.runtime
            .block_on(self.channel.call(controller, service, method, request))
    }
}
