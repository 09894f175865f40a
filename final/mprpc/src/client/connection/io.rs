//! The connection's tasks: the writer (one write per batch), the reader
//! (frames matched to waiting calls) and the deadline sweeper.

use super::*;

use bytes::Buf;

// ANCHOR: writer
/// Writes queued frames when a caller could not (TLS, a full socket
/// buffer, frames queued by no call: cancels, credit): one `write_all` per
/// batch. Closes the write half when the connection drains empty or dies.
pub(super) async fn writer<W: AsyncWrite + Unpin>(mut wr: W, shared: Arc<Shared>) {
    let mut batch = BytesMut::with_capacity(16 * 1024);
    loop {
        shared.writer_wake.notified().await;
        // Let every caller that is already runnable append its frame first.
        // A task woken by another runs next on tokio (the worker's LIFO
        // slot), so without this the writer would run right after the first
        // caller of a burst and write its frame alone, then again for the
        // next: one `write` per call instead of one per burst (measured with
        // `bench`: 4× fewer system calls per call at 128 in flight, see the
        // chapter Performance).
        tokio::task::yield_now().await;
        loop {
            batch.clear();
            {
                let mut buf = lock(&shared.wbuf);
                if shared.role.load(Ordering::Relaxed) == role::CALLER {
                    // A caller is writing: it looks at the buffer again
                    // before it stops, so it takes what is queued.
                    break;
                }
                // Swap buffers: callers keep appending to the (empty) other
                // one while we write, and neither side allocates in steady state.
                std::mem::swap(&mut *buf, &mut batch);
                let next = if batch.is_empty() {
                    role::IDLE
                } else {
                    role::TASK
                };
                shared.role.store(next, Ordering::Relaxed);
            }
            if batch.is_empty() {
                break;
            }
            if let Err(e) = wr.write_all(&batch).await {
                write_failed(&shared, &e);
                return;
            }
            shared.wrote.notify_waiters();
        }
        let st = shared.state.load(Ordering::SeqCst);
        let idle = shared.in_flight.load(Ordering::SeqCst) == 0;
        let drained = || {
            let buf = lock(&shared.wbuf);
            buf.is_empty() && shared.role.load(Ordering::Relaxed) == role::IDLE
        };
        if st == state::DEAD || (st == state::DRAINING && idle && drained()) {
            // Half-close: tells the provider we will send nothing more, so it
            // can finish and close without cutting off any call.
            let _ = wr.shutdown().await;
            return;
        }
    }
}

/// A write to the provider failed: the connection is dead.
fn write_failed(shared: &Shared, e: &std::io::Error) {
    log::warn!("writing to {} failed: {e}", shared.addr);
    fail_connection(
        shared,
        Status::new(
            ErrorCode::Transport,
            format!("writing to {} failed: {e}", shared.addr),
        ),
    );
}

// ANCHOR: start_writing
impl Shared {
    /// Called with `wbuf` locked, after queuing a frame. If nobody is
    /// writing, takes the job: `Some(CALLER)` on plain TCP, where the
    /// caller then writes itself ([`write_as_caller`]); `Some(TASK)` with
    /// TLS, where it wakes the writer task. `None`: someone is writing,
    /// and will take this frame before it stops — no wake-up at all.
    pub(super) fn start_writing(&self) -> Option<u8> {
        if self.role.load(Ordering::Relaxed) != role::IDLE {
            return None;
        }
        let next = if self.direct.is_some() {
            role::CALLER
        } else {
            role::TASK
        };
        self.role.store(next, Ordering::Relaxed);
        Some(next)
    }
}
// ANCHOR_END: start_writing

/// Most batches one caller writes for everyone before the writer task
/// takes over, so that under a steady load no call waits on others' writes.
const CALLER_BATCHES: usize = 2;

/// Writes the queued frames from the calling task, on plain TCP, when it
/// took the job ([`Shared::start_writing`]). This is the floor's design
/// (chapter Performance, "Round 4"): waking the writer task costs, on a
/// multi-threaded runtime, a wake-up of the other worker thread per batch
/// — a system call and a context switch. The caller yields once first,
/// like the writer task, so that the other callers woken with it queue
/// their frames and go in the same write.
///
/// Writes are `try_write`: no await between taking a batch and writing
/// it, so a call dropped (deadline, cancel) cannot leave a frame half
/// written. What the socket does not take now goes to the writer task,
/// ahead of anything queued since, as does the job if this call is
/// dropped while it yields.
pub(super) async fn write_as_caller(shared: &Shared) {
    let Some(half) = shared.direct.as_deref() else {
        return;
    };
    let handover = Handover(shared);
    tokio::task::yield_now().await;
    let mut batch = std::mem::take(&mut *lock(&shared.spare));
    for _ in 0..CALLER_BATCHES {
        batch.clear();
        {
            let mut buf = lock(&shared.wbuf);
            if buf.is_empty() {
                *lock(&shared.spare) = batch;
                shared.role.store(role::IDLE, Ordering::Relaxed);
                drop(buf);
                std::mem::forget(handover);
                return;
            }
            std::mem::swap(&mut *buf, &mut batch);
        }
        let mut written = 0;
        while written < batch.len() {
            match half.try_write(&batch[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    // The socket is full: the rest goes first, then what
                    // was queued meanwhile, by the writer task (dropping
                    // `handover` hands it the job).
                    batch.advance(written);
                    let mut buf = lock(&shared.wbuf);
                    batch.extend_from_slice(&buf);
                    std::mem::swap(&mut *buf, &mut batch);
                    return;
                }
                Err(e) => {
                    write_failed(shared, &e);
                    return;
                }
            }
        }
        // Room in `wbuf` again, as after the writer task's writes.
        shared.wrote.notify_waiters();
    }
    *lock(&shared.spare) = batch;
    // Enough for one call: what is queued now is the writer task's.
}

/// Hands the job of writing to the writer task when dropped: after a
/// caller wrote its share, or if it is dropped while it yields.
struct Handover<'a>(&'a Shared);

impl Drop for Handover<'_> {
    fn drop(&mut self) {
        let shared = self.0;
        {
            // Like every change of the role: under the `wbuf` lock.
            let _held = lock(&shared.wbuf);
            shared.role.store(role::TASK, Ordering::Relaxed);
        }
        shared.writer_wake.notify_one();
    }
}

/// The plain write half shared by the writer task and the callers
/// ([`write_as_caller`]): `OwnedWriteHalf` writes through `&self`
/// (`try_write`), but its `AsyncWrite` wants `&mut self`.
pub(super) struct SharedHalf(pub(super) Arc<tokio::net::tcp::OwnedWriteHalf>);

impl AsyncWrite for SharedHalf {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let stream: &TcpStream = (*self.0).as_ref();
        loop {
            std::task::ready!(stream.poll_write_ready(cx))?;
            match stream.try_write(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                r => return Poll::Ready(r),
            }
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        let stream: &TcpStream = (*self.0).as_ref();
        Poll::Ready(socket2::SockRef::from(stream).shutdown(std::net::Shutdown::Write))
    }
}
// ANCHOR_END: writer

/// Reads and dispatches frames until the connection ends, then fails
/// whatever is still pending.
pub(super) async fn reader<R: AsyncRead + Unpin>(mut rd: R, shared: Arc<Shared>) {
    let err = read_loop(&mut rd, &shared).await;
    fail_connection(&shared, err);
}

/// The body of [`reader`]; returns why the connection ended.
pub(super) async fn read_loop<R: AsyncRead + Unpin>(rd: &mut R, shared: &Shared) -> Status {
    let mut preamble = [0u8; 8];
    if let Err(e) = rd.read_exact(&mut preamble).await {
        return Status::new(
            ErrorCode::Transport,
            format!(
                "{} closed the connection before sending the mprpc preamble: {e}",
                shared.addr
            ),
        );
    }
    match frame::check_preamble(&preamble) {
        Ok(flags) => {
            shared.peer_flags.send_replace(PeerFlags::Known(flags));
        }
        Err(msg) => return Status::new(ErrorCode::Protocol, format!("{}: {msg}", shared.addr)),
    }
    let mut buf = BytesMut::with_capacity(16 * 1024);
    loop {
        loop {
            match frame::try_decode(&mut buf, shared.max_frame_size) {
                Ok(Some(f)) => {
                    if let Some(end) = on_frame(shared, f) {
                        return end;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    return Status::new(e.code(), format!("bad frame from {}: {e}", shared.addr));
                }
            }
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) => return closed_error(&shared.addr),
            Ok(_) => {
                let nanos = shared.opened.elapsed().as_nanos();
                let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
                shared.last_received.store(nanos, Ordering::Relaxed);
            }
            Err(e) => {
                return Status::new(
                    ErrorCode::Transport,
                    format!("reading from {} failed: {e}", shared.addr),
                );
            }
        }
    }
}

/// The reply of a response that failed or carries metadata (the common
/// case, a success without, is made inline).
#[inline(never)]
pub(super) fn reply(shared: &Shared, code: ErrorCode, metadata: &[u8], payload: Bytes) -> Reply {
    let md = if metadata.is_empty() {
        Ok(Metadata::new())
    } else {
        Metadata::decode(metadata, shared.metadata_limits)
    };
    match (code, md) {
        (_, Err(why)) => Err(Status::new(
            ErrorCode::BadResponse,
            format!("response metadata from {}: {why}", shared.addr),
        )),
        (ErrorCode::Ok, Ok(md)) => Ok((payload, md)),
        (code, Ok(md)) => {
            Err(Status::new(code, String::from_utf8_lossy(&payload).into_owned()).with_metadata(md))
        }
    }
}

/// Handles one frame from the provider; `Some` ends the connection.
pub(super) fn on_frame(shared: &Shared, f: Frame) -> Option<Status> {
    match f {
        Frame::Response {
            id,
            code,
            metadata,
            payload,
        } => {
            let reply = if code == ErrorCode::Ok && metadata.is_empty() {
                Ok((payload, Metadata::new()))
            } else {
                reply(shared, code, &metadata, payload)
            };
            // An id naming no waiting call is a call that already gave up
            // (its slot maybe reused, with another generation): drop the reply.
            let waker = lock(&shared.pending).complete(id, reply);
            if let Some(waker) = waker {
                waker.wake();
            }
            None
        }
        Frame::GoAway => {
            log::info!("{} is draining; new calls go elsewhere", shared.addr);
            let _ = shared.state.compare_exchange(
                state::OPEN,
                state::DRAINING,
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
            (shared.events)(shared.serial, ConnEvent::Draining);
            shared.writer_wake.notify_one();
            None
        }
        Frame::ConnectionError { code, message } => Some(Status::new(
            code,
            format!("{} closed the connection: {message}", shared.addr),
        )),
        f @ (Frame::StreamMessage { .. }
        | Frame::StreamEnd { .. }
        | Frame::Credit { .. }
        | Frame::StreamOpen { .. }) => on_stream_frame(shared, f),
        Frame::Request { .. } | Frame::Cancel { .. } => Some(Status::new(
            ErrorCode::Protocol,
            format!("{} sent a request-side frame to a caller", shared.addr),
        )),
    }
}

impl Shared {
    /// `at` as nanoseconds after `opened` (the unit of `sweep_at`).
    pub(super) fn nanos_at(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.opened).as_nanos()).unwrap_or(u64::MAX - 1)
    }
}

// ANCHOR: deadlines
/// The connection's deadline task: sleeps until the earliest deadline a
/// waiting call may have, then fails every call whose deadline has passed
/// (queuing a cancel frame for each, so the provider can stop) and sleeps
/// until the next. Calls answered in time cost it nothing: they leave
/// `pending`, and the next sweep finds them gone. With one timeout for all
/// calls, deadlines arrive in order and it wakes about once per timeout.
pub(super) async fn deadlines(shared: Arc<Shared>) {
    loop {
        if shared.state.load(Ordering::SeqCst) == state::DEAD {
            return;
        }
        let woken = shared.sweep_wake.notified();
        let at = shared.sweep_at.load(Ordering::Relaxed);
        if at == u64::MAX {
            woken.await;
            continue;
        }
        let when = shared.opened + Duration::from_nanos(at);
        tokio::select! {
            biased;
            () = woken => continue,
            () = tokio::time::sleep_until(when.into()) => {}
        }
        sweep(&shared);
    }
}

/// Fails the waiting calls whose deadline has passed; sets `sweep_at` to
/// the earliest deadline left.
pub(super) fn sweep(shared: &Shared) {
    let now = Instant::now();
    let mut expired = Vec::new();
    {
        let mut pending = lock(&shared.pending);
        let next = pending.expire(
            now,
            || Err(Status::new(ErrorCode::DeadlineExceeded, DEADLINE_PASSED)),
            &mut expired,
        );
        let next = next.map_or(u64::MAX, |d| shared.nanos_at(d));
        shared.sweep_at.store(next, Ordering::Relaxed);
    }
    if expired.is_empty() {
        return;
    }
    {
        let mut buf = lock(&shared.wbuf);
        for (id, _) in &expired {
            frame::encode_cancel(&mut buf, *id);
        }
    }
    shared.writer_wake.notify_one();
    for (_, waker) in expired {
        waker.wake();
    }
}
// ANCHOR_END: deadlines

/// Marks the connection dead, fails every pending call with `err` and tells
/// the channel.
pub(super) fn fail_connection(shared: &Shared, err: Status) {
    let previous = shared.state.swap(state::DEAD, Ordering::SeqCst);
    shared.peer_flags.send_if_modified(|f| {
        let unknown = *f == PeerFlags::Unknown;
        if unknown {
            *f = PeerFlags::Dead;
        }
        unknown
    });
    fail_streams(shared, &err);
    let wakers = lock(&shared.pending).fail_all(&err);
    if !wakers.is_empty() {
        log::warn!("{} calls to {} failed: {err}", wakers.len(), shared.addr);
    }
    for waker in wakers {
        waker.wake();
    }
    shared.slots.close();
    shared.writer_wake.notify_one();
    shared.sweep_wake.notify_one();
    // A draining connection ending is the normal close; only an open one
    // dying is news for the channel.
    if previous == state::OPEN {
        (shared.events)(shared.serial, ConnEvent::Dead);
    }
}
