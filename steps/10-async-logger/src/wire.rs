//! The course's request frame: written by the caller, read safely by the
//! provider.
//!
//! ```text
//! [u32 header_size, little-endian][RpcHeader: header_size bytes][args: header.args_size bytes]
//! ```
//!
//! There is no overall length: a reader learns the frame's size in two
//! stages (4 bytes give `header_size`, the header gives `args_size`). The
//! course's `OnMessage` assumed the whole frame arrived in one read, never
//! checked that 4 bytes were there, and trusted both sizes. Here:
//!
//! - each part is read until it is complete, however TCP splits it;
//! - the peer closing early is an error that says how far it got;
//! - both sizes are checked against [`FrameLimits`] *before* anything is
//!   read or allocated for them, and even then memory grows with the bytes
//!   that actually arrive, not with the size the peer announced;
//! - only the frame's own bytes are consumed: what follows stays unread, so
//!   the caller can see it and decide (the provider logs and drops it).
//!
//! The response needs no framing code: it is the encoded response message,
//! and the provider closes the connection after it. [`encode_request`] is
//! the writing side, used by the caller's channel.

use crate::mprpc::RpcHeader;
use prost::Message;
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt};

// ANCHOR: limits
/// The largest sizes a peer may announce. A real RPC system has the same
/// knobs (gRPC's default maximum message is 4 MiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Largest accepted `header_size`. A header holds two names and a
    /// number, a few dozen bytes; anything near the limit is not a header.
    pub max_header_size: u32,
    /// Largest accepted `args_size`: the biggest request message served.
    pub max_args_size: u32,
}

impl Default for FrameLimits {
    /// 64 KiB of header, 4 MiB of arguments.
    fn default() -> Self {
        Self {
            max_header_size: 64 * 1024,
            max_args_size: 4 * 1024 * 1024,
        }
    }
}
// ANCHOR_END: limits

// ANCHOR: encode_request
/// Builds a request frame, as the course's `MprpcChannel::CallMethod` does:
/// `service_name` is the short name (`UserServiceRpc`), `args` the encoded
/// request message.
pub fn encode_request(
    service_name: &str,
    method_name: &str,
    args: &[u8],
) -> Result<Vec<u8>, EncodeError> {
    // The format's sizes are u32: 4 GiB of arguments is the most it can
    // describe. Say so rather than truncate the size with `as u32`.
    let args_size = u32::try_from(args.len()).map_err(|_| EncodeError {
        args_size: args.len(),
    })?;
    let header = RpcHeader {
        service_name: service_name.as_bytes().to_vec(),
        method_name: method_name.as_bytes().to_vec(),
        args_size,
    }
    .encode_to_vec();
    // A header of two names and a number is far below 4 GiB; the check is
    // only there so that no `as` cast can ever truncate silently.
    let header_size = u32::try_from(header.len()).map_err(|_| EncodeError {
        args_size: args.len(),
    })?;
    let mut frame = Vec::with_capacity(4 + header.len() + args.len());
    frame.extend_from_slice(&header_size.to_le_bytes());
    frame.extend_from_slice(&header);
    frame.extend_from_slice(args);
    Ok(frame)
}
// ANCHOR_END: encode_request

/// A request too large for the format's 32-bit sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeError {
    /// The size of the arguments that did not fit.
    pub args_size: usize,
}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} bytes of arguments do not fit the frame's 32-bit args_size",
            self.args_size
        )
    }
}

impl std::error::Error for EncodeError {}

/// One request, as read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The decoded header: service name, method name, size of `args`.
    pub header: RpcHeader,
    /// The encoded request message, exactly `header.args_size` bytes.
    pub args: Vec<u8>,
}

// ANCHOR: frame_error
/// Why a request frame could not be read. Every variant means the same
/// thing to the provider: log it and close the connection.
#[derive(Debug)]
pub enum FrameError {
    /// The peer closed the connection before a part was complete.
    Truncated {
        /// Which part: `header_size`, `header` or `args`.
        part: &'static str,
        /// How many bytes the part needed.
        expected: usize,
        /// How many arrived before the end.
        received: usize,
    },
    /// `header_size` or `args_size` is beyond its [`FrameLimits`].
    TooLarge {
        /// `"header_size"` or `"args_size"`.
        field: &'static str,
        /// What the peer announced.
        size: u32,
        /// The limit.
        limit: u32,
    },
    /// The header bytes are not an `RpcHeader`.
    BadHeader(prost::DecodeError),
    /// Reading failed (connection reset, ...).
    Io(io::Error),
}
// ANCHOR_END: frame_error

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Truncated {
                part,
                expected,
                received,
            } => write!(
                f,
                "the peer closed the connection after {received} of the {expected} bytes of {part}"
            ),
            FrameError::TooLarge { field, size, limit } => {
                write!(f, "{field} {size} is over the limit of {limit} bytes")
            }
            FrameError::BadHeader(error) => write!(f, "the header is not an RpcHeader: {error}"),
            FrameError::Io(error) => write!(f, "reading the request failed: {error}"),
        }
    }
}

impl std::error::Error for FrameError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FrameError::BadHeader(error) => Some(error),
            FrameError::Io(error) => Some(error),
            _ => None,
        }
    }
}

// ANCHOR: read_request
/// Reads one request frame from `reader`, enforcing `limits`.
///
/// Reads exactly the frame's bytes and no more. Has no timeout of its own:
/// the caller wraps it in one, so that the whole frame has a deadline, not
/// each read (a peer sending one byte just before every per-read deadline
/// could otherwise hold the connection forever).
pub async fn read_request<R>(reader: &mut R, limits: FrameLimits) -> Result<Request, FrameError>
where
    R: AsyncRead + Unpin,
{
    let size: [u8; 4] = read_part(reader, 4, "header_size")
        .await?
        .try_into()
        // read_part returns exactly 4 bytes or an error; this cannot fail.
        .map_err(|bytes: Vec<u8>| FrameError::Truncated {
            part: "header_size",
            expected: 4,
            received: bytes.len(),
        })?;
    // The course copied 4 raw bytes into a uint32_t: the host's byte order,
    // little-endian on x86-64. We say so explicitly, so any host agrees.
    let header_size = u32::from_le_bytes(size);
    if header_size > limits.max_header_size {
        return Err(FrameError::TooLarge {
            field: "header_size",
            size: header_size,
            limit: limits.max_header_size,
        });
    }
    let header = read_part(reader, header_size, "header").await?;
    let header = RpcHeader::decode(header.as_slice()).map_err(FrameError::BadHeader)?;
    if header.args_size > limits.max_args_size {
        return Err(FrameError::TooLarge {
            field: "args_size",
            size: header.args_size,
            limit: limits.max_args_size,
        });
    }
    let args = read_part(reader, header.args_size, "args").await?;
    Ok(Request { header, args })
}
// ANCHOR_END: read_request
// ANCHOR: read_part
/// Reads exactly `len` bytes, however many reads that takes.
///
/// `len` has passed its limit check. Still, the buffer grows only as bytes
/// arrive (`take` + `read_to_end`): a peer that announces 4 MiB and sends
/// 10 bytes costs about 10 bytes, not 4 MiB.
async fn read_part<R>(reader: &mut R, len: u32, part: &'static str) -> Result<Vec<u8>, FrameError>
where
    R: AsyncRead + Unpin,
{
    let expected = len as usize;
    let mut buf = Vec::with_capacity(expected.min(8 * 1024));
    reader
        .take(u64::from(len))
        .read_to_end(&mut buf)
        .await
        .map_err(FrameError::Io)?;
    if buf.len() < expected {
        return Err(FrameError::Truncated {
            part,
            expected,
            received: buf.len(),
        });
    }
    Ok(buf)
}
// ANCHOR_END: read_part
