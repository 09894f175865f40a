//! The connection's tasks: the writer (one write per batch), the reader
//! (frames matched to waiting calls) and the deadline sweeper.

use super::*;

// ANCHOR: writer
/// Writes queued frames, one `write_all` per batch; closes the write half
/// when the connection drains empty or dies.
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
            // Swap buffers: callers keep appending to the (empty) other one
            // while we write, and neither side allocates in steady state.
            std::mem::swap(&mut *lock(&shared.wbuf), &mut batch);
            if batch.is_empty() {
                break;
            }
            if let Err(e) = wr.write_all(&batch).await {
                log::warn!("writing to {} failed: {e}", shared.addr);
                fail_connection(
                    &shared,
                    Status::new(
                        ErrorCode::Transport,
                        format!("writing to {} failed: {e}", shared.addr),
                    ),
                );
                return;
            }
            shared.wrote.notify_waiters();
        }
        let st = shared.state.load(Ordering::SeqCst);
        let idle = shared.in_flight.load(Ordering::SeqCst) == 0;
        if st == state::DEAD || (st == state::DRAINING && idle && lock(&shared.wbuf).is_empty()) {
            // Half-close: tells the provider we will send nothing more, so it
            // can finish and close without cutting off any call.
            let _ = wr.shutdown().await;
            return;
        }
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
