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

use bytes::{Buf, BytesMut};
use prost::Message;

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
