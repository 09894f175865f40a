//! The mprpc wire format: a connection preamble, then length-prefixed frames
//! in both directions, each carrying a call id so that many calls can share
//! one connection.
//!
//! # Why a new format
//!
//! The course's format (see [`crate::legacy`]) has no overall length, no call
//! id and no error channel: one call per connection, the response is the raw
//! message, and "end of response" is the provider closing the socket. That
//! rules out persistent connections and makes every failure look like an
//! empty, successful response.
//!
//! # Layout, byte by byte
//!
//! Every connection starts with an 8-byte preamble, sent by each side:
//!
//! ```text
//! offset size  field
//! 0      4     magic   "MPRC" = 4D 50 52 43
//! 4      1     version 1
//! 5      1     flags   bit 0: this side understands metadata (kinds 6 and 7)
//!                       bit 1: this side can stream (kinds 8 to 11)
//! 6      2     reserved, zero
//! ```
//!
//! Then frames. Integers are big-endian (network order — the course copied a
//! host-order `u32`, which only works between two little-endian machines):
//!
//! ```text
//! offset size  field
//! 0      4     length   bytes after this field (kind + id + body), 9..=max_frame_size
//! 4      1     kind     1 request, 2 response, 3 cancel, 4 goaway, 5 connection error,
//!                       6 request with metadata, 7 response with metadata,
//!                       8 stream open, 9 stream message, 10 stream end, 11 credit
//! 5      8     call id  chosen by the caller, echoed in the response; 0 for 4 and 5
//! 13     ...   body, by kind:
//!
//!   request   u32 timeout_ms (0 = none) | u8 S | S bytes service | u8 M | M bytes method | payload
//!   response  u8 code (0 = ok)          | payload if ok, else UTF-8 error text
//!   request with metadata   as request, with u16 L | L bytes metadata before the payload
//!   response with metadata  u8 code | u16 L | L bytes metadata | payload or error text
//!   cancel    (empty) — the caller gave up on call id; the provider drops the handler
//!   goaway    (empty) — the provider is draining: send no new calls on this connection
//!   conn err  u8 code | UTF-8 text — the sender closes the connection after this frame
//!   stream open     u32 timeout_ms | u32 window | u8 S | service | u8 M | method
//!                   | u16 L | L bytes metadata | payload (the request message)
//!   stream message  payload (one message)
//!   stream end      u8 code | UTF-8 text (error text if code ≠ 0)
//!   credit          u32 bytes the receiver of this frame may send more
//! ```
//!
//! Frames 8 to 11 carry a *stream id*, from an id space of their own (a
//! caller numbers its streams 1, 2, 3 … independently of its calls). The
//! chapter "Wire formats" of the book gives their rules.
//!
//! A metadata block is entries back to back, `u8 key length | key | u16 value
//! length | value` (see [`crate::metadata`]). A provider answers with kind 7
//! only a caller whose preamble set flag bit 0; anyone else gets kind 2 and
//! no response metadata.
//!
//! The timeout travels as a duration, not a wall-clock deadline, so the two
//! machines' clocks need not agree.
//!
//! # Telling the two formats apart
//!
//! A legacy request starts with `header_size` as a little-endian `u32`. Read
//! that way, the magic "MPRC" is 0x4352504D = 1,129,467,981, more than the hard
//! cap [`MAX_FRAME_SIZE_CAP`] (1 GiB) on any frame, so a valid legacy request
//! can never begin with it, and the provider can decide from the first four
//! bytes.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::ErrorCode;
use crate::metadata::Metadata;

// ANCHOR: preamble
/// First four bytes of every mprpc connection.
pub const MAGIC: [u8; 4] = *b"MPRC";
/// Protocol version sent in the preamble.
pub const VERSION: u8 = 1;
/// Preamble flag (byte 5, bit 0): this side understands frames of kinds 6
/// and 7, so responses to it may carry metadata.
pub const FLAG_METADATA: u8 = 1;
/// Preamble flag (byte 5, bit 1): this side can stream, so frames of kinds
/// 8 to 11 may be sent to it.
pub const FLAG_STREAMS: u8 = 2;
/// The complete 8-byte preamble this version sends, on both sides.
pub const PREAMBLE: [u8; 8] = [
    MAGIC[0],
    MAGIC[1],
    MAGIC[2],
    MAGIC[3],
    VERSION,
    FLAG_METADATA | FLAG_STREAMS,
    0,
    0,
];
/// No configuration may raise `max_frame_size` above this: it keeps the
/// magic out of the range of valid legacy `header_size` values.
pub const MAX_FRAME_SIZE_CAP: usize = 1 << 30;
// ANCHOR_END: preamble

/// Bytes of the length field.
const LEN_BYTES: usize = 4;
/// Bytes of kind + call id, present in every frame.
const FIXED: usize = 1 + 8;

/// Frame kind byte values.
mod kind {
    /// A call.
    pub const REQUEST: u8 = 1;
    /// The answer to a call.
    pub const RESPONSE: u8 = 2;
    /// The caller abandoned a call.
    pub const CANCEL: u8 = 3;
    /// The provider is draining.
    pub const GOAWAY: u8 = 4;
    /// Fatal connection-level error; the sender closes after it.
    pub const CONN_ERROR: u8 = 5;
    /// A call with metadata.
    pub const REQUEST_MD: u8 = 6;
    /// An answer with metadata.
    pub const RESPONSE_MD: u8 = 7;
    /// A caller opens a stream.
    pub const STREAM_OPEN: u8 = 8;
    /// One message of a stream, either way.
    pub const STREAM_MESSAGE: u8 = 9;
    /// The end of one side of a stream, with a status.
    pub const STREAM_END: u8 = 10;
    /// Flow-control credit for a stream, in bytes.
    pub const CREDIT: u8 = 11;
}

/// One decoded frame. Byte fields are slices of the receive buffer
/// ([`Bytes`] is reference-counted), so decoding copies no payload.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame {
    /// A call from caller to provider.
    Request {
        /// Caller-chosen id, echoed in the response.
        id: u64,
        /// How long the caller will wait, in milliseconds; 0 = no limit.
        timeout_ms: u32,
        /// Service name ("UserServiceRpc").
        service: Bytes,
        /// Method name ("Login").
        method: Bytes,
        /// The encoded metadata block (empty for kind 1), decoded by the
        /// receiver with [`Metadata::decode`] within its limits.
        metadata: Bytes,
        /// Serialized request message.
        payload: Bytes,
    },
    /// The provider's answer to request `id`.
    Response {
        /// Id of the request being answered.
        id: u64,
        /// [`ErrorCode::Ok`] or the reason for failure.
        code: ErrorCode,
        /// The encoded metadata block (empty for kind 2).
        metadata: Bytes,
        /// Serialized response if ok, else UTF-8 error text.
        payload: Bytes,
    },
    /// The caller no longer wants the answer to `id`.
    Cancel {
        /// Id of the abandoned request.
        id: u64,
    },
    /// The provider is shutting down: finish what is in flight, send no more.
    GoAway,
    /// A fatal error; the sender closes the connection after this frame.
    ConnectionError {
        /// Why.
        code: ErrorCode,
        /// Explanation.
        message: String,
    },
    /// The caller opens stream `id` (kind 8).
    StreamOpen {
        /// Caller-chosen stream id, echoed in every frame of the stream.
        id: u64,
        /// How long the whole stream may last, in milliseconds; 0 = no limit.
        timeout_ms: u32,
        /// Bytes of messages the provider may send before it gets credit.
        window: u32,
        /// Service name.
        service: Bytes,
        /// Method name.
        method: Bytes,
        /// The encoded metadata block (possibly empty).
        metadata: Bytes,
        /// The serialized request message.
        payload: Bytes,
    },
    /// One message of stream `id` (kind 9).
    StreamMessage {
        /// The stream.
        id: u64,
        /// The serialized message.
        payload: Bytes,
    },
    /// The sender is done with stream `id` (kind 10).
    StreamEnd {
        /// The stream.
        id: u64,
        /// From the provider: how the stream ended ([`ErrorCode::Ok`] or
        /// why not). From the caller: `Ok` is a half-close, anything else
        /// cancels the stream.
        code: ErrorCode,
        /// UTF-8 error text (empty when `code` is `Ok`).
        message: Bytes,
    },
    /// The sender of this frame may be sent `bytes` more bytes of messages
    /// on stream `id` (kind 11).
    Credit {
        /// The stream.
        id: u64,
        /// Bytes granted.
        bytes: u32,
    },
}

/// Why bytes could not be decoded as a frame. Both are fatal for the
/// connection: after a bad length the byte stream cannot be resynchronised.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The length prefix exceeds the receiver's limit.
    TooLarge {
        /// Announced length.
        len: usize,
        /// Receiver's `max_frame_size`.
        max: usize,
    },
    /// The frame is structurally invalid.
    Malformed(String),
}

impl FrameError {
    /// The code to report to the peer.
    pub fn code(&self) -> ErrorCode {
        match self {
            FrameError::TooLarge { .. } => ErrorCode::FrameTooLarge,
            FrameError::Malformed(_) => ErrorCode::BadRequest,
        }
    }
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::TooLarge { len, max } => write!(
                f,
                "frame of {len} bytes exceeds max_frame_size {max}; closing the connection"
            ),
            FrameError::Malformed(why) => write!(f, "malformed frame: {why}"),
        }
    }
}

// ANCHOR: decode
/// Takes one complete frame off the front of `buf`, if there is one.
///
/// The length prefix is checked against `max_frame_size` *before* anything
/// is reserved, so a peer announcing 4 GiB costs us nothing but this check.
/// Once a length is accepted we reserve the rest of the frame in one go, so
/// large frames are not grown piecemeal.
pub fn try_decode(buf: &mut BytesMut, max_frame_size: usize) -> Result<Option<Frame>, FrameError> {
    if buf.len() < LEN_BYTES {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > max_frame_size {
        return Err(FrameError::TooLarge {
            len,
            max: max_frame_size,
        });
    }
    if len < FIXED {
        return Err(FrameError::Malformed(format!(
            "length {len} is shorter than the {FIXED}-byte kind and id"
        )));
    }
    let total = LEN_BYTES + len;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    let mut frame = buf.split_to(total).freeze();
    frame.advance(LEN_BYTES);
    parse(frame).map(Some)
}
// ANCHOR_END: decode

/// The length field of the frame at the front of `buf` (the bytes that
/// follow it), if its four bytes have arrived. Lets a receiver decide how
/// much memory a frame will need before [`try_decode`] reserves it.
pub fn peek_len(buf: &[u8]) -> Option<usize> {
    let head: [u8; LEN_BYTES] = buf.get(..LEN_BYTES)?.try_into().ok()?;
    Some(u32::from_be_bytes(head) as usize)
}

/// Whether a response with a `payload_len`-byte payload fits in a frame of
/// at most `max_frame_size`. Like every size check here it counts what the
/// length field counts: kind, id, code and payload, not the field itself.
pub fn response_fits(payload_len: usize, max_frame_size: usize) -> bool {
    FIXED + 1 + payload_len <= max_frame_size
}

/// Parses kind, id and body of a frame whose length was already checked.
fn parse(mut f: Bytes) -> Result<Frame, FrameError> {
    let kind = f.get_u8();
    let id = f.get_u64();
    match kind {
        kind::REQUEST | kind::REQUEST_MD => {
            if f.remaining() < 5 {
                return Err(FrameError::Malformed("request body too short".into()));
            }
            let timeout_ms = f.get_u32();
            let service = take_name(&mut f, "service")?;
            let method = take_name(&mut f, "method")?;
            let metadata = if kind == kind::REQUEST_MD {
                take_block(&mut f)?
            } else {
                Bytes::new()
            };
            Ok(Frame::Request {
                id,
                timeout_ms,
                service,
                method,
                metadata,
                payload: f,
            })
        }
        kind::RESPONSE | kind::RESPONSE_MD => {
            if f.remaining() < 1 {
                return Err(FrameError::Malformed("response without a code".into()));
            }
            let code = ErrorCode::from_wire(f.get_u8());
            let metadata = if kind == kind::RESPONSE_MD {
                take_block(&mut f)?
            } else {
                Bytes::new()
            };
            Ok(Frame::Response {
                id,
                code,
                metadata,
                payload: f,
            })
        }
        kind::CANCEL => Ok(Frame::Cancel { id }),
        kind::GOAWAY => Ok(Frame::GoAway),
        kind::CONN_ERROR => {
            let code = if f.has_remaining() {
                ErrorCode::from_wire(f.get_u8())
            } else {
                ErrorCode::Protocol
            };
            Ok(Frame::ConnectionError {
                code,
                message: String::from_utf8_lossy(&f).into_owned(),
            })
        }
        kind::STREAM_OPEN => {
            if f.remaining() < 8 + 2 {
                return Err(FrameError::Malformed("stream open body too short".into()));
            }
            let timeout_ms = f.get_u32();
            let window = f.get_u32();
            let service = take_name(&mut f, "service")?;
            let method = take_name(&mut f, "method")?;
            let metadata = take_block(&mut f)?;
            Ok(Frame::StreamOpen {
                id,
                timeout_ms,
                window,
                service,
                method,
                metadata,
                payload: f,
            })
        }
        kind::STREAM_MESSAGE => Ok(Frame::StreamMessage { id, payload: f }),
        kind::STREAM_END => {
            if !f.has_remaining() {
                return Err(FrameError::Malformed("stream end without a code".into()));
            }
            let code = ErrorCode::from_wire(f.get_u8());
            Ok(Frame::StreamEnd {
                id,
                code,
                message: f,
            })
        }
        kind::CREDIT => {
            if f.remaining() != 4 {
                return Err(FrameError::Malformed(format!(
                    "credit body of {} bytes, not 4",
                    f.remaining()
                )));
            }
            Ok(Frame::Credit {
                id,
                bytes: f.get_u32(),
            })
        }
        other => Err(FrameError::Malformed(format!("unknown frame kind {other}"))),
    }
}

/// Reads a `u8`-length-prefixed name.
fn take_name(f: &mut Bytes, what: &str) -> Result<Bytes, FrameError> {
    if !f.has_remaining() {
        return Err(FrameError::Malformed(format!("missing {what} name length")));
    }
    let n = f.get_u8() as usize;
    if f.remaining() < n {
        return Err(FrameError::Malformed(format!(
            "{what} name of {n} bytes runs past the frame end"
        )));
    }
    Ok(f.split_to(n))
}

/// Reads a `u16`-length-prefixed metadata block.
fn take_block(f: &mut Bytes) -> Result<Bytes, FrameError> {
    if f.remaining() < 2 {
        return Err(FrameError::Malformed("missing metadata length".into()));
    }
    let n = usize::from(f.get_u16());
    if f.remaining() < n {
        return Err(FrameError::Malformed(format!(
            "metadata block of {n} bytes runs past the frame end"
        )));
    }
    Ok(f.split_to(n))
}

/// Bytes a metadata block adds to a frame: none when there is no metadata
/// (kinds 1 and 2), else its `u16` length and the block.
fn block_len(metadata: Option<&Metadata>) -> usize {
    metadata.map_or(0, |m| 2 + m.encoded_len())
}

/// Writes a metadata block with its `u16` length.
fn put_block(buf: &mut BytesMut, metadata: &Metadata, len: usize) {
    // Callers checked the block against the limits (well below 64 KiB)
    // or against MAX_METADATA_BLOCK.
    buf.put_u16((len - 2) as u16);
    metadata.encode(buf);
}

/// Largest metadata block a frame can carry (its length is a `u16`).
pub const MAX_METADATA_BLOCK: usize = u16::MAX as usize;

/// Writes the 13-byte frame head.
fn put_head(buf: &mut BytesMut, body_len: usize, kind: u8, id: u64) {
    // Callers check sizes against max_frame_size (≤ 1 GiB) first, so the
    // length fits in u32.
    buf.put_u32((FIXED + body_len) as u32);
    buf.put_u8(kind);
    buf.put_u64(id);
}

// ANCHOR: encode_request
/// Appends a request frame (kind 1) to `buf`, encoding `message` straight
/// into it (no intermediate buffer). Fails, appending nothing, if the frame
/// would exceed `max_frame_size` or a name is longer than 255 bytes.
pub fn encode_request<M: prost::Message>(
    buf: &mut BytesMut,
    id: u64,
    timeout_ms: u32,
    service: &str,
    method: &str,
    message: &M,
    max_frame_size: usize,
) -> Result<(), (ErrorCode, String)> {
    encode_request_with_metadata(
        buf,
        id,
        timeout_ms,
        service,
        method,
        None,
        message,
        max_frame_size,
    )
}

/// Like [`encode_request`], as kind 6 when `metadata` is given and not
/// empty. Fails also if the metadata block is longer than 65,535 bytes.
#[allow(clippy::too_many_arguments)]
pub fn encode_request_with_metadata<M: prost::Message>(
    buf: &mut BytesMut,
    id: u64,
    timeout_ms: u32,
    service: &str,
    method: &str,
    metadata: Option<&Metadata>,
    message: &M,
    max_frame_size: usize,
) -> Result<(), (ErrorCode, String)> {
    let (s, m) = (service.as_bytes(), method.as_bytes());
    if s.len() > 255 || m.len() > 255 {
        return Err((
            ErrorCode::BadRequest,
            format!("service or method name longer than 255 bytes: {service}.{method}"),
        ));
    }
    let metadata = metadata.filter(|md| !md.is_empty());
    let md_len = block_len(metadata);
    if md_len > 2 + MAX_METADATA_BLOCK {
        return Err((
            ErrorCode::BadRequest,
            format!(
                "metadata of {service}.{method} is {} bytes, above the 65,535 a frame carries",
                md_len - 2
            ),
        ));
    }
    let payload_len = message.encoded_len();
    let body = 4 + 1 + s.len() + 1 + m.len() + md_len + payload_len;
    if FIXED + body > max_frame_size {
        return Err((
            ErrorCode::FrameTooLarge,
            format!(
                "request {service}.{method} needs a {}-byte frame, above max_frame_size {max_frame_size}",
                FIXED + body
            ),
        ));
    }
    buf.reserve(LEN_BYTES + FIXED + body);
    let k = if metadata.is_some() {
        kind::REQUEST_MD
    } else {
        kind::REQUEST
    };
    put_head(buf, body, k, id);
    buf.put_u32(timeout_ms);
    buf.put_u8(s.len() as u8);
    buf.put_slice(s);
    buf.put_u8(m.len() as u8);
    buf.put_slice(m);
    if let Some(md) = metadata {
        put_block(buf, md, md_len);
    }
    // encode_raw cannot fail: the capacity was reserved above.
    message.encode_raw(buf);
    Ok(())
}
// ANCHOR_END: encode_request

/// Appends a response frame (kind 2): `payload` is the encoded response
/// when `code` is [`ErrorCode::Ok`], otherwise UTF-8 error text.
pub fn encode_response(buf: &mut BytesMut, id: u64, code: ErrorCode, payload: &[u8]) {
    encode_response_with_metadata(buf, id, code, None, payload);
}

/// Like [`encode_response`], as kind 7 when `metadata` is given and not
/// empty (send it only to a caller that set [`FLAG_METADATA`]; the block
/// must be at most [`MAX_METADATA_BLOCK`] bytes).
pub fn encode_response_with_metadata(
    buf: &mut BytesMut,
    id: u64,
    code: ErrorCode,
    metadata: Option<&Metadata>,
    payload: &[u8],
) {
    let metadata = metadata.filter(|md| !md.is_empty());
    let md_len = block_len(metadata);
    match metadata {
        Some(md) => {
            put_head(buf, 1 + md_len + payload.len(), kind::RESPONSE_MD, id);
            buf.put_u8(code as u8);
            put_block(buf, md, md_len);
        }
        None => {
            put_head(buf, 1 + payload.len(), kind::RESPONSE, id);
            buf.put_u8(code as u8);
        }
    }
    buf.put_slice(payload);
}

/// Appends a cancel frame for call `id`.
pub fn encode_cancel(buf: &mut BytesMut, id: u64) {
    put_head(buf, 0, kind::CANCEL, id);
}

/// Appends a goaway frame.
pub fn encode_goaway(buf: &mut BytesMut) {
    put_head(buf, 0, kind::GOAWAY, 0);
}

/// Appends a connection-error frame.
pub fn encode_connection_error(buf: &mut BytesMut, code: ErrorCode, message: &str) {
    put_head(buf, 1 + message.len(), kind::CONN_ERROR, 0);
    buf.put_u8(code as u8);
    buf.put_slice(message.as_bytes());
}

// ANCHOR: encode_stream
/// Appends a stream-open frame (kind 8) for stream `id`, encoding `message`
/// straight into it. Fails, appending nothing, under the same rules as
/// [`encode_request_with_metadata`].
#[allow(clippy::too_many_arguments)]
pub fn encode_stream_open<M: prost::Message>(
    buf: &mut BytesMut,
    id: u64,
    timeout_ms: u32,
    window: u32,
    (service, method): (&str, &str),
    metadata: Option<&Metadata>,
    message: &M,
    max_frame_size: usize,
) -> Result<(), (ErrorCode, String)> {
    let (s, m) = (service.as_bytes(), method.as_bytes());
    if s.len() > 255 || m.len() > 255 {
        return Err((
            ErrorCode::BadRequest,
            format!("service or method name longer than 255 bytes: {service}.{method}"),
        ));
    }
    let md_len = metadata.map_or(0, Metadata::encoded_len);
    if md_len > MAX_METADATA_BLOCK {
        return Err((
            ErrorCode::BadRequest,
            format!(
                "metadata of {service}.{method} is {md_len} bytes, above the 65,535 a frame carries"
            ),
        ));
    }
    let payload_len = message.encoded_len();
    let body = 4 + 4 + 1 + s.len() + 1 + m.len() + 2 + md_len + payload_len;
    if FIXED + body > max_frame_size {
        return Err((
            ErrorCode::FrameTooLarge,
            format!(
                "stream open {service}.{method} needs a {}-byte frame, above max_frame_size {max_frame_size}",
                FIXED + body
            ),
        ));
    }
    buf.reserve(LEN_BYTES + FIXED + body);
    put_head(buf, body, kind::STREAM_OPEN, id);
    buf.put_u32(timeout_ms);
    buf.put_u32(window);
    buf.put_u8(s.len() as u8);
    buf.put_slice(s);
    buf.put_u8(m.len() as u8);
    buf.put_slice(m);
    buf.put_u16(md_len as u16);
    if let Some(md) = metadata {
        md.encode(buf);
    }
    message.encode_raw(buf);
    Ok(())
}

/// Appends a stream-message frame (kind 9) carrying `payload` (the caller
/// checked it against `max_frame_size` with [`message_fits`]).
pub fn encode_stream_message(buf: &mut BytesMut, id: u64, payload: &[u8]) {
    put_head(buf, payload.len(), kind::STREAM_MESSAGE, id);
    buf.put_slice(payload);
}

/// Appends a stream-end frame (kind 10): `code` and, when it is not `Ok`,
/// the error text.
pub fn encode_stream_end(buf: &mut BytesMut, id: u64, code: ErrorCode, message: &[u8]) {
    put_head(buf, 1 + message.len(), kind::STREAM_END, id);
    buf.put_u8(code as u8);
    buf.put_slice(message);
}

/// Appends a credit frame (kind 11) granting `bytes` more on stream `id`.
pub fn encode_credit(buf: &mut BytesMut, id: u64, bytes: u32) {
    put_head(buf, 4, kind::CREDIT, id);
    buf.put_u32(bytes);
}

/// Whether a stream message of `payload_len` bytes fits in a frame of at
/// most `max_frame_size`.
pub fn message_fits(payload_len: usize, max_frame_size: usize) -> bool {
    FIXED + payload_len <= max_frame_size
}
// ANCHOR_END: encode_stream

/// Checks a peer's 8-byte preamble; returns its flags byte.
pub fn check_preamble(bytes: &[u8; 8]) -> Result<u8, String> {
    if bytes[..4] != MAGIC {
        return Err(format!(
            "peer did not send the mprpc preamble (got {:02x?}); is it a legacy (course-format) provider?",
            &bytes[..4]
        ));
    }
    if bytes[4] != VERSION {
        return Err(format!(
            "peer speaks mprpc protocol version {}, this build speaks {VERSION}",
            bytes[4]
        ));
    }
    Ok(bytes[5])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The course's `fixbug.LoginRequest`, written out (this crate has no
    /// `.proto` files of its own).
    #[derive(Clone, PartialEq, prost::Message)]
    struct LoginRequest {
        #[prost(bytes = "vec", tag = "1")]
        name: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pwd: Vec<u8>,
    }

    /// `fixbug.ResultCode`.
    #[derive(Clone, PartialEq, prost::Message)]
    struct ResultCode {
        #[prost(int32, tag = "1")]
        errcode: i32,
        #[prost(bytes = "vec", tag = "2")]
        errmsg: Vec<u8>,
    }

    /// `fixbug.LoginResponse`.
    #[derive(Clone, PartialEq, prost::Message)]
    struct LoginResponse {
        #[prost(message, optional, tag = "1")]
        result: Option<ResultCode>,
        #[prost(bool, tag = "2")]
        success: bool,
    }

    #[test]
    fn magic_is_out_of_legacy_range() {
        assert!(u32::from_le_bytes(MAGIC) as usize > MAX_FRAME_SIZE_CAP);
    }

    #[test]
    fn request_round_trip_and_split_delivery() {
        let msg = LoginRequest {
            name: b"zhang san".to_vec(),
            pwd: b"123456".to_vec(),
        };
        let mut wire = BytesMut::new();
        encode_request(&mut wire, 7, 250, "UserServiceRpc", "Login", &msg, 1024).ok();
        encode_cancel(&mut wire, 7);
        // Feed one byte at a time: a frame is only produced once complete.
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for b in wire.iter() {
            buf.put_u8(*b);
            while let Ok(Some(f)) = try_decode(&mut buf, 1024) {
                frames.push(f);
            }
        }
        assert_eq!(frames.len(), 2);
        match &frames[0] {
            Frame::Request {
                id,
                timeout_ms,
                service,
                method,
                metadata,
                payload,
            } => {
                assert!(metadata.is_empty());
                assert_eq!((*id, *timeout_ms), (7, 250));
                assert_eq!(&service[..], b"UserServiceRpc");
                assert_eq!(&method[..], b"Login");
                assert_eq!(payload.len(), prost::Message::encoded_len(&msg));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(frames[1], Frame::Cancel { id: 7 });
    }

    // ANCHOR: worked_example
    /// The bytes the book walks through: `fixbug.UserServiceRpc.Login` with
    /// `{"zhang san", "123456"}` as call 1 with a 5 s deadline, and its
    /// answer `LoginResponse{result: {}}`.
    #[test]
    fn login_frame_bytes() {
        let msg = LoginRequest {
            name: b"zhang san".to_vec(),
            pwd: b"123456".to_vec(),
        };
        let mut wire = BytesMut::new();
        let ok = encode_request(
            &mut wire,
            1,
            5000,
            "fixbug.UserServiceRpc",
            "Login",
            &msg,
            1 << 20,
        );
        assert!(ok.is_ok());
        let response = LoginResponse {
            result: Some(Default::default()),
            success: false,
        };
        encode_response(
            &mut wire,
            1,
            ErrorCode::Ok,
            &prost::Message::encode_to_vec(&response),
        );
        let hex: String = wire.iter().map(|b| format!("{b:02x}")).collect();
        let expected = [
            "0000003c",                                   // length: 60 bytes follow
            "01",                                         // kind: request
            "0000000000000001",                           // call id 1
            "00001388",                                   // timeout 5000 ms
            "15",                                         // service name: 21 bytes
            "6669786275672e5573657253657276696365527063", // "fixbug.UserServiceRpc"
            "05",                                         // method name: 5 bytes
            "4c6f67696e",                                 // "Login"
            "0a097a68616e672073616e1206313233343536",     // LoginRequest, 19 bytes
            "0000000c",                                   // length: 12 bytes follow
            "02",                                         // kind: response
            "0000000000000001",                           // call id 1
            "00",                                         // code: ok
            "0a00",                                       // LoginResponse{result: {}}
        ];
        assert_eq!(hex, expected.concat());
    }
    // ANCHOR_END: worked_example

    // ANCHOR: worked_example_metadata
    /// The same call with one metadata entry, `authorization: Bearer t0k3n`,
    /// answered with `server: kv-1` (kinds 6 and 7).
    #[test]
    fn login_frame_bytes_with_metadata() {
        let msg = LoginRequest {
            name: b"zhang san".to_vec(),
            pwd: b"123456".to_vec(),
        };
        let (mut request_md, mut response_md) = (Metadata::new(), Metadata::new());
        assert!(request_md.insert("authorization", "Bearer t0k3n").is_ok());
        assert!(response_md.insert("server", "kv-1").is_ok());
        let mut wire = BytesMut::new();
        let ok = encode_request_with_metadata(
            &mut wire,
            1,
            5000,
            "fixbug.UserServiceRpc",
            "Login",
            Some(&request_md),
            &msg,
            1 << 20,
        );
        assert!(ok.is_ok());
        encode_response_with_metadata(
            &mut wire,
            1,
            ErrorCode::Ok,
            Some(&response_md),
            &[0x0a, 0x00],
        );
        let hex: String = wire.iter().map(|b| format!("{b:02x}")).collect();
        let expected = [
            "0000005a",                                   // length: 90 bytes follow
            "06",                                         // kind: request with metadata
            "0000000000000001",                           // call id 1
            "00001388",                                   // timeout 5000 ms
            "15",                                         // service name: 21 bytes
            "6669786275672e5573657253657276696365527063", // "fixbug.UserServiceRpc"
            "05",                                         // method name: 5 bytes
            "4c6f67696e",                                 // "Login"
            "001c",                                       // metadata block: 28 bytes
            "0d",                                         // key: 13 bytes
            "617574686f72697a6174696f6e",                 // "authorization"
            "000c",                                       // value: 12 bytes
            "4265617265722074306b336e",                   // "Bearer t0k3n"
            "0a097a68616e672073616e1206313233343536",     // LoginRequest, 19 bytes
            "0000001b",                                   // length: 27 bytes follow
            "07",                                         // kind: response with metadata
            "0000000000000001",                           // call id 1
            "00",                                         // code: ok
            "000d",                                       // metadata block: 13 bytes
            "06",                                         // key: 6 bytes
            "736572766572",                               // "server"
            "0004",                                       // value: 4 bytes
            "6b762d31",                                   // "kv-1"
            "0a00",                                       // LoginResponse{result: {}}
        ];
        assert_eq!(hex, expected.concat());
        let mut buf = wire;
        let limits = crate::metadata::MetadataLimits::new(16, 4096);
        match try_decode(&mut buf, 1 << 20) {
            Ok(Some(Frame::Request { metadata, .. })) => {
                assert_eq!(Metadata::decode(&metadata, limits), Ok(request_md));
            }
            other => panic!("unexpected {other:?}"),
        }
        match try_decode(&mut buf, 1 << 20) {
            Ok(Some(Frame::Response {
                metadata, payload, ..
            })) => {
                assert_eq!(Metadata::decode(&metadata, limits), Ok(response_md));
                assert_eq!(&payload[..], [0x0a, 0x00]);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // ANCHOR_END: worked_example_metadata

    /// `feed.WatchRequest` (final/examples/proto/streams.proto).
    #[derive(Clone, PartialEq, prost::Message)]
    struct WatchRequest {
        #[prost(uint64, tag = "1")]
        count: u64,
        #[prost(uint32, tag = "2")]
        size: u32,
    }

    // ANCHOR: worked_example_stream
    /// The bytes of a server stream the book walks through: stream 1 of
    /// `feed.Feed/Watch` with `{count: 2, size: 1}`, a 5 s deadline and a
    /// 256 KiB window; its two events `{seq: 0, data: "x"}` and `{seq: 1,
    /// data: "x"}`; a credit of 5 bytes; and the end, ok.
    #[test]
    fn watch_stream_bytes() {
        let mut wire = BytesMut::new();
        let request = WatchRequest { count: 2, size: 1 };
        let ok = encode_stream_open(
            &mut wire,
            1,
            5000,
            256 << 10,
            ("feed.Feed", "Watch"),
            None,
            &request,
            1 << 20,
        );
        assert!(ok.is_ok());
        encode_stream_message(&mut wire, 1, &[0x12, 0x01, 0x78]);
        encode_stream_message(&mut wire, 1, &[0x08, 0x01, 0x12, 0x01, 0x78]);
        encode_credit(&mut wire, 1, 5);
        encode_stream_end(&mut wire, 1, ErrorCode::Ok, &[]);
        let hex: String = wire.iter().map(|b| format!("{b:02x}")).collect();
        let expected = [
            "00000027",           // length: 39 bytes follow
            "08",                 // kind: stream open
            "0000000000000001",   // stream id 1
            "00001388",           // timeout 5000 ms
            "00040000",           // window 262,144 bytes
            "09",                 // service name: 9 bytes
            "666565642e46656564", // "feed.Feed"
            "05",                 // method name: 5 bytes
            "5761746368",         // "Watch"
            "0000",               // metadata block: 0 bytes
            "08021001",           // WatchRequest{count: 2, size: 1}
            "0000000c",           // length: 12 bytes follow
            "09",                 // kind: stream message
            "0000000000000001",   // stream id 1
            "120178",             // Event{seq: 0, data: "x"}
            "0000000e",           // length: 14 bytes follow
            "09",                 // kind: stream message
            "0000000000000001",   // stream id 1
            "0801120178",         // Event{seq: 1, data: "x"}
            "0000000d",           // length: 13 bytes follow
            "0b",                 // kind: credit
            "0000000000000001",   // stream id 1
            "00000005",           // 5 bytes more
            "0000000a",           // length: 10 bytes follow
            "0a",                 // kind: stream end
            "0000000000000001",   // stream id 1
            "00",                 // code: ok
        ];
        assert_eq!(hex, expected.concat());
        let mut buf = wire;
        let mut frames = Vec::new();
        while let Ok(Some(f)) = try_decode(&mut buf, 1 << 20) {
            frames.push(f);
        }
        assert_eq!(frames.len(), 5);
        assert!(
            matches!(&frames[0], Frame::StreamOpen { id: 1, timeout_ms: 5000, window: 262_144,
            service, method, metadata, payload }
            if &service[..] == b"feed.Feed" && &method[..] == b"Watch" && metadata.is_empty()
                && payload[..] == [0x08, 0x02, 0x10, 0x01])
        );
        assert_eq!(frames[3], Frame::Credit { id: 1, bytes: 5 });
        assert!(
            matches!(&frames[4], Frame::StreamEnd { id: 1, code: ErrorCode::Ok, message }
            if message.is_empty())
        );
    }
    // ANCHOR_END: worked_example_stream

    #[test]
    fn preamble_announces_metadata_and_streams() {
        assert_eq!(PREAMBLE[5], FLAG_METADATA | FLAG_STREAMS);
        assert_eq!(PREAMBLE[5], 0x03);
        assert_eq!(check_preamble(&PREAMBLE), Ok(0x03));
    }

    #[test]
    fn oversized_length_is_rejected_before_allocation() {
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff, 1][..]);
        let cap = buf.capacity();
        let err = try_decode(&mut buf, 1 << 20).err();
        assert!(matches!(err, Some(FrameError::TooLarge { .. })));
        assert_eq!(buf.capacity(), cap);
    }
}
