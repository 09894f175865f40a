//! Calling a provider of the C++ course in its own format: connect, send,
//! read to EOF. Used by the channel for `course://` providers and by
//! [`crate::legacy::call`].

use crate::wire::course::encode_bytes;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{ErrorCode, Status};

/// Makes one call in the course's format: connect, send, read to EOF (at
/// most `max_response` bytes). For hand-written tools and tests; a
/// [`crate::MprpcChannel`] does the same for `course://` providers, with the
/// call's deadline around it. An empty reply is an error (see
/// `call_bytes`). Connecting may take the default `timeouts.connect_ms`.
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
