//! Listening, the accept loop, connection slots, and the first bytes of a
//! connection: TLS, then the preamble that tells mprpc from the course's
//! format.

use super::*;

// ANCHOR: listen
/// Pending connections the kernel queues for `accept` (Linux caps it at
/// `net.core.somaxconn`, 4096 by default). `TcpListener::bind` uses 128, as
/// the standard library does: a burst of more than 128 connections (a
/// restart of many callers, or a flood) then overflows the queue, the kernel
/// drops the excess SYNs and those callers retry only after 1 s — longer
/// than the default `connect_ms`. Measured in `tests/hostile_clients.rs`.
pub(super) const LISTEN_BACKLOG: u32 = 1024;

/// Binds `addr` ("ip:port", or "host:port" resolved once) and listens with
/// [`LISTEN_BACKLOG`].
pub(super) async fn listen(addr: &str) -> std::io::Result<TcpListener> {
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
pub(super) async fn wait_for_signal() {
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

// ANCHOR: accept_loop
/// Accepts connections until shutdown, then waits (up to the drain timeout)
/// for the connection tasks to finish.
pub(super) async fn accept_loop(
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
pub(super) async fn stopped(rx: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`; drop it here.
    let _ = rx.wait_for(|stop| *stop).await.map(|_| ());
}

/// What a connection is doing, for choosing whom to close at
/// `max_connections`. Stored in [`Slot::phase`].
pub(super) mod phase {
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
pub(super) struct Slots {
    /// `limits.max_connections`.
    pub(super) max: usize,
    /// Time origin of [`Slot::since`].
    pub(super) epoch: Instant,
    /// Open connections by serial number.
    pub(super) table: Mutex<HashMap<u64, Arc<Slot>>>,
    /// Next serial number.
    pub(super) next: AtomicU64,
    /// Connections told to close that have not yet closed: they no longer
    /// count against `max`.
    pub(super) evicting: AtomicUsize,
}

/// One connection's entry in [`Slots`].
pub(super) struct Slot {
    /// One of [`phase`].
    pub(super) phase: AtomicU8,
    /// When the current phase began, in nanoseconds since [`Slots::epoch`].
    pub(super) since: AtomicU64,
    /// Set once the connection has been chosen to make room.
    pub(super) evicted: AtomicBool,
    /// Wakes the connection's task to close.
    pub(super) evict: Notify,
    /// The table, for the phase clock and for removal.
    pub(super) slots: Arc<Slots>,
    /// Key in the table.
    pub(super) serial: u64,
}

impl Slots {
    /// No connections yet.
    pub(super) fn new(max: usize) -> Slots {
        Slots {
            max,
            epoch: Instant::now(),
            table: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
            evicting: AtomicUsize::new(0),
        }
    }

    /// Nanoseconds since the epoch.
    pub(super) fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// A slot for a new connection, making room if needed; `None` when
    /// every connection is busy.
    pub(super) fn admit(this: &Arc<Slots>) -> Option<Arc<Slot>> {
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
    pub(super) fn least_productive(&self, table: &HashMap<u64, Arc<Slot>>) -> Option<Arc<Slot>> {
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
    pub(super) fn set(&self, p: u8) {
        if self.phase.load(Ordering::Relaxed) != p {
            self.phase.store(p, Ordering::Relaxed);
            self.since.store(self.slots.now(), Ordering::Relaxed);
        }
    }

    /// How long the current phase has lasted.
    pub(super) fn age(&self) -> Duration {
        let since = self.since.load(Ordering::Relaxed);
        Duration::from_nanos(self.slots.now().saturating_sub(since))
    }

    /// Completes once the connection has been chosen to make room.
    pub(super) async fn evicted(&self) {
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
pub(super) struct SlotGuard(Arc<Slot>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        lock(&self.0.slots.table).remove(&self.0.serial);
    }
}
// ANCHOR_END: slots

/// Locks, ignoring poisoning: every critical section here is a single
/// insert, remove or scan.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Answers a connection over the limit with a clear error, then closes it.
pub(super) async fn refuse(mut stream: TcpStream, shared: Arc<Shared>, max: usize) {
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
pub(super) async fn read_at_least<S: AsyncRead + Unpin>(
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
pub(super) async fn serve_connection(
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
        let legacy = super::course::serve(
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
pub(super) async fn serve_tls(
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
pub(super) fn legacy_table(
    services: &HashMap<Vec<u8>, Published>,
) -> HashMap<Vec<u8>, LegacyEntry> {
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
