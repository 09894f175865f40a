//! The floor: the least code that multiplexes calls over one TCP connection
//! with tokio and prost. Not a framework (no service names, no deadlines, no
//! cancellation, no error frames) — just what any design must do at minimum,
//! so the gap between it and a real framework is the framework's overhead.
//!
//! Frame, both directions: `[u32 length, big-endian][u64 call id][protobuf]`,
//! where `length` counts the id and the message.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Buf, BufMut, BytesMut};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

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

/// Calls waiting for their response, by call id.
type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<BytesMut>>>>;

/// Caller side: one connection, a writer task that drains a queue of encoded
/// frames, and a reader task that hands each response to its waiting call.
/// Clones share the connection.
#[derive(Debug, Clone)]
pub struct Client {
    /// Encoded request frames on their way to the writer task.
    outgoing: mpsc::UnboundedSender<BytesMut>,
    /// Calls waiting for their response.
    pending: Pending,
    /// Next call id.
    next_id: Arc<AtomicU64>,
}

impl Client {
    /// Connects to a [`serve`] server at `addr`.
    pub async fn connect(addr: SocketAddr) -> Result<Self, BoxError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (mut reader, mut writer) = stream.into_split();
        let (outgoing, mut queue) = mpsc::unbounded_channel::<BytesMut>();
        let pending: Pending = Arc::default();

        tokio::spawn(async move {
            let mut batch = BytesMut::with_capacity(16 * 1024);
            while let Some(frame) = queue.recv().await {
                batch.extend_from_slice(&frame);
                // Everything queued meanwhile leaves in the same write.
                while let Ok(frame) = queue.try_recv() {
                    batch.extend_from_slice(&frame);
                }
                if writer.write_all(&batch).await.is_err() {
                    return;
                }
                batch.clear();
            }
        });

        let waiting = Arc::clone(&pending);
        tokio::spawn(async move {
            let mut input = BytesMut::with_capacity(16 * 1024);
            loop {
                match reader.read_buf(&mut input).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                loop {
                    match next_frame(&mut input) {
                        Ok(Some((id, body))) => {
                            let slot = waiting.lock().ok().and_then(|mut map| map.remove(&id));
                            if let Some(slot) = slot {
                                let _ = slot.send(body);
                            }
                        }
                        Ok(None) => break,
                        Err(_) => return,
                    }
                }
            }
            // Connection gone: dropping the senders fails every waiting call.
            if let Ok(mut map) = waiting.lock() {
                map.clear();
            }
        });

        Ok(Self {
            outgoing,
            pending,
            next_id: Arc::new(AtomicU64::new(1)),
        })
    }

    /// Sends one `Login` and waits for its response.
    pub async fn login(&self, request: &LoginRequest) -> Result<LoginResponse, BoxError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .map_err(|_| "floor: pending map poisoned")?
            .insert(id, tx);
        let mut frame = BytesMut::new();
        put_frame(&mut frame, id, request);
        self.outgoing
            .send(frame)
            .map_err(|_| "floor: connection closed")?;
        let body = rx
            .await
            .map_err(|_| "floor: connection closed before the response")?;
        Ok(LoginResponse::decode(body)?)
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
        let client = Client::connect(addr).await?;
        let mut calls = Vec::new();
        for _ in 0..64 {
            let client = client.clone();
            calls.push(tokio::spawn(async move {
                client.login(&crate::service::sample_request()).await
            }));
        }
        for call in calls {
            assert!(call.await??.success);
        }
        Ok(())
    }

    #[test]
    fn oversized_length_is_an_error_not_an_allocation() {
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff, 0, 0][..]);
        assert!(next_frame(&mut buf).is_err());
    }
}
