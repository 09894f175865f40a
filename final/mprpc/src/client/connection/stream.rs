//! The caller's side of server streams on a connection: opening one
//! (kind 8), receiving its messages and end (kinds 9 and 10), granting
//! credit (kind 11) as the application reads, and cancelling on drop.
//!
//! Streams have ids of their own (`Shared::last_stream`), so the unary
//! pending-call table is not touched by them.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::mpsc;

use super::*;
use crate::credit::Credit;

/// What the preamble of the provider has told us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PeerFlags {
    /// Not arrived yet.
    Unknown,
    /// Its flags byte.
    Known(u8),
    /// The connection ended first.
    Dead,
}

/// One item of a stream, as the reader task hands it to the stream.
#[derive(Debug)]
pub(super) enum StreamItem {
    /// A message's payload.
    Message(Bytes),
    /// The stream's end: the provider's status, or why the connection
    /// ended it.
    End(Result<(), Status>),
}

/// The reader's end of an open stream.
#[derive(Debug)]
pub(super) struct StreamSink {
    /// To the [`RawStream`].
    tx: mpsc::UnboundedSender<StreamItem>,
    /// Bytes received and not yet read by the application.
    buffered: Arc<AtomicUsize>,
    /// Most bytes the provider may have sent unread: the window, plus one
    /// message beyond it (a message may go out while any credit is left).
    limit: usize,
    /// What the provider lets us send (client and bidirectional streams).
    credit: Arc<Credit>,
}

// ANCHOR: client_stream_frames
/// Handles a stream frame from the provider; `Some` ends the connection.
pub(super) fn on_stream_frame(shared: &Shared, f: Frame) -> Option<Status> {
    match f {
        Frame::StreamMessage { id, payload } => {
            let mut streams = lock(&shared.streams);
            let Some(sink) = streams.get(&id) else {
                // A stream we cancelled; its last messages may still come.
                return None;
            };
            let now = sink.buffered.fetch_add(payload.len(), Ordering::AcqRel) + payload.len();
            if now > sink.limit {
                // The provider ignores our credit: end the stream rather
                // than buffer without bound.
                if let Some(sink) = streams.remove(&id) {
                    sink.credit.close();
                    let _ = sink.tx.send(StreamItem::End(Err(Status::new(
                        ErrorCode::Protocol,
                        format!(
                            "{} sent {now} bytes unread on stream {id}, beyond the window it was granted",
                            shared.addr
                        ),
                    ))));
                }
                drop(streams);
                frame::encode_stream_end(&mut lock(&shared.wbuf), id, ErrorCode::Cancelled, &[]);
                shared.writer_wake.notify_one();
            } else {
                let _ = sink.tx.send(StreamItem::Message(payload));
            }
            None
        }
        Frame::StreamEnd { id, code, message } => {
            if let Some(sink) = lock(&shared.streams).remove(&id) {
                sink.credit.close();
                let end = if code == ErrorCode::Ok {
                    Ok(())
                } else {
                    Err(Status::new(
                        code,
                        String::from_utf8_lossy(&message).into_owned(),
                    ))
                };
                let _ = sink.tx.send(StreamItem::End(end));
            }
            None
        }
        // Credit for our messages on a client or bidirectional stream
        // (a provider granting it on a server stream only lifts a limit
        // nothing uses).
        Frame::Credit { id, bytes } => {
            if let Some(sink) = lock(&shared.streams).get(&id) {
                sink.credit.grant(bytes);
            }
            None
        }
        _ => Some(Status::new(
            ErrorCode::Protocol,
            format!(
                "{} sent a caller-side stream frame to a caller",
                shared.addr
            ),
        )),
    }
}
// ANCHOR_END: client_stream_frames

/// Ends every open stream with `err` (the connection died).
pub(super) fn fail_streams(shared: &Shared, err: &Status) {
    let sinks: Vec<_> = lock(&shared.streams).drain().collect();
    for (_, sink) in sinks {
        sink.credit.close();
        let _ = sink.tx.send(StreamItem::End(Err(err.clone())));
    }
}

impl Connection {
    // ANCHOR: open_stream
    /// Opens a stream (for a client or bidirectional stream `message` is
    /// `()`, an empty payload): waits for the provider's preamble (refusing
    /// with `Unsupported` if it did not set the streams flag), then sends
    /// the open frame with the request and `window`. The stream counts as
    /// a call in flight until it ends, so a draining connection stays open
    /// for it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn open_stream<M: prost::Message>(
        self: &Arc<Self>,
        (service, method): (&str, &str),
        timeout_ms: u32,
        deadline: Option<Instant>,
        window: u32,
        metadata: Option<&Metadata>,
        message: &M,
    ) -> Result<RawStream, CallError> {
        let shared = &self.shared;
        let mut flags = shared.peer_flags.subscribe();
        let known = flags
            .wait_for(|f| *f != PeerFlags::Unknown)
            .await
            .map(|f| *f)
            .unwrap_or(PeerFlags::Dead);
        match known {
            PeerFlags::Known(f) if f & frame::FLAG_STREAMS != 0 => {}
            PeerFlags::Known(_) => {
                return Err(CallError::NotSent(Status::new(
                    ErrorCode::Unsupported,
                    format!(
                        "{} cannot stream: its preamble did not set flag bit 1 (an older mprpc); \
                         {service}.{method} was not sent",
                        shared.addr
                    ),
                )));
            }
            _ => return Err(CallError::NotSent(closed_error(&shared.addr))),
        }
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        let mut counted = InFlight(Some(Arc::clone(self)));
        if shared.state.load(Ordering::SeqCst) != state::OPEN {
            return Err(CallError::NotSent(Status::new(
                ErrorCode::Transport,
                format!("connection to {} is draining or closed", shared.addr),
            )));
        }
        let id = shared.last_stream.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = mpsc::unbounded_channel();
        let buffered = Arc::new(AtomicUsize::new(0));
        // Nothing may be sent before the provider grants credit.
        let credit = Arc::new(Credit::new(0));
        {
            // Encoded before the sink is registered: a frame that cannot
            // be sent leaves nothing behind.
            let mut buf = lock(&shared.wbuf);
            frame::encode_stream_open(
                &mut buf,
                id,
                timeout_ms,
                window,
                (service, method),
                metadata,
                message,
                shared.max_frame_size,
            )
            .map_err(|(code, msg)| CallError::NotSent(Status::new(code, msg)))?;
            lock(&shared.streams).insert(
                id,
                StreamSink {
                    tx,
                    buffered: Arc::clone(&buffered),
                    limit: window as usize + shared.max_frame_size,
                    credit: Arc::clone(&credit),
                },
            );
        }
        shared.writer_wake.notify_one();
        Ok(RawStream {
            conn: counted.0.take(),
            id,
            rx,
            buffered,
            window,
            unacked: 0,
            deadline: deadline.map(|d| Box::pin(tokio::time::sleep_until(d.into()))),
            timeout_ms,
            done: false,
            what: format!("{service}.{method}"),
            credit,
            pump: None,
        })
    }
    // ANCHOR_END: open_stream
}

/// Uncounts a stream that failed to open.
struct InFlight(Option<Arc<Connection>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            release(&conn.shared);
        }
    }
}

/// A stream ended: one call fewer in flight; the last one on a draining
/// connection lets the writer close it.
fn release(s: &Shared) {
    if s.in_flight.fetch_sub(1, Ordering::SeqCst) == 1
        && s.state.load(Ordering::SeqCst) != state::OPEN
    {
        s.writer_wake.notify_one();
    }
}

/// An open server stream, untyped: what [`crate::Streaming`] decodes.
#[derive(Debug)]
pub(crate) struct RawStream {
    /// The connection (kept open by this handle); `None` once ended.
    conn: Option<Arc<Connection>>,
    /// The stream id.
    id: u64,
    /// From the reader task.
    rx: mpsc::UnboundedReceiver<StreamItem>,
    /// Shared with the reader's sink: bytes received, not yet read.
    buffered: Arc<AtomicUsize>,
    /// The window announced.
    window: u32,
    /// Bytes read since credit was last granted.
    unacked: usize,
    /// The stream's deadline.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The deadline's length, for the error text.
    timeout_ms: u32,
    /// The stream has ended (and was released).
    done: bool,
    /// "service.method", for error texts.
    what: String,
    /// What the provider lets us send.
    credit: Arc<Credit>,
    /// The task sending a bidirectional stream's requests: stopped when
    /// this stream is dropped.
    pump: Option<tokio::task::AbortHandle>,
}

impl RawStream {
    // ANCHOR: poll_raw
    /// The next message's payload, `None` at the stream's successful end,
    /// or the status that ended it. After the end, always `None`.
    pub(crate) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Status>>> {
        if self.done {
            return Poll::Ready(None);
        }
        // Messages already here are delivered before a deadline that
        // passed meanwhile.
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(StreamItem::Message(payload))) => {
                self.buffered.fetch_sub(payload.len(), Ordering::AcqRel);
                self.unacked += payload.len();
                // Credit in batches of half the window: one credit frame per
                // half window read, not one per message.
                if self.unacked >= (self.window as usize / 2).max(1) {
                    if let Some(conn) = &self.conn {
                        let grant = u32::try_from(self.unacked).unwrap_or(u32::MAX);
                        frame::encode_credit(&mut lock(&conn.shared.wbuf), self.id, grant);
                        conn.shared.writer_wake.notify_one();
                    }
                    self.unacked = 0;
                }
                return Poll::Ready(Some(Ok(payload)));
            }
            Poll::Ready(Some(StreamItem::End(end))) => {
                self.finish(false);
                return Poll::Ready(end.err().map(Err));
            }
            Poll::Ready(None) => {
                self.finish(false);
                return Poll::Ready(Some(Err(Status::new(
                    ErrorCode::Transport,
                    format!("{}: the connection ended the stream", self.what),
                ))));
            }
            Poll::Pending => {}
        }
        if let Some(d) = self.deadline.as_mut() {
            if d.as_mut().poll(cx).is_ready() {
                self.finish(true);
                return Poll::Ready(Some(Err(Status::new(
                    ErrorCode::DeadlineExceeded,
                    format!(
                        "{} did not end within its deadline of {} ms",
                        self.what, self.timeout_ms
                    ),
                ))));
            }
        }
        Poll::Pending
    }
    // ANCHOR_END: poll_raw

    /// Ends the stream here: with `cancel`, tells the provider (kind 10
    /// with a non-zero code) so it drops the handler's stream.
    fn finish(&mut self, cancel: bool) {
        self.done = true;
        self.credit.close();
        let Some(conn) = self.conn.take() else {
            return;
        };
        let s = &conn.shared;
        if cancel && lock(&s.streams).remove(&self.id).is_some() {
            frame::encode_stream_end(&mut lock(&s.wbuf), self.id, ErrorCode::Cancelled, &[]);
            s.writer_wake.notify_one();
        }
        release(s);
    }
}

impl Drop for RawStream {
    /// Dropping an unfinished stream cancels it (and stops the task
    /// sending its requests).
    fn drop(&mut self) {
        if let Some(pump) = self.pump.take() {
            pump.abort();
        }
        self.finish(true);
    }
}

impl RawStream {
    /// What sends this stream's requests; `None` once it has ended.
    pub(crate) fn sender(&self) -> Option<StreamSender> {
        Some(StreamSender {
            conn: Arc::clone(self.conn.as_ref()?),
            id: self.id,
            credit: Arc::clone(&self.credit),
            what: self.what.clone(),
            window: self.window.max(64 << 10),
        })
    }

    /// Ties the task sending this stream's requests to it.
    pub(crate) fn set_pump(&mut self, pump: tokio::task::AbortHandle) {
        self.pump = Some(pump);
    }
}

// ANCHOR: sender
/// Sends the caller's messages of a client or bidirectional stream, each
/// only while the provider's credit lasts, and its half-close.
#[derive(Debug)]
pub(crate) struct StreamSender {
    /// The connection.
    conn: Arc<Connection>,
    /// The stream.
    id: u64,
    /// Shared with the stream's sink, which the provider's credit frames
    /// and the stream's end reach.
    credit: Arc<Credit>,
    /// "service.method", for error texts.
    what: String,
    /// The stream's window: the most the writer's queue may hold before
    /// this sender waits.
    window: u32,
}

impl StreamSender {
    /// Sends one message once there is credit for it; `Err` when the
    /// stream has ended (its end says why) or the message is too large
    /// (the stream is then cancelled by the caller).
    pub(crate) async fn send(&self, payload: &[u8]) -> Result<(), Status> {
        if !self.credit.wait().await {
            return Err(Status::new(
                ErrorCode::Cancelled,
                format!("{}: the stream has ended", self.what),
            ));
        }
        let s = &self.conn.shared;
        if !frame::message_fits(payload.len(), s.max_frame_size) {
            return Err(Status::new(
                ErrorCode::BadRequest,
                format!(
                    "{}: a message of {} bytes exceeds max_frame_size {}",
                    self.what,
                    payload.len(),
                    s.max_frame_size
                ),
            ));
        }
        self.room(self.window as usize).await?;
        self.credit.spend(payload.len());
        frame::encode_stream_message(&mut lock(&s.wbuf), self.id, payload);
        s.writer_wake.notify_one();
        Ok(())
    }

    /// Waits until the writer's queue holds less than `limit` bytes: a
    /// provider granting credit while it reads nothing must not make the
    /// caller queue the application's messages without bound. `Err` if
    /// the stream ends meanwhile.
    async fn room(&self, limit: usize) -> Result<(), Status> {
        let s = &self.conn.shared;
        loop {
            let wrote = s.wrote.notified();
            if lock(&s.wbuf).len() < limit {
                return Ok(());
            }
            // Also looks again now and then, so a connection that dies
            // (and so writes nothing more) does not hold the sender.
            let _ = tokio::time::timeout(Duration::from_millis(50), wrote).await;
            if self.credit.is_closed() {
                return Err(Status::new(
                    ErrorCode::Cancelled,
                    format!("{}: the stream has ended", self.what),
                ));
            }
        }
    }

    /// Ends the stream from the caller's side with `status` (a message
    /// could not be sent): the reader of the stream gets `status`, the
    /// provider a cancel.
    pub(crate) fn cancel(&self, status: Status) {
        let s = &self.conn.shared;
        let sink = lock(&s.streams).remove(&self.id);
        if let Some(sink) = sink {
            sink.credit.close();
            let _ = sink.tx.send(StreamItem::End(Err(status)));
            frame::encode_stream_end(&mut lock(&s.wbuf), self.id, ErrorCode::Cancelled, &[]);
            s.writer_wake.notify_one();
        }
    }

    /// Ends the caller's side: no more messages (kind 10 with code 0).
    /// Nothing is sent if the stream has ended already.
    pub(crate) fn half_close(&self) {
        let s = &self.conn.shared;
        // Not held while `wbuf` is locked: `open_stream` locks the two the
        // other way round.
        let open = lock(&s.streams).contains_key(&self.id);
        if open {
            frame::encode_stream_end(&mut lock(&s.wbuf), self.id, ErrorCode::Ok, &[]);
            s.writer_wake.notify_one();
        }
    }
}
// ANCHOR_END: sender

impl crate::streaming::RawSource for RawStream {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Status>>> {
        RawStream::poll_next(self, cx)
    }
}
