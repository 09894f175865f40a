//! The connection loop of the mprpc protocol: read frames, run calls, write
//! replies, with the per-connection state it keeps.

use super::*;

/// A call's eventual output: its id, whether it ran on a task of its own,
/// its result (`None` when the caller cancelled it) and its [`CallEnd`].
pub(super) type InFlight =
    Pin<Box<dyn Future<Output = (u64, bool, Option<Result<Vec<u8>, Status>>, CallEnd)> + Send>>;

/// A handler's future as the provider runs it (inside its span when one
/// is recorded, see [`CallEnd::in_span`]): panics
/// caught, cancellable, its polls timed.
pub(super) type Guarded = futures_util::future::Abortable<
    Timed<futures_util::future::CatchUnwind<AssertUnwindSafe<crate::service::ResponseFuture>>>,
>;

/// Capacity a connection's out buffer starts with (and returns to after a
/// burst has grown it past `SHRINK_ABOVE`). An idle connection holds only
/// this much for responses: the preamble and a few small responses fit,
/// and a busy connection's buffer grows on demand (`BytesMut` doubles, and
/// reuses its space once written out), so 10,000 idle callers do not cost
/// 10,000 × 16 KiB that only busy ones need (chapter Performance, round 3).
pub(super) const OUT_START: usize = 512;

/// Per-connection state of the mprpc protocol loop.
pub(super) struct ConnState<'a> {
    /// Provider-wide state.
    pub(super) shared: &'a Shared,
    /// Caller address (for handlers and logs).
    pub(super) peer: SocketAddr,
    /// Encoded frames waiting to be written.
    pub(super) out: BytesMut,
    /// Calls that did not complete on their first inline poll, or run on
    /// tasks of their own.
    pub(super) in_flight: FuturesUnordered<InFlight>,
    /// Abort handles of `in_flight`, by call id: for cancel frames, and to
    /// tell a duplicate id.
    pub(super) aborts: HashMap<u64, AbortHandle>,
    /// Calls of `in_flight` running on tasks of their own.
    pub(super) spawned: usize,
    /// The caller's preamble set [`frame::FLAG_METADATA`]: responses may
    /// carry metadata.
    pub(super) metadata_ok: bool,
    /// Response-metadata cells of finished calls, for the next calls.
    pub(super) spare_cells: Vec<ResponseCell>,
    /// The service the last request named, as found in `published`: a
    /// caller names the same one call after call, and comparing the bytes
    /// is cheaper than hashing them again.
    pub(super) last_service: Option<(&'a [u8], &'a Published)>,
    /// The caller's preamble set [`frame::FLAG_STREAMS`]: it may open streams.
    pub(super) streams_ok: bool,
    /// Its streams, once it has opened one (see `streams.rs`).
    pub(super) streams: Option<Box<super::streams::Streams>>,
}

// ANCHOR: serve_mprpc
/// The connection loop of the mprpc protocol.
pub(super) async fn serve_mprpc<S: Transport>(
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
        out: BytesMut::with_capacity(OUT_START),
        in_flight: FuturesUnordered::new(),
        aborts: HashMap::new(),
        spawned: 0,
        metadata_ok: false,
        spare_cells: Vec::new(),
        last_service: None,
        streams_ok: false,
        streams: None,
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
        Ok(flags) => {
            st.metadata_ok = flags & frame::FLAG_METADATA != 0;
            st.streams_ok = flags & frame::FLAG_STREAMS != 0;
        }
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
        if read_closed && st.in_flight.is_empty() && st.out.is_empty() && !st.streams_open() {
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
        } else if !st.in_flight.is_empty() || st.streams_open() {
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
            // Frames of the streams' tasks, under the same budget as responses.
            out = super::streams::next_out(st.streams.as_deref_mut()), if st.streams.is_some() && !out_full => {
                st.on_stream_out(out);
            }
            r = wr.write_buf(&mut st.out), if !st.out.is_empty() => {
                if let Err(e) = r {
                    log::debug!("{peer}: write failed: {e}");
                    return;
                }
                progress = Instant::now();
                if st.out.is_empty() && st.out.capacity() > SHRINK_ABOVE {
                    st.out = BytesMut::with_capacity(OUT_START);
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
                // So do streams waiting for their handler; streams waiting
                // for credit the caller does not send do not.
                let working = (!st.in_flight.is_empty() || st.streams_working()) && !out_full;
                if working || progress.elapsed() < idle {
                    let from = if working { Instant::now() } else { progress };
                    idle_timer.as_mut().reset((from + idle).into());
                } else if !inbuf.is_empty() || !st.out.is_empty() || !st.in_flight.is_empty() || st.streams_open() {
                    // Half a frame, responses the caller does not read, or
                    // streams it grants no credit: a well-behaved caller
                    // never stalls like this.
                    return log::warn!(
                        "{peer}: no progress for {idle:?} with {} bytes of a frame received, {} bytes unsent \
                         and {} streams open; closing",
                        inbuf.len(),
                        st.out.len(),
                        st.streams.as_ref().map_or(0, |s| s.open.len())
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
pub(super) async fn read_some<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    max: usize,
) -> std::io::Result<usize> {
    rd.take(max as u64).read_buf(buf).await
}

/// Writes the last bytes for at most [`CLOSE_GRACE`] (the peer may not be
/// reading), then closes.
pub(super) async fn close<W: AsyncWrite + Unpin>(wr: &mut W, out: &[u8]) {
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
pub(super) struct MethodStats {
    /// Poll inline; else spawn.
    pub(super) quick: AtomicBool,
    /// Calls in a row whose every poll stayed under the budget.
    pub(super) streak: AtomicU32,
}

impl MethodStats {
    /// Records the longest poll of one call (or of its first poll).
    pub(super) fn record(&self, longest: Duration, budget: Duration) {
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
pub(super) struct Timed<F> {
    /// The handler (already boxed by the service: `Unpin`).
    pub(super) fut: F,
    /// Where to report; `None` when not learning (forced modes).
    pub(super) stats: Option<Arc<MethodStats>>,
    /// `handlers.inline_budget_us`.
    pub(super) budget: Duration,
    /// Longest poll so far.
    pub(super) longest: Duration,
    /// When the first poll starts, if the caller has just read the clock
    /// (it has: for the deadline), so that poll needs no clock read of its own.
    pub(super) first_poll: Option<Instant>,
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
pub(super) struct AbortOnDrop<T>(pub(super) tokio::task::JoinHandle<T>);

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
pub(super) type ResponseCell = Arc<Mutex<Metadata>>;

/// Most spare response-metadata cells a connection keeps (a few KiB).
pub(super) const MAX_SPARE_CELLS: usize = 128;

/// The wait for a loan from the provider-wide buffer pool.
pub(super) type Borrowing = Pin<Box<dyn Future<Output = Option<OwnedSemaphorePermit>> + Send>>;

/// Runs `f` with the connection task's context. A frame is handled by
/// plain functions given the context (to poll a handler inline), not by an
/// `async fn`: such a future holds everything the handling keeps across its
/// one poll, and would be built and moved, whole, for every frame.
pub(super) async fn with_context<R>(f: impl FnOnce(&mut Context<'_>) -> R) -> R {
    let mut f = Some(f);
    std::future::poll_fn(move |cx| match f.take() {
        Some(f) => Poll::Ready(f(cx)),
        // Never polled again after `Ready`.
        None => Poll::Pending,
    })
    .await
}
