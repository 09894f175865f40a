//! `MprpcChannel`: the caller's side of the course's protocol.
//!
//! Every stub method ends in [`RpcChannel::call_method`]; this channel
//! sends the call to a provider and waits for the answer, as the course's
//! `MprpcChannel::CallMethod` does:
//!
//! 1. encode the request message and put the frame around it
//!    ([`wire::encode_request`]);
//! 2. find the provider, on every call as in the course (`final/` caches):
//!    read its `ip:port` from the znode `/ServiceName/MethodName` in ZooKeeper;
//! 3. connect to it;
//! 4. send the frame;
//! 5. read the response until the provider closes the connection;
//! 6. decode it into the caller's response message.
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
use crate::zk_client::{ZkClient, ZkError};
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

/// How long a lookup waits for ZooKeeper to confirm that its session is
/// closed (it only read: if late, ZooKeeper expires it by itself).
const LOOKUP_CLOSE_WAIT: Duration = Duration::from_millis(500);
// ANCHOR_END: timeouts

// ANCHOR: channel
/// The caller's transport: one TCP connection per call, to the provider
/// ZooKeeper names for the method.
#[derive(Debug, Clone)]
pub struct MprpcChannel {
    /// Where the provider of a call is found.
    target: Target,
    /// Responses longer than this are refused, not read to the end.
    max_response_size: usize,
    /// Limit on connecting.
    connect_timeout: Duration,
    /// Limit on sending the request and receiving the whole response.
    read_timeout: Duration,
}

/// Where a channel finds the provider of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Look the method's znode up in the ZooKeeper at this connect string,
    /// on every call ([`MprpcChannel::new`]).
    ZooKeeper {
        /// `zookeeperip:zookeeperport`.
        addr: String,
        /// The session timeout each lookup's session asks for.
        session_timeout: Duration,
    },
    /// Always call the provider at this address, with no lookup
    /// ([`MprpcChannel::direct`]), as steps 08 to 11 did.
    Direct(SocketAddr),
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
    /// Nobody provides the method: its znode does not exist.
    NoProvider {
        /// The service called, e.g. `UserServiceRpc`.
        service: &'static str,
        /// The method called, e.g. `Login`.
        method: &'static str,
    },
    /// Asking ZooKeeper failed: it is down, slow, or refused the request.
    Lookup(ZkError),
    /// Called from async code: the lookup cannot start a runtime in one.
    InsideRuntime,
    /// The lookup's small runtime could not be built (no fds or threads).
    Runtime(io::Error),
    /// The method's znode does not hold an `ip:port`.
    BadProviderAddress {
        /// The znode, e.g. `/UserServiceRpc/Login`.
        path: String,
        /// What it holds, as text (at most [`SHOWN`] characters).
        data: String,
    },
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
            ChannelError::NoProvider { service, method } => write!(
                f,
                "no provider for {service}/{method}: the znode /{service}/{method} does not \
                 exist (no provider of it is running, or its ZooKeeper session has ended)"
            ),
            ChannelError::Lookup(error) => {
                write!(f, "cannot look the provider up in ZooKeeper: {error}")
            }
            ChannelError::InsideRuntime => write!(
                f,
                "MprpcChannel blocks its thread and cannot be called from async code; \
                 call it in tokio::task::spawn_blocking"
            ),
            ChannelError::Runtime(error) => write!(f, "cannot start a lookup runtime: {error}"),
            ChannelError::BadProviderAddress { path, data } => write!(
                f,
                "the znode {path} holds {data:?}, not a provider address ip:port"
            ),
        }
    }
}

impl std::error::Error for ChannelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ChannelError::Encode(error) => Some(error),
            ChannelError::Connect { source, .. } => Some(source),
            ChannelError::Send(error) | ChannelError::Receive(error) => Some(error),
            ChannelError::Runtime(error) => Some(error),
            ChannelError::Decode(error) => Some(error),
            ChannelError::Lookup(error) => Some(error),
            ChannelError::NoResponse
            | ChannelError::ResponseTooLarge { .. }
            | ChannelError::Timeout { .. } => None,
            ChannelError::NoProvider { .. }
            | ChannelError::InsideRuntime
            | ChannelError::BadProviderAddress { .. } => None,
        }
    }
}

/// How many characters of a znode's data (up to 1 MB) an error shows.
pub const SHOWN: usize = 64;

impl MprpcChannel {
    /// A channel that finds each call's provider in the ZooKeeper at the
    /// config's `zookeeperip:zookeeperport` (`rpcserverip` is the provider's).
    pub fn new(config: &MprpcConfig) -> Self {
        Self::with_target(Target::ZooKeeper {
            addr: config.zookeeper_addr(),
            session_timeout: config.zk_session_timeout(),
        })
    }

    /// A channel that calls the provider at `addr`, without ZooKeeper.
    pub fn direct(addr: SocketAddr) -> Self {
        Self::with_target(Target::Direct(addr))
    }

    /// A channel to `target` with the default limits.
    fn with_target(target: Target) -> Self {
        Self {
            target,
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
        let addr = match &self.target {
            Target::ZooKeeper {
                addr,
                session_timeout,
            } => self.lookup(addr, *session_timeout, method)?,
            Target::Direct(addr) => *addr,
        };
        let mut stream =
            TcpStream::connect_timeout(&addr, self.connect_timeout).map_err(|source| {
                if source.kind() == ErrorKind::TimedOut {
                    ChannelError::Timeout {
                        waiting_for: "connection",
                        limit: self.connect_timeout,
                    }
                } else {
                    ChannelError::Connect { addr, source }
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

    // ANCHOR: lookup
    /// Reads the address of `method`'s provider from the znode
    /// `/ServiceName/MethodName`, with a ZooKeeper session opened for this
    /// one lookup (the course's `MprpcChannel::CallMethod` does the same).
    ///
    /// Opening the session may take the connect timeout, reading the znode
    /// the read timeout (the course's client waited forever).
    fn lookup(
        &self,
        zookeeper: &str,
        session_timeout: Duration,
        method: &MethodDescriptor,
    ) -> Result<SocketAddr, ChannelError> {
        let path = format!("/{}/{}", method.service_name, method.name);
        // ZkClient is async and this channel is not: a small runtime of its
        // own, which would panic inside another runtime, so say what to do.
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(ChannelError::InsideRuntime);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ChannelError::Runtime)?;
        let data = runtime
            .block_on(self.read_znode(zookeeper, session_timeout, &path))
            .map_err(|error| match error {
                ZkError::NoNode { .. } => ChannelError::NoProvider {
                    service: method.service_name,
                    method: method.name,
                },
                error => ChannelError::Lookup(error),
            })?;
        // The course's provider writes "ip:port" with no trailing NUL; take
        // exactly that and nothing else.
        std::str::from_utf8(&data)
            .ok()
            .and_then(|text| text.parse::<SocketAddr>().ok())
            .ok_or_else(|| ChannelError::BadProviderAddress {
                path,
                data: String::from_utf8_lossy(&data).chars().take(SHOWN).collect(),
            })
    }
    // ANCHOR_END: lookup

    // ANCHOR: read_znode
    /// Opens a session, reads the data of `path`, closes the session.
    async fn read_znode(
        &self,
        zookeeper: &str,
        session_timeout: Duration,
        path: &str,
    ) -> Result<Vec<u8>, ZkError> {
        let (addr, waited) = (zookeeper.to_string(), self.connect_timeout);
        let starting = ZkClient::start(zookeeper, session_timeout);
        let zk = tokio::time::timeout(waited, starting)
            .await
            .map_err(|_elapsed| ZkError::ConnectTimeout { addr, waited })??;
        let data = tokio::time::timeout(self.read_timeout, zk.get_data(path))
            .await
            .unwrap_or_else(|_elapsed| {
                Err(ZkError::Timeout {
                    addr: zookeeper.to_string(),
                    op: "get_data",
                    path: path.to_string(),
                    waited: self.read_timeout,
                })
            });
        // Closed, not left to expire, as the course's destructor does; a late
        // confirmation is no reason to fail a call that has its answer.
        let _ = tokio::time::timeout(LOOKUP_CLOSE_WAIT, zk.close()).await;
        data
    }
    // ANCHOR_END: read_znode
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
