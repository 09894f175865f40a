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
//!
//! Providers of the C++ course speak only the course's format. An address
//! written `"course://ip:port"` (in `[static_registry]`, or found under the
//! course's `/<Service>/<Method>` layout with `course_compat.discover`) is
//! called that way: one connection per call, under the same deadline,
//! cancellation, ejection and balancing as the framed providers it shares
//! the list with.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

use super::connection::{CallError, ConnEvent, ConnSettings, Connection, EventSink, IdHasher};
use super::course::Reached;
use crate::config::{LoadBalance, MprpcConfig, Timeouts};
use crate::controller::MprpcController;
use crate::error::{Error, ErrorCode, Status};
use crate::interceptor::{ClientCall, ClientInterceptor};
use crate::metadata::{Metadata, MetadataLimits};
use crate::registry::{ProviderList, Registry, StaticRegistry};
use crate::service::ServiceDescriptor;
use crate::telemetry::client_metrics;
use crate::telemetry::trace::{self, TraceContext};
use crate::wire::course::COURSE_SCHEME;

// Choosing a provider and pooling connections to it.
mod hot;
mod pool;
mod probe;
// Opening server streams.
mod stream;
#[allow(unused_imports)]
use hot::{Hot, HotCache, Lend, Taken};
use pool::*;
use probe::Ejection;

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
    /// Run before every call, in order ([`MprpcChannel::with_interceptor`]).
    interceptors: Interceptors,
    /// This handle's last connection, while its service has one provider
    /// (`channel/hot.rs`); empty in a clone.
    hot: HotCache,
}

/// A channel's client interceptors.
#[derive(Clone, Default)]
struct Interceptors(Arc<[Arc<dyn ClientInterceptor>]>);

impl std::fmt::Debug for Interceptors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} interceptor(s)", self.0.len())
    }
}

/// A map whose keys no peer chooses (the services' static names, the
/// addresses of connections this channel opened), looked up on every call:
/// hashed with [`IdHasher`] rather than SipHash.
type OwnKeyMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<IdHasher>>;

/// State shared by all clones of a channel.
#[derive(Debug)]
struct ChannelInner {
    /// Where provider lists come from.
    registry: Arc<dyn Registry>,
    /// Provider list per service, kept current by the registry.
    lists: Mutex<OwnKeyMap<&'static str, watch::Receiver<ProviderList>>>,
    /// One multiplexed connection per provider address.
    pool: Mutex<OwnKeyMap<String, Arc<Connection>>>,
    /// Per-address lock held while connecting, so a burst of first calls
    /// opens one connection, not one each.
    connecting: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Providers to avoid (connection failed, provider draining or
    /// silent): taken out at once, before ZooKeeper notices, and let back
    /// in when their time is up and — framed ones — they answer a health
    /// check (`channel/probe.rs`).
    ejected: Mutex<HashMap<String, Ejection>>,
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
    /// Why `[tls]` could not be loaded: then every call fails with this,
    /// never falling back to plaintext.
    tls_error: Option<String>,
    /// `limits.max_metadata_*`: for request metadata before it is sent and
    /// response metadata as it arrives.
    metadata_limits: MetadataLimits,
    /// Deadline of calls whose controller sets none.
    default_timeout: Option<Duration>,
    /// How long a failed provider is avoided.
    eject_for: Duration,
    /// The course's providers (`course_compat.discover`): followed lists,
    /// calls in flight, merged lists.
    course: CourseState,
}
// ANCHOR_END: channel

/// What a channel keeps about course-format providers.
#[derive(Debug, Default)]
struct CourseState {
    /// Also look providers up under `/<Service>/<Method>`.
    discover: bool,
    /// Bound of a course-format call that has no deadline
    /// (`timeouts.idle_ms`): the course's provider never answers a call it
    /// cannot serve, so without one such a call would wait forever.
    idle: Option<Duration>,
    /// Course-layout provider of each (short service name, method index).
    lists: Mutex<HashMap<(&'static str, usize), watch::Receiver<ProviderList>>>,
    /// Last merged list per method, with the two lists it was made of, so
    /// that a call does not allocate while neither changed.
    merged: Mutex<HashMap<(&'static str, usize), Merged>>,
    /// Course-format calls in flight per `course://` address (they have no
    /// pooled connection to count them), for power-of-two-choices.
    in_flight: Mutex<HashMap<String, usize>>,
}

/// A merged provider list and the framed and course lists it was made of.
#[derive(Debug)]
struct Merged {
    /// The registry's list it was made from.
    framed: ProviderList,
    /// The course layout's list it was made from.
    course: ProviderList,
    /// The two together.
    list: ProviderList,
}

/// Where a call's request went, for what to do after a missed deadline.
///
/// Written on every call and read only after a deadline, so the framed
/// case is two plain stores: the connection's serial rather than a handle
/// on it (a reference count up and down, and a lock, per call), looked up
/// in the pool when it is needed. Atomics only because the call's futures
/// share it and must be `Send`; one task uses it, so `Relaxed` suffices.
#[derive(Debug, Default)]
struct SentOn {
    /// Serial of the pooled connection the request went out on; 0 when it
    /// went to a course provider or nowhere yet (serials start at 1).
    serial: AtomicU64,
    /// That connection's [`Connection::received_mark`] when it was sent.
    mark: AtomicU64,
    /// The `course://` provider it went to instead, if the last attempt was
    /// a course-format call (then `serial` is 0).
    course: Mutex<Option<String>>,
}

impl SentOn {
    /// The last attempt went out on `conn`.
    fn framed(&self, conn: &Connection, course_tried: bool) {
        if course_tried {
            *lock(&self.course) = None;
        }
        self.mark.store(conn.received_mark(), Ordering::Relaxed);
        self.serial.store(conn.serial(), Ordering::Relaxed);
    }

    /// The last attempt went to the course provider `entry`.
    fn course(&self, entry: &str) {
        self.serial.store(0, Ordering::Relaxed);
        *lock(&self.course) = Some(entry.to_string());
    }
}

impl MprpcChannel {
    /// A channel using `registry` for discovery and `config` for limits,
    /// timeouts and load balancing.
    ///
    /// With `[tls] ca` every framed connection uses TLS. A `[tls]` section
    /// that cannot be loaded (a missing file, say) makes every call fail
    /// with the reason; [`from_config`](Self::from_config) reports it at
    /// once instead.
    pub fn new(config: &MprpcConfig, registry: Arc<dyn Registry>) -> MprpcChannel {
        let (tls, tls_error) = match crate::tls::connector(&config.tls) {
            Ok(tls) => (tls, None),
            Err(e) => {
                log::error!("{e}; every call of this channel will fail");
                (None, Some(e.to_string()))
            }
        };
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9E37_79B9, |d| d.as_nanos() as u64)
            | 1;
        MprpcChannel {
            inner: Arc::new(ChannelInner {
                registry,
                lists: Mutex::new(OwnKeyMap::default()),
                pool: Mutex::new(OwnKeyMap::default()),
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
                    tls,
                    metadata_limits: config.metadata_limits(),
                    stream_window: u32::try_from(config.limits.stream_window_bytes)
                        .unwrap_or(u32::MAX),
                },
                tls_error,
                metadata_limits: config.metadata_limits(),
                default_timeout: Timeouts::opt(config.timeouts.call_ms),
                eject_for: Duration::from_millis(config.timeouts.eject_ms),
                course: CourseState {
                    discover: config.course_compat.discover,
                    idle: Timeouts::opt(config.timeouts.idle_ms),
                    ..CourseState::default()
                },
            }),
            interceptors: Interceptors::default(),
            hot: HotCache::default(),
        }
    }

    /// A channel with the registry the config asks for: ZooKeeper when
    /// `zookeeperip` is set, else the `[static_registry]` table. Fails if
    /// `[tls]` cannot be loaded.
    pub async fn from_config(config: &MprpcConfig) -> Result<MprpcChannel, Error> {
        crate::tls::connector(&config.tls)?;
        let registry = crate::registry::from_config(config).await?;
        Ok(MprpcChannel::new(config, registry))
    }

    // ANCHOR: with_interceptor
    /// This channel with `interceptor` run before every call, after the
    /// ones it already has. The result shares connections and provider
    /// lists with `self`; `self` keeps its own interceptors.
    pub fn with_interceptor(&self, interceptor: impl ClientInterceptor) -> MprpcChannel {
        let mut all: Vec<_> = self.interceptors.0.iter().cloned().collect();
        all.push(Arc::new(interceptor));
        MprpcChannel {
            inner: Arc::clone(&self.inner),
            interceptors: Interceptors(all.into()),
            hot: HotCache::default(),
        }
    }
    // ANCHOR_END: with_interceptor

    /// The metadata a call sends: the controller's, then whatever the
    /// interceptors make of it; `None` (nothing to send, nothing cloned)
    /// when there is neither.
    #[inline]
    fn request_metadata(
        &self,
        controller: Option<&MprpcController>,
        service: &'static ServiceDescriptor,
        method: usize,
        trace: Option<&TraceContext>,
    ) -> Result<Option<Metadata>, Status> {
        let from_controller = controller.filter(|c| c.has_metadata());
        if self.interceptors.0.is_empty() && from_controller.is_none() && trace.is_none() {
            return Ok(None);
        }
        self.intercepted(from_controller, service, method, trace)
    }

    /// [`request_metadata`](Self::request_metadata) when there is some.
    #[inline(never)] // out of the everything-off path
    fn intercepted(
        &self,
        from_controller: Option<&MprpcController>,
        service: &'static ServiceDescriptor,
        method: usize,
        trace: Option<&TraceContext>,
    ) -> Result<Option<Metadata>, Status> {
        let mut call = ClientCall {
            service: service.full_name,
            method: method_name(service, method),
            metadata: from_controller.map(|c| c.metadata()).unwrap_or_default(),
        };
        // Our span as the provider's parent (interceptors see it, and may
        // change it).
        if let Some(ctx) = trace {
            ctx.inject(&mut call.metadata);
        }
        for interceptor in self.interceptors.0.iter() {
            interceptor.intercept(&mut call)?;
        }
        let limits = self.inner.metadata_limits;
        if trace.is_some() && call.metadata.check(limits).is_err() {
            // The trace context must never be what fails a call: without
            // room for it, the call goes without (and is checked as the
            // caller made it).
            call.metadata.remove(trace::TRACEPARENT);
            call.metadata.remove(trace::TRACESTATE);
        }
        call.metadata.check(limits).map_err(|why| {
            Status::new(
                ErrorCode::BadRequest,
                format!("{}.{}: {why}", call.service, call.method),
            )
        })?;
        Ok(Some(call.metadata))
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
    ) -> Result<Resp, Status>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let timeout = controller
            .and_then(|c| c.timeout())
            .or(self.inner.default_timeout);
        // ANCHOR: client_span
        // The span and the call's clock are made, and kept (boxed), only
        // while a subscriber takes INFO spans: checking is one load, and
        // this future is moved as a whole on every call, so it should not
        // carry them for nobody.
        let traced = tracing::level_enabled!(tracing::Level::INFO)
            .then(|| {
                tracing::info_span!(
                    "rpc.client",
                    service = service.full_name,
                    method = method_name(service, method),
                    peer = tracing::field::Empty,
                    call_id = tracing::field::Empty,
                    status = tracing::field::Empty,
                    duration_us = tracing::field::Empty,
                    trace_id = tracing::field::Empty,
                    span_id = tracing::field::Empty,
                    parent_span_id = tracing::field::Empty,
                )
            })
            .filter(|span| !span.is_disabled())
            .map(|span| {
                let ctx = client_trace(&span, controller);
                ctx.record(&span);
                Box::new((span, Instant::now(), ctx))
            });
        // ANCHOR_END: client_span
        let span = traced.as_deref().map(|(span, _, _)| span);
        let trace = traced.as_deref().map(|(_, _, ctx)| ctx);
        // Client metrics: one load while they are off.
        let metered = client_metrics::enabled().then(Instant::now);
        if let Some(c) = controller {
            c.set_response_metadata(Metadata::new());
        }
        // The connection the request went out on, and when.
        let sent_on = SentOn::default();
        let deadline_at = timeout.map(|t| Instant::now() + t);
        // Set once the request waits on a connection that enforces the
        // deadline itself (see `Connection::call`).
        let handed_over = AtomicBool::new(false);
        let work = async {
            let metadata = self.request_metadata(controller, service, method, trace)?;
            let (payload, md) = self
                .send(
                    service,
                    method,
                    timeout,
                    deadline_at,
                    &handed_over,
                    metadata.as_ref(),
                    request,
                    (&sent_on, span),
                )
                .await?;
            if let Some(c) = controller.filter(|_| !md.is_empty()) {
                c.set_response_metadata(md);
            }
            Resp::decode(payload).map_err(|e| {
                Status::new(
                    ErrorCode::BadResponse,
                    format!(
                        "response of {}.{} is not valid protobuf: {e}",
                        service.full_name,
                        method_name(service, method)
                    ),
                )
            })
        };
        // A timer of our own only while the call has not reached a
        // connection (looking providers up, connecting, waiting for a
        // slot): `work` is polled first, so on the common path it is
        // already handed over and no timer is armed for this call at all.
        let deadline = async {
            match deadline_at {
                Some(_) if handed_over.load(Ordering::Relaxed) => std::future::pending().await,
                Some(at) => tokio::time::sleep_until(at.into()).await,
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
            // The work first: no random number per call, and a response
            // that is already there wins over a deadline passing just now.
            biased;
            r = work => r,
            _ = deadline => Err(deadline_error(service, method, timeout)),
            _ = cancel => Err(Status::new(
                ErrorCode::Cancelled,
                format!("{}.{} was cancelled by its controller", service.full_name, method_name(service, method)),
            )),
        };
        if matches!(&result, Err(e) if e.code == ErrorCode::DeadlineExceeded) {
            self.inner.after_deadline(&sent_on);
        }
        if let Some(c) = controller {
            if let Err(e) = &result {
                if !e.metadata.is_empty() {
                    c.set_response_metadata(e.metadata.clone());
                }
            }
            c.record(&result);
        }
        if let Some(started) = metered {
            let code = result.as_ref().err().map_or(ErrorCode::Ok, |e| e.code);
            let name = method_name(service, method);
            client_metrics::record_call(service.full_name, name, code, started.elapsed());
        }
        if let Some((span, started, _)) = traced.as_deref() {
            let status = result.as_ref().err().map_or("ok", |e| e.code.as_str());
            span.record("status", status);
            span.record("duration_us", started.elapsed().as_micros() as u64);
        }
        result
    }
    // ANCHOR_END: call

    /// Chooses a provider and sends; retries only calls that provably never
    /// left this process.
    #[allow(clippy::too_many_arguments)] // one private call site
    async fn send<Req: prost::Message>(
        &self,
        service: &'static ServiceDescriptor,
        method: usize,
        timeout: Option<Duration>,
        deadline_at: Option<Instant>,
        handed_over: &AtomicBool,
        metadata: Option<&Metadata>,
        request: &Req,
        (sent_on, span): (&SentOn, Option<&tracing::Span>),
    ) -> Result<(Bytes, Metadata), Status> {
        let Some(method_name) = service.methods.get(method) else {
            return Err(Status::new(
                ErrorCode::UnknownMethod,
                format!(
                    "service {} has no method number {method}",
                    service.full_name
                ),
            ));
        };
        let timeout_ms = timeout.map_or(0, |t| t.as_millis().clamp(1, u32::MAX as u128) as u32);
        // ANCHOR: hot_take
        // The handle's cached connection when its service has one provider
        // (no shared table touched); else the general way.
        let (list, mut lent, fill) = match self.hot.take(service) {
            Taken::Hot(hot) => (
                hot.list,
                Some((hot.conn, hot.watch, Lend::of(&self.hot))),
                false,
            ),
            Taken::Empty => (self.providers(service, method).await?, None, true),
            Taken::Lent => (self.providers(service, method).await?, None, false),
        };
        // ANCHOR_END: hot_take
        // Each attempt is counted against its provider's address (from the
        // registry's list), when client metrics are on.
        let metered = client_metrics::enabled();
        let count = |addr: &str, code: ErrorCode| {
            if metered {
                client_metrics::record_attempt(addr, code);
            }
        };
        let mut tried = 0u64;
        let mut course_tried = false;
        let mut last_err = None;
        for _ in 0..list.len().clamp(1, MAX_ATTEMPTS) {
            let Some(idx) = self.pick(&list, tried) else {
                break;
            };
            tried |= 1 << (idx % 64);
            let addr = &list[idx];
            if let Some(course_addr) = addr.strip_prefix(COURSE_SCHEME) {
                sent_on.course(addr);
                course_tried = true;
                // Boxed: the course's one-shot call is a large future, and
                // inline it would make every framed call's future (which is
                // moved as a whole on each call) that much larger too.
                match Box::pin(self.course_call(
                    addr,
                    course_addr,
                    service,
                    method_name,
                    request,
                    timeout,
                ))
                .await
                {
                    Ok(payload) => {
                        count(addr, ErrorCode::Ok);
                        // It answers again (it may have been tried while
                        // ejected, everything else being ejected too).
                        self.inner.restore(addr);
                        // The course's format has no metadata either way.
                        return Ok((payload, Metadata::new()));
                    }
                    Err((Reached::No, e)) => {
                        count(addr, e.code);
                        log::warn!("{e}; trying another provider of {}", service.full_name);
                        self.inner.eject(addr);
                        last_err = Some(e);
                        continue;
                    }
                    Err((Reached::Maybe, e)) => {
                        count(addr, e.code);
                        if e.code == ErrorCode::Transport {
                            self.inner.eject(addr);
                        }
                        return Err(e);
                    }
                }
            }
            let (conn, loan) = match lent.take() {
                Some((conn, watch, loan)) => (conn, Some((watch, loan))),
                None => match self.connection(addr).await {
                    Ok(c) => (c, None),
                    Err(e) => {
                        count(addr, e.code);
                        log::warn!("{e}; trying another provider of {}", service.full_name);
                        self.inner.eject(addr);
                        last_err = Some(e);
                        continue;
                    }
                },
            };
            sent_on.framed(&conn, course_tried);
            if let Some(span) = span {
                span.record("peer", addr.as_str());
            }
            match conn
                .call(
                    service.full_name,
                    method_name,
                    timeout_ms,
                    deadline_at,
                    handed_over,
                    (metadata, span),
                    request,
                )
                .await
            {
                Ok(payload) => {
                    count(addr, ErrorCode::Ok);
                    self.keep_hot(service, list, conn, loan, fill);
                    return Ok(payload);
                }
                Err(CallError::NotSent(e)) => {
                    count(addr, e.code);
                    last_err = Some(e);
                }
                Err(CallError::Failed(e)) => {
                    count(addr, e.code);
                    self.keep_hot(service, list, conn, loan, fill);
                    return Err(e);
                }
                Err(CallError::DeadlinePassed) => {
                    count(addr, ErrorCode::DeadlineExceeded);
                    return Err(deadline_error(service, method, timeout));
                }
            }
        }
        Err(last_err.unwrap_or_else(|| {
            Status::new(
                ErrorCode::NoProvider,
                format!("no provider of {} is available", service.full_name),
            )
        }))
    }

    /// One call to the course-format provider `entry` (`"course://ip:port"`,
    /// `addr` without the scheme), counted as in flight while it runs.
    /// Always the course's short service name, whatever the framed path
    /// sends.
    async fn course_call<Req: prost::Message>(
        &self,
        entry: &str,
        addr: &str,
        service: &'static ServiceDescriptor,
        method_name: &str,
        request: &Req,
        timeout: Option<Duration>,
    ) -> Result<Bytes, (Reached, Status)> {
        let _counted = CourseCall::start(&self.inner, entry);
        let args = request.encode_to_vec();
        let call = super::course::call_bytes(
            addr,
            service.name,
            method_name,
            &args,
            self.inner.settings.max_frame_size,
            self.inner.settings.connect_timeout,
        );
        // `call` races the deadline; without one, idle_ms still ends it.
        match (timeout, self.inner.course.idle) {
            (None, Some(idle)) => tokio::time::timeout(idle, call).await.unwrap_or_else(|_| {
                let msg = format!(
                    "course-format call {}.{method_name} to {addr}: no reply within \
                     timeouts.idle_ms = {idle:?} (the call has no deadline)",
                    service.name
                );
                Err((
                    Reached::Maybe,
                    Status::new(ErrorCode::DeadlineExceeded, msg),
                ))
            }),
            _ => call.await,
        }
    }
}

// ANCHOR: client_trace
/// The trace context of a call's `rpc.client` span: a child of the
/// `traceparent` the caller set on its controller, else of the handler
/// this call is made from, else the root of a new trace. With the `otel`
/// feature and a layer recording `span`, OpenTelemetry's ids for it.
fn client_trace(span: &tracing::Span, controller: Option<&MprpcController>) -> TraceContext {
    let from_controller = controller
        .filter(|c| c.has_metadata())
        .and_then(|c| TraceContext::from_metadata(&c.metadata()));
    #[cfg(feature = "otel")]
    if let Some(ctx) = crate::telemetry::otel::client(span, from_controller.clone()) {
        return ctx;
    }
    #[cfg(not(feature = "otel"))]
    let _ = span;
    from_controller
        .or_else(trace::current)
        .map_or_else(TraceContext::new_root, |parent| parent.child())
}
// ANCHOR_END: client_trace

/// The error of a call whose deadline passed.
fn deadline_error(service: &ServiceDescriptor, method: usize, timeout: Option<Duration>) -> Status {
    Status::new(
        ErrorCode::DeadlineExceeded,
        format!(
            "{}.{} took longer than {:?}",
            service.full_name,
            method_name(service, method),
            timeout.unwrap_or_default()
        ),
    )
}

/// Name of method `i`, or "?" for a bad index.
fn method_name(service: &ServiceDescriptor, i: usize) -> &'static str {
    service.methods.get(i).copied().unwrap_or("?")
}
