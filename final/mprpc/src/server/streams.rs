//! Server streams on a provider connection: opening one (kind 8), its
//! messages going out under the caller's credit (kinds 9 and 11), and its
//! end (kind 10) — by the handler, the deadline, or the caller.
//!
//! Each stream runs on a task of its own, which waits for credit, takes
//! the handler's next message and hands the encoded frame to the
//! connection loop through one channel per connection. The loop appends
//! those frames to its write buffer only while that buffer is within its
//! half of the connection's allowance, exactly as it does with responses,
//! so a stream can neither grow the buffer past the budget nor stop the
//! unary responses sharing it. Bytes handed over and not yet taken by the
//! loop are bounded too, by a per-connection semaphore.

use super::*;

use std::sync::atomic::AtomicI64;
use std::task::{Context, Poll};

use tokio::sync::OwnedSemaphorePermit;

use tokio::sync::mpsc;

/// What a stream task hands the connection loop.
pub(super) enum StreamOut {
    /// An encoded frame of stream `id` (opened as `serial`), holding
    /// `permits` of the connection's stream budget until the loop takes it.
    Frame {
        /// The stream.
        id: u64,
        /// Which opening of `id` (a caller may reuse an id once a stream
        /// has ended).
        serial: u64,
        /// The frame.
        bytes: BytesMut,
        /// Budget to return once taken.
        permits: u32,
    },
    /// The task of stream `id` (opened as `serial`) has ended, whichever way.
    Done {
        /// The stream.
        id: u64,
        /// Which opening of it.
        serial: u64,
    },
}

use crate::credit::Credit;

/// One open stream, as the connection loop keeps it.
pub(super) struct OpenStream {
    /// Which opening of its id.
    serial: u64,
    /// Its credit, shared with its task.
    credit: Arc<Credit>,
    /// For a client or bidirectional stream, until the caller half-closes:
    /// where its messages go.
    input: Option<Input>,
    /// The stream's requests are a stream (client or bidirectional): it
    /// may carry the caller's messages.
    streams_requests: bool,
    /// Its task; dropping this (a cancel, the connection closing) aborts
    /// it, which drops the handler's stream.
    _task: AbortOnDrop<()>,
}

/// A connection's streams; made when the first stream opens, so that a
/// connection of unary calls carries none of it.
pub(super) struct Streams {
    /// Open streams by id.
    pub(super) open: HashMap<u64, OpenStream>,
    /// Given to every stream task.
    tx: mpsc::UnboundedSender<StreamOut>,
    /// Where the loop takes their frames.
    pub(super) rx: mpsc::UnboundedReceiver<StreamOut>,
    /// Bytes the tasks may have handed over and the loop not taken yet.
    budget: Arc<Semaphore>,
    /// The semaphore's size (half the connection's allowance).
    budget_max: u32,
    /// Bytes of the callers' messages granted as credit and not yet read
    /// by the handlers, over all of the connection's streams (another half
    /// of the allowance, of the same size).
    in_budget: Arc<Semaphore>,
    /// Numbers openings.
    next_serial: u64,
}

impl Streams {
    /// No streams yet; `budget_max` bytes may wait between tasks and loop.
    fn new(budget_max: u32) -> Streams {
        let (tx, rx) = mpsc::unbounded_channel();
        Streams {
            open: HashMap::new(),
            tx,
            rx,
            budget: Arc::new(Semaphore::new(budget_max as usize)),
            budget_max,
            in_budget: Arc::new(Semaphore::new(budget_max as usize)),
            next_serial: 0,
        }
    }
}

/// The next thing stream tasks handed over, once there is one; pending
/// forever on a connection without streams.
pub(super) async fn next_out(streams: Option<&mut Streams>) -> StreamOut {
    match streams {
        // `tx` lives in `Streams`, so the channel never reports closed.
        Some(s) => match s.rx.recv().await {
            Some(out) => out,
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

impl ConnState<'_> {
    /// Whether any stream is open (they keep the connection busy).
    pub(super) fn streams_open(&self) -> bool {
        self.streams.as_ref().is_some_and(|s| !s.open.is_empty())
    }

    /// Whether a stream is open that still has credit: its task waits for
    /// the handler, which counts as work (like a call running), unlike a
    /// stream waiting for credit its caller does not send.
    pub(super) fn streams_working(&self) -> bool {
        self.streams
            .as_ref()
            .is_some_and(|s| s.open.values().any(|o| o.credit.has_some()))
    }

    /// Takes what a stream task handed over: a frame goes to the write
    /// buffer (dropped if its stream was cancelled meanwhile), a finished
    /// task leaves the table.
    pub(super) fn on_stream_out(&mut self, out: StreamOut) {
        let Some(streams) = self.streams.as_deref_mut() else {
            return;
        };
        match out {
            StreamOut::Frame {
                id,
                serial,
                bytes,
                permits,
            } => {
                streams.budget.add_permits(permits as usize);
                if streams.open.get(&id).is_some_and(|s| s.serial == serial) {
                    self.out.extend_from_slice(&bytes);
                }
            }
            StreamOut::Done { id, serial } => {
                if streams.open.get(&id).is_some_and(|s| s.serial == serial) {
                    streams.open.remove(&id);
                }
            }
        }
    }

    /// Credit for stream `id` from the caller.
    pub(super) fn on_credit(&mut self, id: u64, bytes: u32) {
        if let Some(s) = self.streams.as_ref().and_then(|s| s.open.get(&id)) {
            s.credit.grant(bytes);
        }
    }

    /// The caller ended its side of stream `id`: a half-close (`Ok`) ends
    /// the handler's input of a client or bidirectional stream (and means
    /// nothing to a server stream); any other code cancels it — its task is
    /// aborted, dropping the handler's streams, and nothing more is sent.
    pub(super) fn on_stream_end(&mut self, id: u64, code: ErrorCode) {
        let Some(s) = self.streams.as_deref_mut() else {
            return;
        };
        if code != ErrorCode::Ok {
            s.open.remove(&id);
        } else if let Some(input) = s.open.get_mut(&id).and_then(|o| o.input.take()) {
            let _ = input.tx.send(InItem::End);
        }
    }

    // ANCHOR: on_stream_message
    /// A message of the caller on stream `id`. It goes to the handler's
    /// input if the caller had credit for it; a message beyond its credit,
    /// after its half-close, or on a stream whose requests are not a stream
    /// ends the stream with `Protocol` (dropping the handler's streams).
    /// A message for a stream that has ended is dropped: the caller may
    /// have sent it before it saw the end.
    pub(super) fn on_stream_message(&mut self, id: u64, payload: Bytes) {
        let Some(s) = self.streams.as_deref_mut() else {
            return;
        };
        let Some(open) = s.open.get_mut(&id) else {
            return;
        };
        let why = match &open.input {
            Some(input) if input.avail.load(Ordering::Acquire) > 0 => {
                let len = i64::try_from(payload.len()).unwrap_or(i64::MAX);
                input.avail.fetch_sub(len, Ordering::AcqRel);
                // The handler may have dropped its input: then the message
                // is dropped too, and no more credit is granted.
                let _ = input.tx.send(InItem::Message(payload));
                return;
            }
            Some(input) => format!(
                "stream {id}: a message of {} bytes arrived with the caller's credit spent ({} bytes left)",
                payload.len(),
                input.avail.load(Ordering::Acquire)
            ),
            None if open.streams_requests => {
                format!("stream {id}: a message arrived after the caller's half-close")
            }
            None => format!("stream {id}: the caller sent a message on a server stream"),
        };
        s.open.remove(&id);
        log::warn!("{}: {why}", self.peer);
        self.refuse_stream(id, &Status::new(ErrorCode::Protocol, why));
    }
    // ANCHOR_END: on_stream_message

    /// Ends stream `id` at once with `status` (it never started).
    fn refuse_stream(&mut self, id: u64, status: &Status) {
        if let Some(m) = &self.shared.hooks.metrics {
            m.refused(status.code);
        }
        let text = status.message.as_bytes();
        let text = &text[..text
            .len()
            .min(self.shared.max_frame_size.saturating_sub(64))];
        frame::encode_stream_end(&mut self.out, id, status.code, text);
    }

    // ANCHOR: open_stream
    /// Opens server stream `id`: checks that this caller may stream, the
    /// method and the limits, runs the interceptors, and starts the task
    /// that sends the handler's messages.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn open_stream(
        &mut self,
        id: u64,
        timeout_ms: u32,
        window: u32,
        service: &[u8],
        method: &[u8],
        metadata: &[u8],
        payload: Bytes,
    ) {
        if !self.streams_ok {
            let status = Status::new(
                ErrorCode::Unsupported,
                "this caller's preamble did not set flag bit 1 (streams), so it may not open streams",
            );
            return self.refuse_stream(id, &status);
        }
        let shared = self.shared;
        let Some((svc, _, metrics)) = shared.published.get(service) else {
            let msg = format!(
                "no service {:?} here (this provider has: {})",
                String::from_utf8_lossy(service),
                shared.names
            );
            return self.refuse_stream(id, &Status::new(ErrorCode::UnknownService, msg));
        };
        let desc = svc.descriptor();
        let Some(index) = desc.method_index(method) else {
            let msg = format!(
                "service {} has no method {:?} (it has: {})",
                desc.full_name,
                String::from_utf8_lossy(method),
                desc.methods.join(", ")
            );
            return self.refuse_stream(id, &Status::new(ErrorCode::UnknownMethod, msg));
        };
        let (name, mname) = (desc.full_name, desc.methods[index]);
        let streams_requests = match desc.method_kind(index) {
            crate::service::MethodKind::ServerStreaming => false,
            crate::service::MethodKind::ClientStreaming | crate::service::MethodKind::Bidi => true,
            _ => {
                let msg = format!(
                    "{name}.{mname} is a unary method: send it a request frame, not a stream"
                );
                return self.refuse_stream(id, &Status::new(ErrorCode::Unsupported, msg));
            }
        };
        if streams_requests && !payload.is_empty() {
            let msg = format!(
                "{name}.{mname} streams its requests: its opening carries no payload \
                 (this one has {} bytes); send them as stream messages",
                payload.len()
            );
            return self.refuse_stream(id, &Status::new(ErrorCode::BadRequest, msg));
        }
        let max_streams = shared.max_streams;
        let budget_max = u32::try_from(shared.per_conn / 2)
            .unwrap_or(u32::MAX)
            .max(1);
        let (open, taken) = self
            .streams
            .as_ref()
            .map_or((0, false), |s| (s.open.len(), s.open.contains_key(&id)));
        if taken {
            let msg = format!("stream id {id} is already open on this connection");
            return self.refuse_stream(id, &Status::new(ErrorCode::BadRequest, msg));
        }
        if open >= max_streams {
            let msg = format!(
                "{open} streams already open on this connection (limits.max_streams_per_connection)"
            );
            return self.refuse_stream(id, &Status::new(ErrorCode::Overloaded, msg));
        }
        let now = Instant::now();
        let deadline = (timeout_ms > 0).then(|| now + Duration::from_millis(u64::from(timeout_ms)));
        let hooks = &shared.hooks;
        let who = Who {
            desc,
            index,
            peer: self.peer,
            call_id: id,
            legacy: false,
        };
        let mut end = hooks.begin(&who, &metrics[index], now);
        let md = match Metadata::decode(metadata, hooks.metadata_limits) {
            Ok(md) => md,
            Err(why) => {
                let status = Status::new(ErrorCode::BadRequest, format!("request metadata: {why}"));
                end.finish(Some(status.code));
                return self.refuse_stream(id, &status);
            }
        };
        end.trace_from(&md);
        let md = match hooks.intercept(&mut end, &who, md) {
            Ok(md) => md,
            Err(status) => {
                end.finish(Some(status.code));
                return self.refuse_stream(id, &status);
            }
        };
        let ctx = CallContext::for_call(self.peer, deadline, id, false, md, Default::default());
        let streams = self
            .streams
            .get_or_insert_with(|| Box::new(Streams::new(budget_max)));
        streams.next_serial += 1;
        let serial = streams.next_serial;
        let (opening, input) = if streams_requests {
            let (requests, input) = RawRequests::new(
                streams,
                id,
                serial,
                u32::try_from(shared.stream_window).unwrap_or(u32::MAX),
            );
            (
                svc.client_stream(
                    index,
                    ctx,
                    crate::streaming::RawMessages::requests(requests),
                ),
                Some(input),
            )
        } else {
            (svc.server_stream(index, ctx, payload), None)
        };
        let credit = Arc::new(Credit::new(window));
        let task = Pump {
            id,
            serial,
            tx: streams.tx.clone(),
            budget: Arc::clone(&streams.budget),
            budget_max: streams.budget_max,
            max_frame_size: shared.max_frame_size,
        };
        let running = task.run(
            opening,
            Arc::clone(&credit),
            deadline.map(|d| (d, timeout_ms)),
            end,
            (name, mname),
        );
        streams.open.insert(
            id,
            OpenStream {
                serial,
                credit,
                input,
                streams_requests,
                _task: AbortOnDrop(tokio::spawn(running)),
            },
        );
    }
    // ANCHOR_END: open_stream
}

/// Tells the loop that a stream's task has ended, however it ends
/// (finished, aborted by a cancel, panicked).
struct DoneGuard {
    /// Where to tell it.
    tx: mpsc::UnboundedSender<StreamOut>,
    /// The stream.
    id: u64,
    /// Which opening.
    serial: u64,
}

impl Drop for DoneGuard {
    fn drop(&mut self) {
        let _ = self.tx.send(StreamOut::Done {
            id: self.id,
            serial: self.serial,
        });
    }
}

/// What a stream's task needs to hand frames to its connection.
struct Pump {
    /// The stream.
    id: u64,
    /// Which opening.
    serial: u64,
    /// To the connection loop.
    tx: mpsc::UnboundedSender<StreamOut>,
    /// The connection's stream budget.
    budget: Arc<Semaphore>,
    /// Its size.
    budget_max: u32,
    /// Largest frame sent.
    max_frame_size: usize,
}

impl Pump {
    /// Hands one frame to the loop, first waiting for room in the budget.
    async fn send(&self, bytes: BytesMut) {
        let want = u32::try_from(bytes.len())
            .unwrap_or(u32::MAX)
            .min(self.budget_max);
        // The semaphore is never closed; if it were, send without waiting.
        if let Ok(p) = self.budget.acquire_many(want).await {
            p.forget();
        }
        let _ = self.tx.send(StreamOut::Frame {
            id: self.id,
            serial: self.serial,
            bytes,
            permits: want,
        });
    }

    // ANCHOR: pump
    /// The stream's task: makes the handler's stream, sends its messages as
    /// credit allows, and ends the stream with the handler's status — or
    /// with `DeadlineExceeded` when the deadline passes first, dropping the
    /// handler's stream then.
    async fn run(
        self,
        opening: crate::service::StreamFuture,
        credit: Arc<Credit>,
        deadline: Option<(Instant, u32)>,
        end: CallEnd,
        (name, mname): (&'static str, &'static str),
    ) {
        let _done = DoneGuard {
            tx: self.tx.clone(),
            id: self.id,
            serial: self.serial,
        };
        // The method's counters, when metrics are on.
        let counters = end.observed.as_ref().and_then(|o| o.metrics.clone());
        let body = async {
            let mut stream = opening.await?;
            loop {
                credit.wait().await;
                match stream.next().await {
                    None => return Ok(()),
                    Some(Err(status)) => return Err(status),
                    Some(Ok(msg)) => {
                        if !frame::message_fits(msg.len(), self.max_frame_size) {
                            return Err(Status::handler(format!(
                                "{name}.{mname}: a message of {} bytes exceeds max_frame_size {}",
                                msg.len(),
                                self.max_frame_size
                            )));
                        }
                        let mut bytes = BytesMut::with_capacity(13 + msg.len());
                        frame::encode_stream_message(&mut bytes, self.id, &msg);
                        credit.spend(msg.len());
                        self.send(bytes).await;
                        if let Some(m) = &counters {
                            m.stream_message();
                        }
                    }
                }
            }
        };
        let body = AssertUnwindSafe(body).catch_unwind();
        let result = match deadline {
            Some((at, ms)) => tokio::time::timeout_at(at.into(), body)
                .await
                .unwrap_or_else(|_| {
                    Ok(Err(Status::new(
                        ErrorCode::DeadlineExceeded,
                        format!("{name}.{mname}: the stream did not end within {ms} ms"),
                    )))
                }),
            None => body.await,
        };
        // The handler's stream is dropped by now, whatever happened.
        let result = result.unwrap_or_else(|_panic| Err(super::dispatch::panicked(name, mname)));
        let mut bytes = BytesMut::new();
        let code = match &result {
            Ok(()) => {
                frame::encode_stream_end(&mut bytes, self.id, ErrorCode::Ok, &[]);
                ErrorCode::Ok
            }
            Err(status) => {
                let text = status.message.as_bytes();
                let text = &text[..text.len().min(self.max_frame_size.saturating_sub(64))];
                frame::encode_stream_end(&mut bytes, self.id, status.code, text);
                status.code
            }
        };
        self.send(bytes).await;
        end.finish(Some(code));
    }
    // ANCHOR_END: pump
}

/// What the connection loop keeps of a stream's input: where the caller's
/// messages go, and how much credit the caller has left by its count.
pub(super) struct Input {
    /// To the handler's [`RawRequests`].
    tx: mpsc::UnboundedSender<InItem>,
    /// Credit granted minus bytes received; the handler's side adds to it
    /// just before each grant goes out.
    avail: Arc<AtomicI64>,
}

/// One item of a stream's input.
#[derive(Debug)]
enum InItem {
    /// A message of the caller.
    Message(Bytes),
    /// The caller's half-close.
    End,
}

/// The waiting for budget before a grant.
type Acquiring = Pin<
    Box<
        dyn Future<Output = Result<OwnedSemaphorePermit, tokio::sync::AcquireError>>
            + Send
            + 'static,
    >,
>;

// ANCHOR: raw_requests
/// The caller's messages of one client or bidirectional stream, as the
/// handler receives them (wrapped in [`crate::Streaming`] by generated
/// code). Reading them grants the caller credit for more: a grant is
/// issued once half the window has been read, and only under the
/// connection's input budget, so a handler that stops reading stops its
/// caller after at most one window (plus one message).
#[derive(Debug)]
pub struct RawRequests {
    /// From the connection loop.
    rx: mpsc::UnboundedReceiver<InItem>,
    /// Shared with the loop's [`Input`].
    avail: Arc<AtomicI64>,
    /// The connection's input budget.
    budget: Arc<Semaphore>,
    /// Its size: no grant is larger.
    budget_max: u32,
    /// Credit granted minus bytes read: what the caller may still send
    /// plus what it sent and the handler has not read — negative by at
    /// most one message, when the caller's last message went beyond its
    /// credit (as the caller counts too). The permits held are the
    /// positive part.
    owed: i64,
    /// The window: most credit outstanding plus bytes unread.
    window: u32,
    /// A grant waiting for budget, if any.
    acquiring: Option<AcquiringBox>,
    /// To the loop, for the credit frames.
    out: mpsc::UnboundedSender<StreamOut>,
    /// The stream.
    id: u64,
    /// Which opening of it.
    serial: u64,
    /// The caller half-closed (or the stream ended).
    done: bool,
}
// ANCHOR_END: raw_requests

/// [`Acquiring`], debuggable.
struct AcquiringBox(Acquiring);

impl std::fmt::Debug for AcquiringBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Acquiring")
    }
}

impl RawRequests {
    /// The input of stream `id` (opening `serial`) with a window of
    /// `window` bytes, and the loop's end of it.
    fn new(streams: &Streams, id: u64, serial: u64, window: u32) -> (RawRequests, Input) {
        let (tx, rx) = mpsc::unbounded_channel();
        let avail = Arc::new(AtomicI64::new(0));
        let mut requests = RawRequests {
            rx,
            avail: Arc::clone(&avail),
            budget: Arc::clone(&streams.in_budget),
            budget_max: streams.budget_max,
            owed: 0,
            window: window.max(1),
            acquiring: None,
            out: streams.tx.clone(),
            id,
            serial,
            done: false,
        };
        // The initial grant, at once if the budget allows (else when the
        // handler first reads).
        requests.start_grant();
        if let Some(AcquiringBox(a)) = requests.acquiring.as_mut() {
            let waker = futures_util::task::noop_waker();
            let mut cx = Context::from_waker(&waker);
            if let Poll::Ready(r) = a.as_mut().poll(&mut cx) {
                requests.acquiring = None;
                requests.granted(r);
            }
        }
        (requests, Input { tx, avail })
    }

    /// Starts waiting for budget for a grant, if none is pending and at
    /// least half the window can be granted.
    fn start_grant(&mut self) {
        if self.done || self.acquiring.is_some() {
            return;
        }
        // Grants in batches of half what may be outstanding: one credit
        // frame per half window read, not one per message.
        let cap = self.window.min(self.budget_max);
        let want = cap.saturating_sub(self.held());
        if want < (cap / 2).max(1) {
            return;
        }
        let fut = Arc::clone(&self.budget).acquire_many_owned(want);
        self.acquiring = Some(AcquiringBox(Box::pin(fut)));
    }

    /// Budget for a grant arrived: count it and send the credit frame.
    fn granted(&mut self, permit: Result<OwnedSemaphorePermit, tokio::sync::AcquireError>) {
        // The semaphore is never closed.
        let Ok(permit) = permit else {
            return;
        };
        let n = permit.num_permits() as u32;
        permit.forget();
        let before = self.held();
        self.owed += i64::from(n);
        // What the caller overspent is covered by this grant: its permits
        // are not needed.
        let spare = n - (self.held() - before);
        self.budget.add_permits(spare as usize);
        // Counted before the frame can reach the caller.
        self.avail.fetch_add(i64::from(n), Ordering::AcqRel);
        let mut bytes = BytesMut::with_capacity(17);
        frame::encode_credit(&mut bytes, self.id, n);
        let _ = self.out.send(StreamOut::Frame {
            id: self.id,
            serial: self.serial,
            bytes,
            permits: 0,
        });
    }

    /// The next message of the caller, `None` after its half-close.
    pub(crate) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Status>>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(AcquiringBox(a)) = self.acquiring.as_mut() {
            if let Poll::Ready(r) = a.as_mut().poll(cx) {
                self.acquiring = None;
                self.granted(r);
            }
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(InItem::Message(payload))) => {
                let before = self.held();
                self.owed -= i64::try_from(payload.len()).unwrap_or(i64::MAX / 2);
                self.budget.add_permits((before - self.held()) as usize);
                self.start_grant();
                if let Some(AcquiringBox(a)) = self.acquiring.as_mut() {
                    // Registers the waker, or grants at once.
                    if let Poll::Ready(r) = a.as_mut().poll(cx) {
                        self.acquiring = None;
                        self.granted(r);
                    }
                }
                Poll::Ready(Some(Ok(payload)))
            }
            Poll::Ready(Some(InItem::End)) => {
                self.finish();
                Poll::Ready(None)
            }
            // The loop dropped the stream: it was cancelled or ended, and
            // this handler is about to be dropped too.
            Poll::Ready(None) => {
                self.finish();
                Poll::Ready(Some(Err(Status::new(
                    ErrorCode::Cancelled,
                    "the stream ended before the caller half-closed it",
                ))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// No more input: the budget held goes back.
    fn finish(&mut self) {
        self.done = true;
        self.acquiring = None;
        self.budget.add_permits(self.held() as usize);
        self.owed = 0;
    }

    /// Permits held: the positive part of `owed`.
    fn held(&self) -> u32 {
        u32::try_from(self.owed.max(0)).unwrap_or(u32::MAX)
    }
}

impl Drop for RawRequests {
    fn drop(&mut self) {
        if !self.done {
            self.finish();
        }
    }
}

impl crate::streaming::RawSource for RawRequests {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Status>>> {
        RawRequests::poll_next(self, cx)
    }
}
