//! Serving a caller of the C++ course in its own format: one request, one
//! response, then the connection is closed.

use crate::wire::course::{Decoded, Request, try_decode};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::FutureExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Hooks, LegacyEntry, Who};
use crate::error::{ErrorCode, Status};
use crate::metadata::Metadata;
use crate::service::CallContext;

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
