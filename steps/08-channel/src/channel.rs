//! `MprpcChannel`: the caller's side of the course's protocol.
//!
//! Every stub method ends in [`RpcChannel::call_method`]; this channel
//! sends the call to a provider and waits for the answer, as the course's
//! `MprpcChannel::CallMethod` does:
//!
//! 1. encode the request message and put the frame around it
//!    ([`wire::encode_request`]);
//! 2. connect to the provider at the config's `rpcserverip:rpcserverport`;
//! 3. send the frame;
//! 4. read the response until the provider closes the connection;
//! 5. decode it into the caller's response message.
//!
//! It blocks the calling thread, as the course's does, with the standard
//! library's `TcpStream`: a caller that makes one call at a time needs no
//! runtime. A real client would be asynchronous and keep connections open
//! (`final/` does both).
//!
//! Until step 09 gives the caller a controller, a failure is printed to
//! stderr and the response is left at its default value.

use crate::config::MprpcConfig;
use crate::rpc::{MethodDescriptor, RpcChannel, RpcController};
use crate::wire::{self, EncodeError};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};

/// The largest response a channel accepts unless told otherwise: the same
/// as the provider's largest request arguments.
pub const DEFAULT_MAX_RESPONSE_SIZE: usize = 4 * 1024 * 1024;

// ANCHOR: channel
/// The caller's transport: one TCP connection per call, to one provider.
#[derive(Debug, Clone)]
pub struct MprpcChannel {
    /// The provider's address: the config's `rpcserverip:rpcserverport`.
    addr: SocketAddr,
    /// Responses longer than this are refused, not read to the end.
    max_response_size: usize,
}
// ANCHOR_END: channel

// ANCHOR: channel_error
/// Why a call failed.
#[derive(Debug)]
pub enum ChannelError {
    /// The request could not be framed.
    Encode(EncodeError),
    /// No connection to the provider.
    Connect {
        /// Where we tried to connect.
        addr: SocketAddr,
        /// What the operating system said (refused, unreachable, ...).
        source: io::Error,
    },
    /// Sending the request failed.
    Send(io::Error),
    /// Reading the response failed.
    Receive(io::Error),
    /// The provider closed the connection without sending a byte.
    NoResponse,
    /// The response is longer than the channel accepts.
    ResponseTooLarge {
        /// The channel's limit.
        limit: usize,
    },
    /// The response bytes are not the method's response message.
    Decode(prost::DecodeError),
}
// ANCHOR_END: channel_error

impl std::fmt::Display for ChannelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChannelError::Encode(error) => error.fmt(f),
            ChannelError::Connect { addr, source } => {
                write!(f, "cannot connect to the provider at {addr}: {source}")
            }
            ChannelError::Send(error) => write!(f, "sending the request failed: {error}"),
            ChannelError::Receive(error) => write!(f, "reading the response failed: {error}"),
            // In the course's format an error has no bytes of its own: the
            // provider just closes. Say what that usually means.
            ChannelError::NoResponse => write!(
                f,
                "the provider closed the connection without a response: it most likely \
                 does not publish this service or method, or could not decode the request \
                 (its log says which)"
            ),
            ChannelError::ResponseTooLarge { limit } => {
                write!(f, "the response is larger than the limit of {limit} bytes")
            }
            ChannelError::Decode(error) => {
                write!(f, "the response is not the expected message: {error}")
            }
        }
    }
}

impl std::error::Error for ChannelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ChannelError::Encode(error) => Some(error),
            ChannelError::Connect { source, .. } => Some(source),
            ChannelError::Send(error) | ChannelError::Receive(error) => Some(error),
            ChannelError::Decode(error) => Some(error),
            ChannelError::NoResponse | ChannelError::ResponseTooLarge { .. } => None,
        }
    }
}

impl MprpcChannel {
    /// A channel to the provider at the config's
    /// `rpcserverip:rpcserverport`.
    pub fn new(config: &MprpcConfig) -> Self {
        Self {
            addr: config.rpc_server_addr(),
            max_response_size: DEFAULT_MAX_RESPONSE_SIZE,
        }
    }

    /// Sets the largest response accepted (default
    /// [`DEFAULT_MAX_RESPONSE_SIZE`]).
    pub fn set_max_response_size(&mut self, limit: usize) {
        self.max_response_size = limit;
    }

    // ANCHOR: call_bytes
    /// One call at the level of bytes: sends `args` (an encoded request
    /// message) to `method`, returns the encoded response.
    pub fn call_bytes(
        &self,
        method: &MethodDescriptor,
        args: &[u8],
    ) -> Result<Vec<u8>, ChannelError> {
        let frame = wire::encode_request(method.service_name, method.name, args)
            .map_err(ChannelError::Encode)?;
        let mut stream = TcpStream::connect(self.addr).map_err(|source| ChannelError::Connect {
            addr: self.addr,
            source,
        })?;
        stream.write_all(&frame).map_err(ChannelError::Send)?;
        // ANCHOR_END: call_bytes
        // ANCHOR: call_bytes_read
        // The response has no length: it ends when the provider closes.
        // Read to the end, but never more than the limit (plus one byte, to
        // tell "exactly the limit" from "over it"). The course read once
        // into 1024 bytes and cut anything longer.
        let mut response = Vec::new();
        let limit = u64::try_from(self.max_response_size).unwrap_or(u64::MAX);
        (&mut stream)
            .take(limit.saturating_add(1))
            .read_to_end(&mut response)
            .map_err(ChannelError::Receive)?;
        if response.len() > self.max_response_size {
            return Err(ChannelError::ResponseTooLarge {
                limit: self.max_response_size,
            });
        }
        // An empty response is what the provider sends when it rejects a
        // call. It would also decode as a response with every field at its
        // default, and look like a valid answer: the course took it for
        // one. See the book for the one case this misjudges.
        if response.is_empty() {
            return Err(ChannelError::NoResponse);
        }
        Ok(response)
    }
    // ANCHOR_END: call_bytes_read
}

// ANCHOR: call_method
impl RpcChannel for MprpcChannel {
    fn call_method<Req, Resp>(
        &self,
        method: &'static MethodDescriptor,
        controller: Option<&mut dyn RpcController>,
        request: &Req,
        response: &mut Resp,
    ) where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        // Step 09 reports failures through the controller.
        let _ = controller;
        let result = self
            .call_bytes(method, &request.encode_to_vec())
            .and_then(|bytes| Resp::decode(bytes.as_slice()).map_err(ChannelError::Decode));
        match result {
            Ok(decoded) => *response = decoded,
            Err(error) => {
                // Never leave a half-filled or stale response behind.
                *response = Resp::default();
                eprintln!(
                    "rpc {}.{} failed: {error}",
                    method.service_name, method.name
                );
            }
        }
    }
}
// ANCHOR_END: call_method
