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
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::FutureExt;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{ErrorCode, Status};
use crate::metadata::Metadata;
use crate::provider::{Hooks, LegacyEntry, Who};
use crate::service::CallContext;

// ANCHOR: rpc_header
/// The header before every request in the course's format: `message
/// RpcHeader` of `proto/rpcheader.proto` (package `mprpc`), written out by
/// hand so that this crate needs no `.proto` file and no build step. The
/// derive produces the same encoding protoc's generated code does; the tests
/// check it against the course's captured bytes.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct RpcHeader {
    /// Short service name, `"UserServiceRpc"` (never package-qualified).
    #[prost(bytes = "vec", tag = "1")]
    pub service_name: Vec<u8>,
    /// Method name, `"Login"`.
    #[prost(bytes = "vec", tag = "2")]
    pub method_name: Vec<u8>,
    /// Length of the serialized request that follows the header.
    #[prost(uint32, tag = "3")]
    pub args_size: u32,
}
// ANCHOR_END: rpc_header

// ANCHOR: legacy_encode
/// The exact bytes a course caller sends for one call.
pub fn encode_request<M: Message>(service: &str, method: &str, request: &M) -> Vec<u8> {
    encode_bytes(service, method, &request.encode_to_vec())
}

/// [`encode_request`] for an already encoded request message.
pub fn encode_bytes(service: &str, method: &str, args: &[u8]) -> Vec<u8> {
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
    out.extend_from_slice(args);
    out
}
// ANCHOR_END: legacy_encode

/// The scheme that marks a provider address as speaking the course's
/// format: `"course://127.0.0.1:8000"` in `[static_registry]`, and the form
/// in which providers found under the course's ZooKeeper layout appear in a
/// provider list. A bare `"ip:port"` is a framed (final/) provider.
pub const COURSE_SCHEME: &str = "course://";

/// Makes one call in the course's format: connect, send, read to EOF (at
/// most `max_response` bytes). For hand-written tools and tests; a
/// [`crate::MprpcChannel`] does the same for `course://` providers, with the
/// call's deadline around it. An empty reply is an error (see
/// [`call_bytes`]). Connecting may take the default `timeouts.connect_ms`.
pub async fn call<Req: Message, Resp: Message + Default>(
    addr: &str,
    service: &str,
    method: &str,
    request: &Req,
    max_response: usize,
) -> Result<Resp, Status> {
    let connect_timeout = Duration::from_millis(crate::config::Timeouts::default().connect_ms);
    let args = request.encode_to_vec();
    let reply = call_bytes(addr, service, method, &args, max_response, connect_timeout)
        .await
        .map_err(|(_, e)| e)?;
    Resp::decode(reply).map_err(|e| {
        Status::new(
            ErrorCode::BadResponse,
            format!("course-format response of {service}.{method} from {addr}: {e}"),
        )
    })
}

/// Whether a failed course-format call may have reached the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reached {
    /// Connecting failed: nothing was sent, another provider may be tried.
    No,
    /// The request may have been delivered (and run).
    Maybe,
}

// ANCHOR: course_call
/// One call in the course's format, as bytes: `args` is the encoded request
/// message, the result the encoded response. `service` must be the short
/// name the course uses (`"UserServiceRpc"`).
///
/// The course's caller read once into a 1024-byte buffer (cutting longer
/// replies) and parsed whatever came, zero bytes included. Here:
///
/// * the reply is read to EOF, which is where the format ends it, but never
///   more than `max_response` bytes: a peer that streams forever is cut off
///   with [`ErrorCode::FrameTooLarge`] after `max_response + 1` bytes;
/// * an **empty reply is an error**. Zero bytes decode as an all-default
///   message, and a provider that refuses a call (unknown method, handler
///   error) closes without a byte: the course took that for success. The one
///   case this misjudges is a method whose real answer is the all-default
///   message (encoded as zero bytes); such a method cannot be told apart
///   from a refusal in this format at all;
/// * every failure says which provider and which method.
///
/// There is no deadline in here: the caller ([`crate::MprpcChannel::call`])
/// races the whole call against its deadline and drops it, which closes the
/// connection.
pub(crate) async fn call_bytes(
    addr: &str,
    service: &str,
    method: &str,
    args: &[u8],
    max_response: usize,
    connect_timeout: Duration,
) -> Result<Bytes, (Reached, Status)> {
    let what = || format!("course-format call {service}.{method} to {addr}");
    let mut stream = match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let msg = format!("{}: connecting failed: {e}", what());
            return Err((Reached::No, Status::new(ErrorCode::Transport, msg)));
        }
        Err(_) => {
            let msg = format!("{}: not connected within {connect_timeout:?}", what());
            return Err((Reached::No, Status::new(ErrorCode::Transport, msg)));
        }
    };
    let _ = stream.set_nodelay(true);
    let transport = |doing: &str, e: std::io::Error| {
        (
            Reached::Maybe,
            Status::new(
                ErrorCode::Transport,
                format!("{}: {doing} failed: {e}", what()),
            ),
        )
    };
    stream
        .write_all(&encode_bytes(service, method, args))
        .await
        .map_err(|e| transport("sending", e))?;
    // One byte more than allowed tells "too long" from "exactly the limit".
    let mut reply = Vec::new();
    (&mut stream)
        .take(max_response as u64 + 1)
        .read_to_end(&mut reply)
        .await
        .map_err(|e| transport("reading the response", e))?;
    if reply.len() > max_response {
        let msg = format!(
            "{}: the response is longer than {max_response} bytes (limits.max_frame_size)",
            what()
        );
        return Err((Reached::Maybe, Status::new(ErrorCode::FrameTooLarge, msg)));
    }
    if reply.is_empty() {
        let msg = format!(
            "{}: the provider closed the connection without replying. The course format \
             cannot carry errors; the provider refused the call (unknown service or method, \
             bad request, handler error) and its log says why",
            what()
        );
        return Err((Reached::Maybe, Status::new(ErrorCode::BadResponse, msg)));
    }
    Ok(Bytes::from(reply))
}
// ANCHOR_END: course_call

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
#[non_exhaustive]
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

/// Serves one legacy call on `stream`, then closes it. `services` is keyed
/// by short name ("UserServiceRpc"): the course's header carries no package. The request must be
/// complete by `deadline` (however slowly it trickles in); the response
/// must be taken within `write_timeout`. `on_request` runs once the
/// request is complete.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    mut buf: BytesMut,
    services: &HashMap<Vec<u8>, LegacyEntry>,
    hooks: &Hooks,
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
    let Some((svc, metrics)) = services.get(&request.service) else {
        return close(stream, peer, &format!("unknown service in {name}")).await;
    };
    let desc = svc.descriptor();
    let Some(index) = desc.method_index(&request.method) else {
        return close(stream, peer, &format!("unknown method in {name}")).await;
    };
    // Interceptors, span and metrics as on the framed path; the call has
    // no metadata, so an interceptor requiring a token refuses it.
    let who = Who {
        desc,
        index,
        peer,
        call_id: 0,
        legacy: true,
    };
    let mut end = hooks.begin(&who, &metrics[index], std::time::Instant::now());
    if let Err(status) = hooks.intercept(&mut end, &who, Metadata::new()) {
        end.finish(Some(status.code));
        return close(stream, peer, &format!("{name} refused: {status}")).await;
    }
    // The course's format carries no response metadata: the handler's
    // cell is not watched.
    let ctx = CallContext::for_call(peer, None, 0, true, Metadata::new(), Default::default());
    let handler = end.in_span(svc.call(index, ctx, request.args));
    // A panicking handler fails this call only, as on the framed path.
    let result = std::panic::AssertUnwindSafe(handler)
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(Status::handler("handler panicked")));
    end.finish(Some(
        result.as_ref().err().map_or(ErrorCode::Ok, |e| e.code),
    ));
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
