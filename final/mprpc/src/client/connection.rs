//! One caller-side connection to one provider, shared by many calls at once.
//!
//! The course opened a TCP connection per call, wrote the request, read once
//! into a 1024-byte buffer and closed. Here a connection lives as long as the
//! provider does, and calls are multiplexed over it:
//!
//! * a call takes an entry of the `pending` table — a slab whose entries
//!   hold the call's state and its task's `Waker`, so no channel is
//!   allocated per call ([`pending`]); the call id is the entry's
//!   generation << 32 | its index — and encodes its request frame straight
//!   into a shared write buffer;
//! * the caller that finds nobody writing writes: it yields once, so that
//!   the other callers runnable now queue their frames too, then writes
//!   everything queued since the last write with one `try_write` — under
//!   load dozens of requests leave in one syscall (what Nagle's algorithm
//!   tries to do, without its delay; `TCP_NODELAY` is set), and no other
//!   thread is woken to do it. A **writer task** takes over what the
//!   socket did not take, TLS connections, and frames no call waits on
//!   (cancels, credit);
//! * a **reader task** decodes response frames and completes the matching
//!   pending call (stores the reply in its entry and wakes it), in whatever
//!   order the provider answers; a late response for an entry reused since
//!   (another generation) is dropped.
//!
//! Dropping a call's future (cancellation, caller gave up) frees its entry
//! and sends a cancel frame, so nothing leaks and the provider can stop the
//! work. Deadlines of calls waiting for their response are
//! enforced by one **deadline task** per connection, which fails the
//! expired calls and sends their cancel frames the same way: one timer for
//! the connection instead of one armed and disarmed per call.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::error::{ErrorCode, Status};
use crate::metadata::{Metadata, MetadataLimits};
use crate::tls::TlsClient;
use crate::wire::frame::{self, Frame, PREAMBLE};

// The connection's writer, reader and deadline tasks.
mod io;
use io::*;
// Server streams.
mod stream;
use stream::*;
pub(crate) use stream::{RawStream, StreamSender};
// The table of calls waiting for their responses.
mod pending;
use pending::{Pending, Polled};

/// Who writes the queued frames (the value of `Shared::role`).
mod role {
    /// Nobody: the next frame queued starts a write.
    pub const IDLE: u8 = 0;
    /// A caller, with the socket's write half directly ([`super::io::write_as_caller`]).
    pub const CALLER: u8 = 1;
    /// The writer task.
    pub const TASK: u8 = 2;
}

/// Connection state values.
mod state {
    /// Calls may start.
    pub const OPEN: u8 = 0;
    /// The provider sent goaway: in-flight calls finish, new ones go elsewhere.
    pub const DRAINING: u8 = 1;
    /// Broken or closed; no call can succeed.
    pub const DEAD: u8 = 2;
}

/// What a connection reports to its owner (the channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnEvent {
    /// The provider is draining (graceful shutdown).
    Draining,
    /// The connection failed or closed.
    Dead,
}

/// Callback through which a connection reports [`ConnEvent`]s: (connection
/// serial, event).
pub(crate) type EventSink = Arc<dyn Fn(u64, ConnEvent) + Send + Sync>;

/// Settings a connection needs from the config.
#[derive(Debug, Clone)]
pub(crate) struct ConnSettings {
    /// Largest frame sent or accepted.
    pub max_frame_size: usize,
    /// Most calls in flight at once; more wait for a slot.
    pub max_in_flight: usize,
    /// Connect timeout (TCP and, with TLS, the handshake).
    pub connect_timeout: Duration,
    /// TLS for every connection (`[tls] ca`), or plaintext.
    pub tls: Option<TlsClient>,
    /// `limits.max_metadata_*`, for response metadata.
    pub metadata_limits: MetadataLimits,
    /// `limits.stream_window_bytes`: the window each stream announces.
    pub stream_window: u32,
}

/// A response — its payload and its metadata — or the reason there is
/// none (with the metadata sent with the error).
type Reply = Result<(Bytes, Metadata), Status>;

/// Hashes keys no peer chooses with one multiplication per word (Fibonacci
/// hashing) instead of SipHash, which costs more per call than the rest of
/// a lookup. Used by the channel for service names (the generated code's constants)
/// and the addresses of connections it opened (one entry per live
/// connection). Nobody can aim for collisions in those. (The provider's
/// tables are keyed by ids its *callers* choose, and keep SipHash.)
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl IdHasher {
    /// Mixes one word in.
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Eight bytes at a time: a 21-byte service name is three steps.
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.add(u64::from_le_bytes(b));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b));
        }
    }
    fn write_u8(&mut self, b: u8) {
        self.add(u64::from(b));
    }
    fn write_u64(&mut self, id: u64) {
        self.add(id);
    }
}

/// The message of the reply [`deadlines`] sends a call whose deadline
/// passed; [`Connection::call`] turns it into [`CallError::DeadlinePassed`].
const DEADLINE_PASSED: &str = "deadline passed while waiting for the response";

/// Bounds the calls in flight on one connection (the provider's
/// `max_in_flight_per_connection`). Like a semaphore, but taking and
/// returning a slot is one atomic operation each: tokio's `Semaphore`
/// takes a mutex on every release, which on this path, once per call, was
/// measurable (chapter Performance). Only callers that find every slot
/// taken touch the `Notify`.
#[derive(Debug)]
struct Slots {
    /// Slots taken.
    used: AtomicUsize,
    /// Slots in all.
    max: usize,
    /// Callers waiting for a slot (so a release knows whether to wake one).
    waiting: AtomicUsize,
    /// Set when the connection dies: waiters and new callers fail.
    closed: AtomicBool,
    /// Wakes a waiter when a slot is returned (or all of them, on close).
    freed: Notify,
}

/// One taken slot; returned when dropped.
#[derive(Debug)]
struct Slot<'a>(&'a Slots);

impl Slots {
    /// `max` slots, none taken.
    fn new(max: usize) -> Slots {
        Slots {
            used: AtomicUsize::new(0),
            max: max.max(1),
            waiting: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            freed: Notify::new(),
        }
    }

    /// Takes a free slot if there is one.
    fn try_take(&self) -> Option<Slot<'_>> {
        let mut used = self.used.load(Ordering::SeqCst);
        while used < self.max {
            match self.used.compare_exchange_weak(
                used,
                used + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return Some(Slot(self)),
                Err(now) => used = now,
            }
        }
        None
    }

    /// Waits for a slot; `Err` once the connection is closed.
    async fn acquire(&self) -> Result<Slot<'_>, ()> {
        loop {
            if self.closed.load(Ordering::SeqCst) {
                return Err(());
            }
            if let Some(slot) = self.try_take() {
                return Ok(slot);
            }
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered (and counted) before the second look: a slot
            // returned after it wakes us, one returned before it is seen.
            freed.as_mut().enable();
            self.waiting.fetch_add(1, Ordering::SeqCst);
            let _counted = Waiter(&self.waiting);
            if self.closed.load(Ordering::SeqCst) {
                return Err(());
            }
            if let Some(slot) = self.try_take() {
                return Ok(slot);
            }
            freed.await;
        }
    }

    /// Fails every waiter and every later `acquire`.
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.freed.notify_waiters();
    }
}

/// Uncounts a waiter however its wait ends (including being dropped).
struct Waiter<'a>(&'a AtomicUsize);

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let slots = self.0;
        slots.used.fetch_sub(1, Ordering::SeqCst);
        if slots.waiting.load(Ordering::SeqCst) > 0 {
            slots.freed.notify_one();
        }
    }
}

// ANCHOR: conn_shared
/// State shared by the connection handle, its reader and writer tasks and
/// every call in flight.
struct Shared {
    /// Provider address, for messages.
    addr: String,
    /// Identifies this connection to the channel's pool.
    serial: u64,
    /// Calls waiting for a response, by id (see [`pending`]).
    pending: Mutex<Pending>,
    /// Nanoseconds after `opened` of the earliest deadline the deadline
    /// task may have to enforce (`u64::MAX`: none). Lowered under the
    /// `pending` lock by a call with an earlier deadline, recomputed by the
    /// task when it sweeps; often too early (that call was answered), never
    /// too late.
    sweep_at: AtomicU64,
    /// Wakes the deadline task: an earlier deadline, or the connection died.
    sweep_wake: Notify,
    /// Frames queued, not yet written.
    wbuf: Mutex<BytesMut>,
    /// Who writes them now (see [`role`]); changed only under the `wbuf`
    /// lock, so that a frame queued is always seen by the one writing.
    role: AtomicU8,
    /// Plain TCP: the write half, for a caller to write with itself
    /// instead of waking the writer task; `None` with TLS.
    direct: Option<Arc<tokio::net::tcp::OwnedWriteHalf>>,
    /// The buffer a caller writing swaps with `wbuf` (only the one whose
    /// role is [`role::CALLER`] touches it).
    spare: Mutex<BytesMut>,
    /// Wakes the writer task (queued frames, or a state change).
    writer_wake: Notify,
    /// The writer took `wbuf` and wrote it: stream senders waiting for
    /// room in `wbuf` look again.
    wrote: Notify,
    /// Calls started and not yet finished (load balancing reads it too).
    in_flight: AtomicUsize,
    /// See [`state`].
    state: AtomicU8,
    /// Bounds calls in flight to the provider's per-connection limit, so a
    /// busy caller waits here instead of being refused as "overloaded".
    slots: Slots,
    /// Largest frame sent or accepted.
    max_frame_size: usize,
    /// Most response metadata accepted.
    metadata_limits: MetadataLimits,
    /// Tells the channel about draining/death.
    events: EventSink,
    /// When the connection was made; `last_received` counts from here.
    opened: Instant,
    /// Nanoseconds after `opened` at which bytes last arrived (0: never).
    /// A deadline passing with nothing received since the call was sent
    /// means a silent provider (see [`Connection::silent_since`]).
    last_received: AtomicU64,
    /// Open streams by id (an id space of their own).
    streams: Mutex<HashMap<u64, StreamSink, BuildHasherDefault<IdHasher>>>,
    /// The last stream id handed out.
    last_stream: AtomicU64,
    /// The provider's preamble flags, once read (streams wait for them).
    peer_flags: tokio::sync::watch::Sender<PeerFlags>,
}
// ANCHOR_END: conn_shared

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("addr", &self.addr)
            .field("serial", &self.serial)
            .field("in_flight", &self.in_flight)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// Locks, ignoring poisoning: every critical section here leaves the data
/// consistent (single inserts/removes/appends), so a panic elsewhere cannot
/// leave it half-updated.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Why a call failed, and whether it is safe to try another provider.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The request never left this process (connection draining or dead
    /// before it was queued): retrying elsewhere cannot duplicate it.
    NotSent(Status),
    /// The request may have reached the provider.
    Failed(Status),
    /// The call's deadline passed while it waited for its response (a
    /// cancel frame has been queued); the channel words the error.
    DeadlinePassed,
}

/// Handle to a live connection. The pool keeps one; each call clones the
/// `Arc` around it while running. Dropping the last handle closes the
/// connection gracefully.
#[derive(Debug)]
pub(crate) struct Connection {
    /// Shared state.
    shared: Arc<Shared>,
}

impl Connection {
    /// Connects to `addr`, sends the preamble and starts the reader and
    /// writer tasks.
    pub(crate) async fn connect(
        addr: &str,
        serial: u64,
        settings: &ConnSettings,
        events: EventSink,
    ) -> Result<Connection, Status> {
        let stream =
            match tokio::time::timeout(settings.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    return Err(Status::new(
                        ErrorCode::Transport,
                        format!("connecting to {addr} failed: {e}"),
                    ));
                }
                Err(_) => {
                    return Err(Status::new(
                        ErrorCode::Transport,
                        format!(
                            "connecting to {addr} timed out after {:?}",
                            settings.connect_timeout
                        ),
                    ));
                }
            };
        // Requests are batched by the writer task; Nagle would only add delay.
        let _ = stream.set_nodelay(true);
        match &settings.tls {
            None => {
                let (rd, wr) = stream.into_split();
                let wr = Arc::new(wr);
                let task_half = SharedHalf(Arc::clone(&wr));
                Ok(Self::start(
                    addr,
                    serial,
                    settings,
                    events,
                    rd,
                    (task_half, Some(wr)),
                ))
            }
            Some(tls) => {
                let name = tls.name_for(addr).map_err(|e| {
                    Status::new(ErrorCode::Transport, format!("TLS to {addr}: {e}"))
                })?;
                let handshake = tls.connector.connect(name, stream);
                let stream = match tokio::time::timeout(settings.connect_timeout, handshake).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        return Err(Status::new(
                            ErrorCode::Transport,
                            format!("TLS handshake with {addr} failed: {e}"),
                        ));
                    }
                    Err(_) => {
                        return Err(Status::new(
                            ErrorCode::Transport,
                            format!(
                                "TLS handshake with {addr} timed out after {:?}",
                                settings.connect_timeout
                            ),
                        ));
                    }
                };
                let (rd, wr) = tokio::io::split(stream);
                Ok(Self::start(addr, serial, settings, events, rd, (wr, None)))
            }
        }
    }

    /// Sends the preamble and starts the reader and writer tasks on the two
    /// halves of a connected stream (plain TCP or TLS); `direct` is the
    /// plain write half callers may write to themselves.
    fn start<R, W>(
        addr: &str,
        serial: u64,
        settings: &ConnSettings,
        events: EventSink,
        rd: R,
        (wr, direct): (W, Option<Arc<tokio::net::tcp::OwnedWriteHalf>>),
    ) -> Connection
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let mut wbuf = BytesMut::with_capacity(16 * 1024);
        wbuf.extend_from_slice(&PREAMBLE);
        let shared = Arc::new(Shared {
            addr: addr.to_string(),
            serial,
            // Grows to the most calls in flight at once, then stays.
            pending: Mutex::new(Pending::with_capacity(settings.max_in_flight.min(16))),
            sweep_at: AtomicU64::new(u64::MAX),
            sweep_wake: Notify::new(),
            wbuf: Mutex::new(wbuf),
            // The writer task sends the preamble.
            role: AtomicU8::new(role::TASK),
            direct,
            spare: Mutex::new(BytesMut::with_capacity(16 * 1024)),
            writer_wake: Notify::new(),
            wrote: Notify::new(),
            in_flight: AtomicUsize::new(0),
            state: AtomicU8::new(state::OPEN),
            slots: Slots::new(settings.max_in_flight),
            max_frame_size: settings.max_frame_size,
            metadata_limits: settings.metadata_limits,
            events,
            opened: Instant::now(),
            last_received: AtomicU64::new(0),
            streams: Mutex::default(),
            last_stream: AtomicU64::new(0),
            peer_flags: tokio::sync::watch::Sender::new(PeerFlags::Unknown),
        });
        shared.writer_wake.notify_one();
        tokio::spawn(writer(wr, Arc::clone(&shared)));
        tokio::spawn(reader(rd, Arc::clone(&shared)));
        tokio::spawn(deadlines(Arc::clone(&shared)));
        Connection { shared }
    }

    /// Identifies this connection in the pool.
    pub(crate) fn serial(&self) -> u64 {
        self.shared.serial
    }

    /// Calls in flight (for power-of-two-choices).
    pub(crate) fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Relaxed)
    }

    /// Provider address.
    pub(crate) fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// A mark of the last time bytes arrived, to give back to
    /// [`silent_since`](Self::silent_since) later. Taken when a call is
    /// sent, it costs one atomic load where a timestamp would cost a clock
    /// read on every call.
    pub(crate) fn received_mark(&self) -> u64 {
        self.shared.last_received.load(Ordering::Relaxed)
    }

    /// `Some(how long)` if no byte has arrived on this connection since
    /// `mark` was taken (the provider answered nothing at all, not even
    /// another call's response), counting from the last byte received.
    pub(crate) fn silent_since(&self, mark: u64) -> Option<Duration> {
        let nanos = self.shared.last_received.load(Ordering::Relaxed);
        (nanos == mark).then(|| (self.shared.opened + Duration::from_nanos(nanos)).elapsed())
    }

    /// True while new calls may use this connection.
    pub(crate) fn is_open(&self) -> bool {
        self.shared.state.load(Ordering::SeqCst) == state::OPEN
    }

    // ANCHOR: conn_call
    /// Sends one request and waits for its response: the payload and the
    /// raw metadata block. Cancellation is applied by the caller dropping
    /// this future; the guard inside cleans up. The `deadline`, once the
    /// call is waiting for its response, is the connection's to enforce
    /// ([`deadlines`]): one task with one timer for all calls, instead of a
    /// timer armed and disarmed per call. `handed_over` is set at that
    /// point, so that the caller need not arm a timer of its own.
    #[allow(clippy::too_many_arguments)] // one call site, `MprpcChannel::send`
    pub(crate) async fn call<M: prost::Message>(
        &self,
        service: &str,
        method: &str,
        timeout_ms: u32,
        deadline: Option<Instant>,
        handed_over: &AtomicBool,
        (metadata, span): (Option<&Metadata>, Option<&tracing::Span>),
        message: &M,
    ) -> Result<(Bytes, Metadata), CallError> {
        let shared = &self.shared;
        let _slot = shared
            .slots
            .acquire()
            .await
            .map_err(|_| CallError::NotSent(closed_error(&shared.addr)))?;
        // Count ourselves in flight *before* checking the state: the writer
        // closes a draining connection only when this count is zero, so once
        // we see OPEN here our request is guaranteed to be written.
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        let mut guard = CallGuard {
            shared,
            id: 0,
            queued: false,
        };
        if shared.state.load(Ordering::SeqCst) != state::OPEN {
            return Err(CallError::NotSent(Status::new(
                ErrorCode::Transport,
                format!("connection to {} is draining or closed", shared.addr),
            )));
        }
        // This task's waker, parked in the call's entry: what the reader
        // wakes once the reply is stored there (a reference count, not an
        // allocation).
        let waker = std::future::poll_fn(|cx| Poll::Ready(cx.waker().clone())).await;
        let (id, earlier) = {
            let mut pending = lock(&shared.pending);
            let Ok(id) = pending.insert(waker, deadline) else {
                // The connection failed after the state check above.
                return Err(CallError::NotSent(closed_error(&shared.addr)));
            };
            let earlier = deadline.is_some_and(|d| {
                let at = shared.nanos_at(d);
                let earlier = at < shared.sweep_at.load(Ordering::Relaxed);
                if earlier {
                    shared.sweep_at.store(at, Ordering::Relaxed);
                }
                earlier
            });
            (id, earlier)
        };
        if let Some(span) = span {
            span.record("call_id", id);
        }
        if earlier {
            shared.sweep_wake.notify_one();
        }
        if deadline.is_some() {
            handed_over.store(true, Ordering::Relaxed);
        }
        guard.id = id;
        let first = {
            let mut buf = lock(&shared.wbuf);
            frame::encode_request_with_metadata(
                &mut buf,
                id,
                timeout_ms,
                service,
                method,
                metadata,
                message,
                shared.max_frame_size,
            )
            .map_err(|(code, msg)| CallError::Failed(Status::new(code, msg)))?;
            shared.start_writing()
        };
        guard.queued = true;
        // Whoever is writing now takes our frame too; else we start a write.
        let wrote = first == Some(role::CALLER);
        match first {
            Some(role::CALLER) => write_as_caller(shared).await,
            Some(_) => shared.writer_wake.notify_one(),
            None => {}
        }
        // Unless this call wrote (and yielded doing so), the first poll is
        // the one that parked the waker above, with no await in between: a
        // reply stored since has woken this task already, so it need not
        // look. After a yield it must: a wake while the task was already
        // scheduled by its own yield is merged into that one, and would
        // otherwise be lost (a call then waits forever, past its deadline:
        // `tests/caller_writes.rs` found it).
        let mut first = !wrote;
        let reply = std::future::poll_fn(|cx| {
            if std::mem::take(&mut first) {
                return Poll::Pending;
            }
            match lock(&shared.pending).poll_reply(id, cx.waker()) {
                Polled::Ready(reply) => Poll::Ready(reply),
                Polled::Waiting => Poll::Pending,
                Polled::Gone => Poll::Ready(Err(closed_error(&shared.addr))),
            }
        })
        .await;
        guard.id = 0; // answered (or expired, and cancelled): nothing to cancel
        reply.map_err(|e| {
            if e.code == ErrorCode::DeadlineExceeded && e.message == DEADLINE_PASSED {
                CallError::DeadlinePassed
            } else {
                CallError::Failed(e)
            }
        })
    }
    // ANCHOR_END: conn_call
}

impl Drop for Connection {
    fn drop(&mut self) {
        // The pool let go of us and no call holds us: close the write half
        // once queued frames are out; the provider then closes its side.
        let _ = self.shared.state.compare_exchange(
            state::OPEN,
            state::DRAINING,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        self.shared.writer_wake.notify_one();
    }
}

/// Error for calls on a connection that closed under them.
fn closed_error(addr: &str) -> Status {
    Status::new(
        ErrorCode::Transport,
        format!("connection to {addr} closed before the response arrived"),
    )
}

/// Undoes a call's bookkeeping however the call ends, including when its
/// future is dropped by a deadline or cancellation.
struct CallGuard<'a> {
    /// The connection.
    shared: &'a Shared,
    /// Pending entry still to free, 0 if none.
    id: u64,
    /// Whether the request frame was queued (then a cancel frame is owed).
    queued: bool,
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        let s = self.shared;
        if self.id != 0 && lock(&s.pending).cancel(self.id) && self.queued {
            frame::encode_cancel(&mut lock(&s.wbuf), self.id);
            s.writer_wake.notify_one();
        }
        if s.in_flight.fetch_sub(1, Ordering::SeqCst) == 1
            && s.state.load(Ordering::SeqCst) != state::OPEN
        {
            // Last call on a draining connection: let the writer close it.
            s.writer_wake.notify_one();
        }
    }
}
#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::hash::{BuildHasher, BuildHasherDefault};

    use super::*;

    /// The channel's pool is keyed by addresses hashed with [`IdHasher`]:
    /// they differ mostly in their last bytes (the port), which fall in the
    /// partial last word, so that word must count as much as the others.
    #[test]
    fn addresses_differing_only_at_the_end_hash_apart() {
        let hasher = BuildHasherDefault::<IdHasher>::default();
        let hashes: HashSet<u64> = (0..20_000u32)
            .map(|port| hasher.hash_one(format!("127.0.0.1:{port}")))
            .collect();
        assert_eq!(hashes.len(), 20_000);
        // Same bytes, different length: the string's end marker tells them apart.
        assert_ne!(hasher.hash_one("fixbug.A"), hasher.hash_one("fixbug.A\0"));
        assert_ne!(hasher.hash_one(7u64), hasher.hash_one(8u64));
    }
}
