//! The floor: the least code that multiplexes calls over one TCP connection
//! with tokio and prost. Not a framework (no service names, no deadlines, no
//! cancellation, no error frames) — just what any design must do at minimum,
//! so the gap between it and a real framework is the framework's overhead.
//!
//! Frame, both directions: `[u32 length, big-endian][u64 call id][protobuf]`,
//! where `length` counts the id and the message.
//!
//! It is meant to be a ceiling, so it is written the fastest way measured
//! (chapter *Performance*, "The floor"): the server runs the handler inline
//! and answers a whole read with one write; the client's callers append
//! their frames to one shared buffer, and the caller that finds no write in
//! progress yields once to the scheduler — so that the other callers woken
//! by the same batch of responses append theirs — and then writes
//! everything with one system call ([`Design::CombiningYield`]). The other
//! [`Design`]s are kept as variants (`floor-combine`, `floor-shared`,
//! `floor-queue`, `floor-lock`) to show what each choice is worth.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Buf, BufMut, BytesMut};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::BoxError;
use crate::pb::fixbug::{LoginRequest, LoginResponse};

/// Largest frame either side accepts; a bigger length prefix is a protocol
/// error, not an allocation.
const MAX_FRAME: usize = 1 << 20;

/// Splits one complete frame off the front of `buf`, if there is one.
fn next_frame(buf: &mut BytesMut) -> Result<Option<(u64, BytesMut)>, BoxError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if !(8..=MAX_FRAME).contains(&len) {
        return Err(format!("floor: bad frame length {len}").into());
    }
    if buf.len() < 4 + len {
        buf.reserve(4 + len - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    let mut frame = buf.split_to(len);
    let id = frame.get_u64();
    Ok(Some((id, frame)))
}

/// Appends one frame carrying `message` to `out`.
fn put_frame(out: &mut BytesMut, id: u64, message: &impl Message) {
    let len = message.encoded_len();
    out.reserve(12 + len);
    // `len + 8` fits: messages here are a few dozen bytes.
    out.put_u32((len + 8) as u32);
    out.put_u64(id);
    // Cannot fail: capacity was reserved above.
    let _ = message.encode(out);
}

/// Serves `listener` forever: one task per connection that reads whatever
/// arrived, answers every complete request in it, and writes all answers
/// with one `write_all` — batching for free under load.
pub async fn serve(listener: TcpListener) -> Result<(), BoxError> {
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            if let Err(err) = serve_connection(stream).await {
                eprintln!("floor server: connection closed: {err}");
            }
        });
    }
}

// ANCHOR: floor_server
/// One connection of [`serve`].
async fn serve_connection(mut stream: TcpStream) -> Result<(), BoxError> {
    stream.set_nodelay(true)?;
    let mut input = BytesMut::with_capacity(16 * 1024);
    let mut output = BytesMut::with_capacity(16 * 1024);
    loop {
        if stream.read_buf(&mut input).await? == 0 {
            return Ok(());
        }
        while let Some((id, body)) = next_frame(&mut input)? {
            let request = LoginRequest::decode(body)?;
            put_frame(&mut output, id, &crate::service::login(&request));
        }
        if !output.is_empty() {
            stream.write_all(&output).await?;
            output.clear();
        }
    }
}
// ANCHOR_END: floor_server

/// How a [`Client`] gets its request frames onto the socket: the design
/// question the floor variants answer by measurement (chapter
/// *Performance*, "The floor"). Everything else — framing, the pending
/// table, the reader task, the server — is the same in all four.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Design {
    /// Callers append to one shared buffer; whichever caller finds no
    /// write in progress becomes the writer and keeps writing until the
    /// buffer is empty ("flat combining"). No writer task, so no wake-up
    /// between tasks on the way out, and one `write` per batch.
    Combining,
    /// [`Design::Combining`], but the caller that becomes the writer first
    /// yields once to the scheduler, so that the other callers already
    /// woken (typically by the same batch of responses) append their frames
    /// before the write: bigger batches for one extra trip through the
    /// run queue.
    CombiningYield,
    /// Callers append to one shared buffer and wake a writer task only when
    /// the buffer was empty; the writer swaps buffers and writes.
    SharedBuffer,
    /// Each caller encodes into its own `BytesMut` and sends it through an
    /// unbounded channel to a writer task that coalesces what is queued.
    Queue,
    /// Each caller takes a lock on the socket and writes its own frame:
    /// one `write` system call per call.
    Lock,
}

/// Hashes call ids, which are unique and sequential, with one
/// multiplication (Fibonacci hashing) instead of SipHash: the table is
/// private to the connection and its keys are ours, not the peer's.
#[derive(Debug, Default, Clone, Copy)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Calls waiting for their response, by call id.
type Pending = Mutex<HashMap<u64, oneshot::Sender<BytesMut>, BuildHasherDefault<IdHasher>>>;

/// The outgoing buffer of [`Design::Combining`] and [`Design::SharedBuffer`].
#[derive(Debug, Default)]
struct Out {
    /// Frames appended since the last write began.
    buf: BytesMut,
    /// An empty buffer with capacity, swapped in when a write begins, so
    /// steady state allocates nothing.
    spare: BytesMut,
    /// Whether some caller is writing (`Combining` only).
    writing: bool,
}

/// State shared by a connection's callers and its reader task.
#[derive(Debug)]
struct Shared {
    /// The socket: `&TcpStream` can be read and written at once through
    /// readiness (`readable`/`try_read`, `writable`/`try_write`).
    stream: TcpStream,
    /// Calls waiting for their response.
    pending: Pending,
    /// Next call id.
    next_id: AtomicU64,
    /// Outgoing frames (`Combining`, `SharedBuffer`).
    out: Mutex<Out>,
    /// Wakes the writer task (`SharedBuffer`).
    wake_writer: Notify,
    /// Serialises writers (`Lock`); holds the frame buffer it reuses.
    lock: tokio::sync::Mutex<BytesMut>,
    /// Frames to the writer task (`Queue`).
    queue: Option<mpsc::UnboundedSender<BytesMut>>,
}

/// Writes all of `buf` to `stream` through readiness, so callers can share
/// the socket by reference.
async fn write_all_shared(stream: &TcpStream, mut buf: &[u8]) -> std::io::Result<()> {
    while !buf.is_empty() {
        match stream.try_write(buf) {
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => stream.writable().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Caller side: one connection shared by every clone, a reader task that
/// hands each response to its waiting call, and one of four ways
/// ([`Design`]) to write requests.
#[derive(Debug, Clone)]
pub struct Client {
    /// The connection.
    shared: Arc<Shared>,
    /// How requests are written.
    design: Design,
}

impl Client {
    /// Connects to a [`serve`] server at `addr`, writing as `design` says.
    pub async fn connect(addr: SocketAddr, design: Design) -> Result<Self, BoxError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (queue, frames) = mpsc::unbounded_channel::<BytesMut>();
        let shared = Arc::new(Shared {
            stream,
            pending: Pending::default(),
            next_id: AtomicU64::new(1),
            out: Mutex::new(Out {
                buf: BytesMut::with_capacity(16 * 1024),
                spare: BytesMut::with_capacity(16 * 1024),
                writing: false,
            }),
            wake_writer: Notify::new(),
            lock: tokio::sync::Mutex::new(BytesMut::with_capacity(256)),
            queue: (design == Design::Queue).then_some(queue),
        });
        match design {
            Design::SharedBuffer => {
                tokio::spawn(shared_buffer_writer(Arc::clone(&shared)));
            }
            Design::Queue => {
                tokio::spawn(queue_writer(Arc::clone(&shared), frames));
            }
            Design::Combining | Design::CombiningYield | Design::Lock => {}
        }
        tokio::spawn(read_responses(Arc::clone(&shared)));
        Ok(Self { shared, design })
    }

    /// Sends one `Login` and waits for its response.
    pub async fn login(&self, request: &LoginRequest) -> Result<LoginResponse, BoxError> {
        let shared = &*self.shared;
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        shared
            .pending
            .lock()
            .map_err(|_| "floor: pending map poisoned")?
            .insert(id, tx);
        match self.design {
            Design::Combining => send_combining(shared, id, request, false).await?,
            Design::CombiningYield => send_combining(shared, id, request, true).await?,
            Design::SharedBuffer => {
                let was_empty = {
                    let mut out = shared.out.lock().map_err(|_| "floor: poisoned")?;
                    let was_empty = out.buf.is_empty();
                    put_frame(&mut out.buf, id, request);
                    was_empty
                };
                // Only the first frame of a batch wakes the writer; the
                // rest ride along in the same write.
                if was_empty {
                    shared.wake_writer.notify_one();
                }
            }
            Design::Queue => {
                let mut frame = BytesMut::new();
                put_frame(&mut frame, id, request);
                shared
                    .queue
                    .as_ref()
                    .ok_or("floor: no writer queue")?
                    .send(frame)
                    .map_err(|_| "floor: connection closed")?;
            }
            Design::Lock => {
                let mut frame = shared.lock.lock().await;
                frame.clear();
                put_frame(&mut frame, id, request);
                write_all_shared(&shared.stream, &frame).await?;
            }
        }
        let body = rx
            .await
            .map_err(|_| "floor: connection closed before the response")?;
        Ok(LoginResponse::decode(body)?)
    }
}

// ANCHOR: floor_client
/// [`Design::Combining`]: append the frame; if nobody is writing, become
/// the writer and write batches until the shared buffer stays empty.
async fn send_combining(
    shared: &Shared,
    id: u64,
    request: &LoginRequest,
    yield_first: bool,
) -> Result<(), BoxError> {
    {
        let mut out = shared.out.lock().map_err(|_| "floor: poisoned")?;
        put_frame(&mut out.buf, id, request);
        if out.writing {
            return Ok(()); // the writer in progress will take it
        }
        out.writing = true;
    }
    if yield_first {
        tokio::task::yield_now().await;
    }
    let mut batch = {
        let mut out = shared.out.lock().map_err(|_| "floor: poisoned")?;
        let spare = std::mem::take(&mut out.spare);
        std::mem::replace(&mut out.buf, spare)
    };
    loop {
        let written = write_all_shared(&shared.stream, &batch).await;
        batch.clear();
        let mut out = shared.out.lock().map_err(|_| "floor: poisoned")?;
        if written.is_err() || out.buf.is_empty() {
            out.writing = false;
            out.spare = batch;
            return Ok(written?);
        }
        // Frames arrived during the write: swap them out and go again.
        std::mem::swap(&mut out.buf, &mut batch);
    }
}
// ANCHOR_END: floor_client

/// [`Design::SharedBuffer`]'s writer task. Like the reader task, it lives
/// as long as the connection: a benchmark client, not a library's.
async fn shared_buffer_writer(shared: Arc<Shared>) {
    let mut batch = BytesMut::with_capacity(16 * 1024);
    loop {
        shared.wake_writer.notified().await;
        match shared.out.lock() {
            Ok(mut out) => std::mem::swap(&mut out.buf, &mut batch),
            Err(_) => return,
        }
        if batch.is_empty() {
            continue;
        }
        if write_all_shared(&shared.stream, &batch).await.is_err() {
            return;
        }
        batch.clear();
    }
}

/// [`Design::Queue`]'s writer task.
async fn queue_writer(shared: Arc<Shared>, mut frames: mpsc::UnboundedReceiver<BytesMut>) {
    let mut batch = BytesMut::with_capacity(16 * 1024);
    while let Some(frame) = frames.recv().await {
        batch.extend_from_slice(&frame);
        // Everything queued meanwhile leaves in the same write.
        while let Ok(frame) = frames.try_recv() {
            batch.extend_from_slice(&frame);
        }
        if write_all_shared(&shared.stream, &batch).await.is_err() {
            return;
        }
        batch.clear();
    }
}

/// The reader task: hands every response to the call waiting for it.
async fn read_responses(shared: Arc<Shared>) {
    let mut input = BytesMut::with_capacity(16 * 1024);
    'read: loop {
        if shared.stream.readable().await.is_err() {
            break;
        }
        match shared.stream.try_read_buf(&mut input) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => break,
        }
        let Ok(mut pending) = shared.pending.lock() else {
            break;
        };
        loop {
            match next_frame(&mut input) {
                Ok(Some((id, body))) => {
                    if let Some(slot) = pending.remove(&id) {
                        let _ = slot.send(body);
                    }
                }
                Ok(None) => break,
                Err(_) => break 'read,
            }
        }
    }
    // Connection gone: dropping the senders fails every waiting call.
    if let Ok(mut map) = shared.pending.lock() {
        map.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn many_calls_share_one_connection() -> Result<(), BoxError> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(serve(listener));
        for design in [
            Design::Combining,
            Design::CombiningYield,
            Design::SharedBuffer,
            Design::Queue,
            Design::Lock,
        ] {
            let client = Client::connect(addr, design).await?;
            let mut calls = Vec::new();
            for _ in 0..64 {
                let client = client.clone();
                calls.push(tokio::spawn(async move {
                    client.login(&crate::service::sample_request()).await
                }));
            }
            for call in calls {
                assert!(call.await??.success, "{design:?}");
            }
        }
        Ok(())
    }

    #[test]
    fn oversized_length_is_an_error_not_an_allocation() {
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff, 0, 0][..]);
        assert!(next_frame(&mut buf).is_err());
    }
}
