//! One call over a plain TCP connection of the tool's own, for `--dump`:
//! the bytes that went out and the bytes that came back, exactly. (Calls
//! without `--dump` go through `MprpcChannel`; this path exists only to show
//! the bytes, so it speaks plain TCP and one call.)

use std::time::Duration;

use bytes::BytesMut;
use mprpc::frame::{self, Frame};
use mprpc::{Metadata, legacy};
use prost_reflect::DynamicMessage;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The most a reply may be before the tool stops reading (16 MiB).
const MAX_REPLY: usize = 16 << 20;

/// What went out and what came back.
#[derive(Debug)]
pub struct Exchanged {
    /// Every byte sent.
    pub sent: Vec<u8>,
    /// Every byte received.
    pub received: Vec<u8>,
    /// The response message's bytes, if the call succeeded.
    pub response: Option<Vec<u8>>,
    /// Why not, if it failed (code name and text).
    pub failure: Option<(mprpc::ErrorCode, String)>,
}

/// The request bytes of a course-format call (`short` service name).
pub fn course_bytes(short: &str, method: &str, request: &DynamicMessage) -> Vec<u8> {
    legacy::encode_bytes(short, method, &prost::Message::encode_to_vec(request))
}

/// The preamble and request frame of a framed call (call id 1).
pub fn framed_bytes(
    full: &str,
    method: &str,
    request: &DynamicMessage,
    metadata: &Metadata,
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let mut out = BytesMut::from(&frame::PREAMBLE[..]);
    let timeout_ms = timeout.as_millis().clamp(1, u32::MAX as u128) as u32;
    frame::encode_request_with_metadata(
        &mut out,
        1,
        timeout_ms,
        full,
        method,
        Some(metadata),
        request,
        frame::MAX_FRAME_SIZE_CAP,
    )
    .map_err(|(code, why)| format!("{}: {why}", code.as_str()))?;
    Ok(out.to_vec())
}

/// Sends `sent` to `addr` and reads the reply: to EOF for the course's
/// format, up to the provider's preamble and first response frame for the
/// framed one. Bounded by `timeout` and [`MAX_REPLY`].
pub async fn exchange(
    addr: &str,
    sent: Vec<u8>,
    course: bool,
    timeout: Duration,
) -> Result<Exchanged, String> {
    let work = async {
        let mut s = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("{addr}: cannot connect: {e}"))?;
        s.write_all(&sent)
            .await
            .map_err(|e| format!("{addr}: sending: {e}"))?;
        let mut received = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = s
                .read(&mut chunk)
                .await
                .map_err(|e| format!("{addr}: reading: {e}"))?;
            received.extend_from_slice(&chunk[..n]);
            if received.len() > MAX_REPLY {
                return Err(format!("{addr}: reply longer than {MAX_REPLY} bytes"));
            }
            if course {
                if n == 0 {
                    let response = Some(received.clone()).filter(|r| !r.is_empty());
                    let failure = response.is_none().then(|| {
                        (
                            mprpc::ErrorCode::BadResponse,
                            "the provider closed without answering".to_string(),
                        )
                    });
                    return Ok(Exchanged {
                        sent,
                        received,
                        response,
                        failure,
                    });
                }
                continue;
            }
            if let Some(done) = framed_reply(&received)? {
                let (response, failure) = done;
                return Ok(Exchanged {
                    sent,
                    received,
                    response,
                    failure,
                });
            }
            if n == 0 {
                return Err(format!("{addr}: the provider closed before answering"));
            }
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("{addr}: no answer within {timeout:?}"))?
}

/// The outcome once `received` holds a preamble and a frame for call 1.
type Outcome = (Option<Vec<u8>>, Option<(mprpc::ErrorCode, String)>);

/// `Some` once the reply is complete; an error if it is not mprpc's.
fn framed_reply(received: &[u8]) -> Result<Option<Outcome>, String> {
    if received.len() < 8 {
        return Ok(None);
    }
    let preamble: [u8; 8] = received[..8].try_into().unwrap_or_default();
    frame::check_preamble(&preamble).map_err(|why| format!("not an mprpc provider: {why}"))?;
    let mut buf = BytesMut::from(&received[8..]);
    loop {
        match frame::try_decode(&mut buf, frame::MAX_FRAME_SIZE_CAP) {
            Ok(None) => return Ok(None),
            Err(e) => return Err(format!("the provider's reply is not a frame: {e:?}")),
            Ok(Some(Frame::Response { code, payload, .. })) => {
                return Ok(Some(if code == mprpc::ErrorCode::Ok {
                    (Some(payload.to_vec()), None)
                } else {
                    (
                        None,
                        Some((code, String::from_utf8_lossy(&payload).into_owned())),
                    )
                }));
            }
            Ok(Some(Frame::ConnectionError { code, message })) => {
                return Ok(Some((None, Some((code, message)))));
            }
            Ok(Some(_)) => continue, // goaway: the answer may still come
        }
    }
}
