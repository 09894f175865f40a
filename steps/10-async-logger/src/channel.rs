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
//! Every failure is reported through the caller's controller (or written
//! to the log if it passed none), and leaves the response at its default
//! value.
//! Connecting and waiting for the response both have a timeout, so a call
//! always ends.

use crate::config::MprpcConfig;
use crate::rpc::{MethodDescriptor, RpcChannel, RpcController};
use crate::wire::{self, EncodeError};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The largest response a channel accepts unless told otherwise: the same
/// as the provider's largest request arguments.
pub const DEFAULT_MAX_RESPONSE_SIZE: usize = 4 * 1024 * 1024;

// ANCHOR: timeouts
/// How long connecting may take unless told otherwise. On a local network
/// a connection takes well under a millisecond; when it takes seconds, the
/// host is down or a firewall drops the packets, and waiting longer rarely
/// helps. The operating system alone would wait about two minutes.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long sending the request and receiving the whole response may take,
/// unless told otherwise: the provider's own I/O timeout.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);
// ANCHOR_END: timeouts

// ANCHOR: channel
/// The caller's transport: one TCP connection per call, to one provider.
#[derive(Debug, Clone)]
pub struct MprpcChannel {
    /// The provider's address: the config's `rpcserverip:rpcserverport`.
    addr: SocketAddr,
    /// Responses longer than this are refused, not read to the end.
    max_response_size: usize,
    /// Limit on connecting.
    connect_timeout: Duration,
    /// Limit on sending the request and receiving the whole response.
    read_timeout: Duration,
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
    /// A step of the call took longer than its timeout.
    Timeout {
        /// What we were waiting for.
        waiting_for: &'static str,
        /// The timeout.
        limit: Duration,
    },
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
            ChannelError::Timeout { waiting_for, limit } => {
                write!(f, "no {waiting_for} within {limit:?}")
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
            ChannelError::NoResponse
            | ChannelError::ResponseTooLarge { .. }
            | ChannelError::Timeout { .. } => None,
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
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
        }
    }

    /// Sets the limit on connecting (default [`DEFAULT_CONNECT_TIMEOUT`]).
    /// Zero is taken as one millisecond: the standard library refuses a
    /// zero timeout.
    pub fn set_connect_timeout(&mut self, timeout: Duration) {
        self.connect_timeout = timeout.max(Duration::from_millis(1));
    }

    /// Sets the limit on sending the request and receiving the whole
    /// response (default [`DEFAULT_READ_TIMEOUT`]). Zero is taken as one
    /// millisecond.
    pub fn set_read_timeout(&mut self, timeout: Duration) {
        self.read_timeout = timeout.max(Duration::from_millis(1));
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
        let mut stream =
            TcpStream::connect_timeout(&self.addr, self.connect_timeout).map_err(|source| {
                if source.kind() == ErrorKind::TimedOut {
                    ChannelError::Timeout {
                        waiting_for: "connection",
                        limit: self.connect_timeout,
                    }
                } else {
                    ChannelError::Connect {
                        addr: self.addr,
                        source,
                    }
                }
            })?;
        // One deadline for the whole exchange: a provider that sends a byte
        // now and then must not keep the caller forever. (`checked_add`: a
        // timeout of Duration::MAX means "no deadline", not a panic.)
        let deadline = Instant::now().checked_add(self.read_timeout);
        let timeout = ChannelError::Timeout {
            waiting_for: "response",
            limit: self.read_timeout,
        };
        stream
            .set_write_timeout(Some(self.read_timeout))
            .map_err(ChannelError::Send)?;
        stream
            .write_all(&frame)
            .map_err(|error| match error.kind() {
                ErrorKind::WouldBlock | ErrorKind::TimedOut => ChannelError::Timeout {
                    waiting_for: "room to send the request",
                    limit: self.read_timeout,
                },
                _ => ChannelError::Send(error),
            })?;
        // ANCHOR_END: call_bytes
        // ANCHOR: call_bytes_read
        // The response has no length: it ends when the provider closes.
        // Read to the end, but never more than the limit, and never past
        // the deadline. The course read once into 1024 bytes, with no
        // timeout.
        let mut response = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let left = deadline.map_or(self.read_timeout, |deadline| {
                deadline.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                return Err(timeout);
            }
            stream
                .set_read_timeout(Some(left))
                .map_err(ChannelError::Receive)?;
            let n = match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                // Linux reports a read timeout as WouldBlock, others as
                // TimedOut.
                Err(error)
                    if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    return Err(timeout);
                }
                Err(error) => return Err(ChannelError::Receive(error)),
            };
            if response.len() + n > self.max_response_size {
                return Err(ChannelError::ResponseTooLarge {
                    limit: self.max_response_size,
                });
            }
            response.extend_from_slice(&buf[..n]);
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
        // A controller describes the last call made with it: clear what an
        // earlier call may have left, so a reused controller never reports
        // an old failure.
        let mut controller = controller;
        if let Some(controller) = controller.as_deref_mut() {
            controller.reset();
        }
        let result = self
            .call_bytes(method, &request.encode_to_vec())
            .and_then(|bytes| Resp::decode(bytes.as_slice()).map_err(ChannelError::Decode));
        match result {
            Ok(decoded) => *response = decoded,
            Err(error) => {
                // Never leave a half-filled or stale response behind.
                *response = Resp::default();
                let text = format!("{}.{}: {error}", method.service_name, method.name);
                match controller {
                    Some(controller) => controller.set_failed(text),
                    // Nobody asked: at least the log says it.
                    None => crate::log_error!("rpc {text}"),
                }
            }
        }
    }
}
// ANCHOR_END: call_method
