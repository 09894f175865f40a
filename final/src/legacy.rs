//! The course's original wire format, still served so existing C++ callers
//! keep working while they migrate.
//!
//! ```text
//! request:  [u32 header_size, little-endian][RpcHeader: service_name, method_name, args_size][args]
//! response: the serialized response message, then the provider closes the connection
//! ```
//!
//! The provider recognises it by the first four bytes of a connection not
//! being the mprpc magic (see [`crate::frame`]). Compared with the course's
//! provider, this one:
//!
//! * reads until the whole request is there, however TCP splits it (the
//!   course assumed one read = one request);
//! * checks `header_size` and `args_size` against `max_frame_size` before
//!   allocating anything;
//! * closes the connection on any error. The format has no way to say
//!   "unknown method", so closing is the only signal — but it beats the
//!   course's provider, which neither replied nor closed, leaving the caller
//!   blocked forever. The error goes to the log instead.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures_util::FutureExt;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{ErrorCode, RpcError};
use crate::proto::mprpc::RpcHeader;
use crate::service::{CallContext, Service};

// ANCHOR: legacy_encode
/// The exact bytes a course caller sends for one call.
pub fn encode_request<M: Message>(service: &str, method: &str, request: &M) -> Vec<u8> {
    let args = request.encode_to_vec();
    let header = RpcHeader {
        service_name: service.as_bytes().to_vec(),
        method_name: method.as_bytes().to_vec(),
        args_size: args.len() as u32,
    }
    .encode_to_vec();
    let mut out = Vec::with_capacity(4 + header.len() + args.len());
    // Host byte order in the course: little-endian on x86-64.
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&args);
    out
}
// ANCHOR_END: legacy_encode

/// Makes one call in the course's format: connect, send, read to EOF. For
/// talking to course-era providers and for compatibility tests. Reads at most
/// `max_response` bytes (the course read 1024 bytes once and cut anything
/// longer).
pub async fn call<Req: Message, Resp: Message + Default>(
    addr: &str,
    service: &str,
    method: &str,
    request: &Req,
    max_response: usize,
) -> Result<Resp, RpcError> {
    let transport = |e: std::io::Error| {
        RpcError::new(ErrorCode::Transport, format!("legacy call to {addr}: {e}"))
    };
    let mut stream = TcpStream::connect(addr).await.map_err(transport)?;
    stream
        .write_all(&encode_request(service, method, request))
        .await
        .map_err(transport)?;
    let mut reply = Vec::new();
    (&mut stream)
        .take(max_response as u64 + 1)
        .read_to_end(&mut reply)
        .await
        .map_err(transport)?;
    if reply.len() > max_response {
        return Err(RpcError::new(
            ErrorCode::FrameTooLarge,
            format!("legacy response from {addr} is longer than {max_response} bytes"),
        ));
    }
    // An empty reply is a valid encoding of an all-default message, which is
    // also what a provider that closed on error "sends": the format cannot
    // tell them apart.
    Resp::decode(&reply[..]).map_err(|e| RpcError::new(ErrorCode::BadResponse, e.to_string()))
}

/// A parsed legacy request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Service name bytes.
    pub service: Vec<u8>,
    /// Method name bytes.
    pub method: Vec<u8>,
    /// Serialized request message.
    pub args: bytes::Bytes,
}

/// What [`try_decode`] found at the front of the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// The request is not complete: the buffer must hold at least this many
    /// bytes before it is worth calling [`try_decode`] again. The number was
    /// already checked against the limit.
    NeedBytes(usize),
    /// A whole request; its bytes were taken off the buffer.
    Request(Request),
}

// ANCHOR: legacy_decode
/// Decodes one legacy request from the front of `buf`, without any I/O, so
/// that it can be tested and fuzzed on its own.
///
/// Both peer-controlled lengths are checked against `max` before anything
/// is reserved: first `header_size` (the 4-byte prefix), then `args_size`
/// (inside the RpcHeader). Once a size is accepted the buffer is reserved to
/// it in one go. On error nothing is consumed; the caller closes.
pub fn try_decode(buf: &mut BytesMut, max: usize) -> Result<Decoded, String> {
    if buf.len() < 4 {
        return Ok(Decoded::NeedBytes(4));
    }
    let header_size = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if 4 + header_size > max {
        return Err(format!(
            "header_size {header_size} exceeds max_frame_size {max}"
        ));
    }
    if buf.len() < 4 + header_size {
        buf.reserve(4 + header_size - buf.len());
        return Ok(Decoded::NeedBytes(4 + header_size));
    }
    let header =
        RpcHeader::decode(&buf[4..4 + header_size]).map_err(|e| format!("bad RpcHeader: {e}"))?;
    let total = 4 + header_size + header.args_size as usize;
    if total > max {
        return Err(format!(
            "request of {total} bytes (args_size {}) exceeds max_frame_size {max}",
            header.args_size
        ));
    }
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(Decoded::NeedBytes(total));
    }
    buf.advance(4 + header_size);
    Ok(Decoded::Request(Request {
        service: header.service_name,
        method: header.method_name,
        args: buf.split_to(header.args_size as usize).freeze(),
    }))
}
// ANCHOR_END: legacy_decode

// ANCHOR: legacy_read
/// Reads one legacy request. Decoding is retried only once the buffer holds
/// the size [`try_decode`] asked for, so a peer trickling a large header one
/// byte at a time does not make us re-parse it on every read.
async fn read_request(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Request, String> {
    loop {
        let needed = match try_decode(buf, max)? {
            Decoded::Request(r) => return Ok(r),
            Decoded::NeedBytes(n) => n,
        };
        while buf.len() < needed {
            match stream.read_buf(buf).await {
                Ok(0) => {
                    return Err(format!(
                        "connection closed after {} of {needed} bytes",
                        buf.len()
                    ));
                }
                Ok(_) => {}
                Err(e) => return Err(format!("read failed: {e}")),
            }
        }
    }
}
// ANCHOR_END: legacy_read

/// Serves one legacy call on `stream`, then closes it. The request must be
/// complete by `deadline` (however slowly it trickles in); the response
/// must be taken within `write_timeout`. `on_request` runs once the
/// request is complete.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    mut buf: BytesMut,
    services: &HashMap<Vec<u8>, Arc<dyn Service>>,
    max_frame_size: usize,
    deadline: std::time::Instant,
    write_timeout: Duration,
    on_request: impl FnOnce(),
) {
    let request = match tokio::time::timeout_at(
        deadline.into(),
        read_request(&mut stream, &mut buf, max_frame_size),
    )
    .await
    {
        Ok(Ok(r)) => r,
        Ok(Err(why)) => return close(stream, peer, &why).await,
        Err(_) => {
            return close(
                stream,
                peer,
                &format!(
                    "request not complete within handshake_ms ({write_timeout:?}) of connecting"
                ),
            )
            .await;
        }
    };
    on_request();
    let name = format!(
        "{}.{}",
        String::from_utf8_lossy(&request.service),
        String::from_utf8_lossy(&request.method)
    );
    let Some(svc) = services.get(&request.service) else {
        return close(stream, peer, &format!("unknown service in {name}")).await;
    };
    let Some(index) = svc.descriptor().method_index(&request.method) else {
        return close(stream, peer, &format!("unknown method in {name}")).await;
    };
    let ctx = CallContext {
        peer,
        deadline: None,
        call_id: 0,
        legacy: true,
    };
    // A panicking handler fails this call only, as on the framed path.
    let result = std::panic::AssertUnwindSafe(svc.call(index, ctx, request.args))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(crate::Status::handler("handler panicked")));
    match result {
        Ok(response) => {
            // Bounded like the read: a caller that never reads must not
            // hold the connection forever.
            match tokio::time::timeout(write_timeout, stream.write_all(&response)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => log::debug!("legacy {peer}: writing the response failed: {e}"),
                Err(_) => log::warn!("legacy {peer}: response not taken within {write_timeout:?}"),
            }
            let _ = stream.shutdown().await;
        }
        Err(status) => close(stream, peer, &format!("{name} failed: {status}")).await,
    }
}

/// Logs why a legacy call gets no reply, and closes.
async fn close(mut stream: TcpStream, peer: SocketAddr, why: &str) {
    log::warn!("legacy caller {peer}: {why}; closing (the course format cannot carry errors)");
    let _ = stream.shutdown().await;
}
