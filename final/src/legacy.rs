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
struct Request {
    /// Service name bytes.
    service: Vec<u8>,
    /// Method name bytes.
    method: Vec<u8>,
    /// Serialized request message.
    args: bytes::Bytes,
}

// ANCHOR: legacy_read
/// Reads one legacy request; `buf` already holds at least the first four bytes.
async fn read_request(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Request, String> {
    let header_size = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if 4 + header_size > max {
        return Err(format!(
            "header_size {header_size} exceeds max_frame_size {max}"
        ));
    }
    fill(stream, buf, 4 + header_size).await?;
    let header =
        RpcHeader::decode(&buf[4..4 + header_size]).map_err(|e| format!("bad RpcHeader: {e}"))?;
    let total = 4 + header_size + header.args_size as usize;
    if total > max {
        return Err(format!(
            "request of {total} bytes (args_size {}) exceeds max_frame_size {max}",
            header.args_size
        ));
    }
    fill(stream, buf, total).await?;
    buf.advance(4 + header_size);
    Ok(Request {
        service: header.service_name,
        method: header.method_name,
        args: buf.split_to(header.args_size as usize).freeze(),
    })
}
// ANCHOR_END: legacy_read

/// Reads until `buf` holds `n` bytes (`n` was already checked against the
/// limit, so reserving it is safe).
async fn fill(stream: &mut TcpStream, buf: &mut BytesMut, n: usize) -> Result<(), String> {
    if buf.len() < n {
        buf.reserve(n - buf.len());
    }
    while buf.len() < n {
        match stream.read_buf(buf).await {
            Ok(0) => {
                return Err(format!(
                    "connection closed after {} of {n} bytes",
                    buf.len()
                ));
            }
            Ok(_) => {}
            Err(e) => return Err(format!("read failed: {e}")),
        }
    }
    Ok(())
}

/// Serves one legacy call on `stream`, then closes it.
pub(crate) async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    mut buf: BytesMut,
    services: &HashMap<Vec<u8>, Arc<dyn Service>>,
    max_frame_size: usize,
    read_timeout: Duration,
) {
    let request = match tokio::time::timeout(
        read_timeout,
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
                &format!("request not complete within {read_timeout:?}"),
            )
            .await;
        }
    };
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
    match svc.call(index, ctx, request.args).await {
        Ok(response) => {
            if let Err(e) = stream.write_all(&response).await {
                log::debug!("legacy {peer}: writing the response failed: {e}");
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
