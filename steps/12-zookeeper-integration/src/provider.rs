//! `RpcProvider`: the server side of the framework, complete.
//!
//! In the course, `RpcProvider::Run` builds a muduo `TcpServer` on
//! `rpcserverip:rpcserverport`, sets its thread count to 4, registers two
//! callbacks and starts the event loop:
//!
//! - `OnConnection`: a connection came up or went down;
//! - `OnMessage`: bytes arrived on a connection.
//!
//! Step 05 built the same thing on tokio, step 06 the table of published
//! services (`NotifyService`). Step 07 made `on_message` the dispatcher:
//! read one request frame ([`crate::wire`]), find the service and method in
//! the table, run it, write the encoded response, close. One call per
//! connection, as in the course; unlike the course, a bad or slow request
//! ends in a logged error and a closed connection, never a hang.
//!
//! Step 12 registers every published method in ZooKeeper before serving,
//! as the course's `Run` does ([`RpcProvider::run`], `start_registered`).
//!
//! ## tokio's runtime versus muduo's one loop per thread
//!
//! muduo runs one event loop (one `epoll`) per thread: a main reactor
//! accepts, and hands every connection to one sub reactor for its whole
//! life. tokio's multi-thread runtime has a single I/O driver (one `epoll`)
//! shared by N worker threads, and runs *tasks*, not callbacks: every
//! connection here is one task, written as straight-line code with `.await`
//! where muduo would return to the loop. A task is not tied to a thread; an
//! idle worker steals queued tasks from a busy one, so one heavy connection
//! cannot starve the others that happen to share its thread, as it can in
//! muduo. The price: what a task holds must be `Send`, and shared state goes
//! behind `Arc`. The accept loop is an ordinary task too, not a dedicated
//! thread. `book/src/concepts/io-models.md` compares the two in detail.

use crate::config::MprpcConfig;
use crate::logger::Logger;
use crate::rpc::{CallError, MethodDescriptor, Service};
use crate::wire::{self, FrameError, FrameLimits};
use crate::zk_client::CreateMode::{Ephemeral, Persistent};
use crate::zk_client::{ZkClient, ZkError};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::timeout;

// ANCHOR: log
/// How serious a log line is: the logger's, kept all the way to the file.
pub use crate::logger::Level;

/// Where the provider's log lines go.
///
/// A function rather than `println!` in the code, so that a test or a demo
/// can collect the lines and see what the provider saw. Step 10 replaces
/// the default with the course's asynchronous logger; a real system would
/// use a logging facade such as `log` or `tracing`.
pub type LogSink = Arc<dyn Fn(Level, &str) + Send + Sync>;

/// The default sink: the process-wide asynchronous logger ([`Logger::global`]);
/// the connection task only queues the line, it never waits for the disk.
pub fn log_to_file(level: Level, line: &str) {
    Logger::global().log(level, line);
}
// ANCHOR_END: log

/// The course's thread count: `server.setThreadNum(4)`.
pub const DEFAULT_THREAD_NUM: usize = 4;

/// How long the accept loop pauses after `accept` fails.
///
/// The usual cause is running out of file descriptors (`EMFILE`): retrying
/// at once would fail again at once and spin a core. muduo keeps a spare
/// descriptor it can close to accept-and-drop the connection instead; a real
/// server also raises `ulimit -n` and caps its number of connections.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How many bytes of a message `on_message` shows in hex; the rest is
/// elided so a large message cannot flood the log.
const HEX_SHOWN: usize = 32;

/// How long a client has to send its whole request, and separately to
/// take its whole reply, unless [`RpcProvider::set_io_timeout`] says
/// otherwise. The course has no timeout: a client that connects and sends
/// nothing holds its connection forever.
pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(10);

/// After replying, how long to wait for the client to close, and how much
/// of what it still sends to read and drop meanwhile (see `close`).
const LINGER_TIMEOUT: Duration = Duration::from_secs(1);
/// See [`LINGER_TIMEOUT`].
const LINGER_MAX_BYTES: usize = 64 * 1024;

/// How long a stopping provider waits for ZooKeeper to confirm the end of
/// its session (with ZooKeeper down it never comes; the session expires).
const ZK_CLOSE_WAIT: Duration = Duration::from_secs(2);

// ANCHOR: provider
/// The RPC server: publishes services and serves calls to them.
pub struct RpcProvider {
    /// Where [`run`](Self::run) listens: the config's
    /// `rpcserverip:rpcserverport`.
    addr: SocketAddr,
    /// Worker threads of the runtime `run` and `start` build (muduo's
    /// `setThreadNum`).
    thread_num: usize,
    /// Where log lines go; [`log_to_file`] unless a sink is set.
    log: LogSink,
    /// The published services by short name, e.g. `UserServiceRpc`: the
    /// course's `m_serviceMap`. Filled before serving, then only read.
    services: HashMap<&'static str, ServiceInfo>,
    /// The largest header and arguments a request may announce.
    limits: FrameLimits,
    /// Deadline for reading a whole request, and for writing a reply.
    io_timeout: Duration,
    /// The ZooKeeper to register with: `zookeeperip:zookeeperport`.
    zookeeper: String,
    /// The session timeout: after this long without a word (a crash, a
    /// network cut), ZooKeeper deletes the provider's ephemeral znodes.
    zk_session_timeout: Duration,
}
// ANCHOR_END: provider

impl std::fmt::Debug for RpcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcProvider")
            .field("addr", &self.addr)
            .field("thread_num", &self.thread_num)
            .field("services", &self.services)
            .field("zookeeper", &self.zookeeper)
            .finish_non_exhaustive()
    }
}

// ANCHOR: service_info
/// One published service: the object, and its methods by name.
pub struct ServiceInfo {
    /// The service. Shared (`Arc`) because every connection task may call
    /// it at the same time; `Service` requires `Send + Sync` for that.
    pub service: Arc<dyn Service>,
    /// The service's methods by name, e.g. `Login`, as the wire format
    /// names them.
    pub methods: HashMap<&'static str, &'static MethodDescriptor>,
}
// ANCHOR_END: service_info

impl std::fmt::Debug for ServiceInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceInfo")
            .field("service", &self.service.descriptor().full_name)
            .field("methods", &self.methods.keys())
            .finish()
    }
}

/// Why [`RpcProvider::notify_service`] refused a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyError {
    /// A service with this short name is already published. Calls name the
    /// service only by that name, so two of them could not be told apart.
    Duplicate(&'static str),
}

impl std::fmt::Display for NotifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotifyError::Duplicate(name) => write!(f, "service {name} is already published"),
        }
    }
}

impl std::error::Error for NotifyError {}

// ANCHOR: setup
impl RpcProvider {
    /// A provider that will listen where `config` says, with
    /// [`DEFAULT_THREAD_NUM`] worker threads, logging with [`log_to_file`].
    pub fn new(config: &MprpcConfig) -> Self {
        Self {
            addr: config.rpc_server_addr(),
            thread_num: DEFAULT_THREAD_NUM,
            log: Arc::new(log_to_file),
            services: HashMap::new(),
            limits: FrameLimits::default(),
            io_timeout: DEFAULT_IO_TIMEOUT,
            zookeeper: config.zookeeper_addr(),
            zk_session_timeout: config.zk_session_timeout(),
        }
    }

    /// Sets the number of worker threads. Zero is taken as one: tokio
    /// refuses a runtime without workers.
    pub fn set_thread_num(&mut self, thread_num: usize) {
        self.thread_num = thread_num.max(1);
    }

    /// Sends the provider's log lines to `sink` instead of the log file.
    pub fn set_log_sink(&mut self, sink: LogSink) {
        self.log = sink;
    }

    /// Sets the largest header and arguments a request may announce
    /// (default: [`FrameLimits::default`]).
    pub fn set_frame_limits(&mut self, limits: FrameLimits) {
        self.limits = limits;
    }

    /// Sets how long a client has to send its request, and to take its
    /// reply (default: [`DEFAULT_IO_TIMEOUT`]).
    pub fn set_io_timeout(&mut self, io_timeout: Duration) {
        self.io_timeout = io_timeout;
    }

    /// The address [`run`](Self::run) listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Builds the runtime: `thread_num` workers sharing one I/O driver.
    fn runtime(&self) -> io::Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.thread_num)
            .thread_name("rpc-provider")
            .enable_all()
            .build()
    }
}
// ANCHOR_END: setup

// ANCHOR: notify
impl RpcProvider {
    /// Publishes `service`: records it and each of its methods under the
    /// names a call will use (the course's `NotifyService`).
    ///
    /// A second service with the same short name is refused. The course
    /// inserts into an `unordered_map`, which silently keeps the first one,
    /// so the second service is never called and nobody is told.
    pub fn notify_service(&mut self, service: impl Service) -> Result<(), NotifyError> {
        let descriptor = service.descriptor();
        if self.services.contains_key(descriptor.name) {
            return Err(NotifyError::Duplicate(descriptor.name));
        }
        let methods: HashMap<_, _> = descriptor
            .methods
            .iter()
            .map(|method| (method.name, method))
            .collect();
        let names: Vec<_> = descriptor.methods.iter().map(|m| m.name).collect();
        self.log(
            Level::Info,
            &format!("notify_service: {} ({})", descriptor.name, names.join(", ")),
        );
        let info = ServiceInfo {
            service: Arc::new(service),
            methods,
        };
        self.services.insert(descriptor.name, info);
        Ok(())
    }

    /// The published service called `name` (short name), if any.
    pub fn service(&self, name: &str) -> Option<&ServiceInfo> {
        self.services.get(name)
    }

    /// The names of the published services, sorted.
    pub fn service_names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.services.keys().copied().collect();
        names.sort_unstable();
        names
    }
}
// ANCHOR_END: notify

// ANCHOR: run
impl RpcProvider {
    /// Listens on the configured address, registers every published method
    /// in ZooKeeper, and serves until Ctrl-C; then closes the ZooKeeper
    /// session, so the method nodes vanish at once. Blocks: this is the
    /// course's `provider.Run()`, the last line of a callee.
    pub fn run(self) -> io::Result<()> {
        let runtime = self.runtime()?;
        let addr = self.addr;
        runtime.block_on(async move {
            let listener = TcpListener::bind(addr).await.map_err(|error| {
                io::Error::new(error.kind(), format!("cannot listen on {addr}: {error}"))
            })?;
            // Listening first: a caller that finds the node at once gets
            // queued by the kernel until the accept loop runs.
            let zk = self.register(listener.local_addr()?).await?;
            let session_log = Arc::clone(&self.log);
            let log = Arc::clone(&self.log);
            let ctrl_c = async move {
                if let Err(error) = tokio::signal::ctrl_c().await {
                    // Without a signal handler we cannot stop cleanly; keep
                    // serving rather than stop at once.
                    log(Level::Error, &format!("cannot wait for Ctrl-C: {error}"));
                    std::future::pending::<()>().await;
                }
            };
            self.serve(listener, ctrl_c).await;
            close_session(zk, &session_log).await;
            Ok(())
        })
    }

    /// Starts serving on `addr` on a background thread with its own runtime
    /// and returns at once. Binding happens before this returns, so a bad
    /// address is an error here and port 0 is resolved:
    /// [`ProviderHandle::local_addr`] tells which port the system chose.
    /// Without ZooKeeper: callers use [`crate::channel::MprpcChannel::direct`].
    pub fn start(self, addr: SocketAddr) -> io::Result<ProviderHandle> {
        self.spawn(addr, false)
    }

    /// Like [`start`](Self::start), and registers in ZooKeeper as
    /// [`run`](Self::run) does; returns once the nodes exist. When
    /// [`ProviderHandle::shutdown`] returns, they are gone.
    pub fn start_registered(self, addr: SocketAddr) -> io::Result<ProviderHandle> {
        self.spawn(addr, true)
    }
    // ANCHOR_END: run

    // ANCHOR: spawn
    /// [`start`](Self::start) and [`start_registered`](Self::start_registered).
    fn spawn(self, addr: SocketAddr, register: bool) -> io::Result<ProviderHandle> {
        let runtime = self.runtime()?;
        let listener = std::net::TcpListener::bind(addr).map_err(|error| {
            io::Error::new(error.kind(), format!("cannot listen on {addr}: {error}"))
        })?;
        let local_addr = listener.local_addr()?;
        // tokio needs the socket in non-blocking mode before adopting it.
        listener.set_nonblocking(true)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // The thread says when it serves, or why it cannot.
        let (ready, is_ready) = std::sync::mpsc::channel::<io::Result<()>>();
        let thread = std::thread::Builder::new()
            .name("rpc-provider-main".to_string())
            .spawn(move || {
                runtime.block_on(async move {
                    let setup = async {
                        let listener = TcpListener::from_std(listener)?;
                        let zk = match register {
                            true => Some(self.register(local_addr).await?),
                            false => None,
                        };
                        Ok::<_, io::Error>((listener, zk))
                    };
                    let (listener, zk) = match setup.await {
                        Ok(setup) => setup,
                        Err(error) => {
                            let _ = ready.send(Err(error));
                            return;
                        }
                    };
                    let _ = ready.send(Ok(()));
                    let log = Arc::clone(&self.log);
                    // A dropped handle counts as "stop" too.
                    self.serve(listener, async move {
                        let _ = stopped.await;
                    })
                    .await;
                    if let Some(zk) = zk {
                        close_session(zk, &log).await;
                    }
                })
            })?;
        let handle = ProviderHandle {
            local_addr,
            stop: Some(stop),
            thread: Some(thread),
        };
        match is_ready.recv() {
            Ok(Ok(())) => Ok(handle),
            // Dropping the handle joins the thread, which is ending.
            Ok(Err(error)) => Err(error),
            Err(_) => Err(io::Error::other("the provider thread ended early")),
        }
    }
    // ANCHOR_END: spawn
}

// ANCHOR: register
impl RpcProvider {
    /// Publishes every method in the course's layout: `/ServiceName`
    /// persistent without data, `/ServiceName/MethodName` ephemeral with the
    /// `ip:port` callers connect to. The nodes live as long as the returned
    /// session (if it expires, nothing puts them back, as in the course).
    async fn register(&self, listening: SocketAddr) -> io::Result<ZkClient> {
        if listening.ip().is_unspecified() {
            return Err(io::Error::other(format!(
                "cannot register {listening} in ZooKeeper: an unspecified address means every \
                 interface, not one callers can connect to; set rpcserverip to this host's address"
            )));
        }
        let zk = ZkClient::start(&self.zookeeper, self.zk_session_timeout)
            .await
            .map_err(registration_failed)?;
        let data = listening.to_string();
        match self.create_nodes(&zk, &data).await {
            Ok(()) => Ok(zk),
            Err(error) => {
                // Take back the nodes already made.
                let _ = timeout(ZK_CLOSE_WAIT, zk.close()).await;
                Err(registration_failed(error))
            }
        }
    }
    // ANCHOR_END: register

    // ANCHOR: create_nodes
    /// Creates the nodes of every published service, in name order, after a
    /// pass that creates nothing and fails if a method node is taken: no
    /// caller may find a provider that then refuses to start.
    async fn create_nodes(&self, zk: &ZkClient, data: &str) -> Result<(), ZkError> {
        for check in [true, false] {
            for name in self.service_names() {
                let service_path = format!("/{name}");
                let Some(info) = self.services.get(name) else {
                    continue;
                };
                if !check {
                    zk.create(&service_path, b"", Persistent).await?;
                }
                let mut methods: Vec<_> = info.methods.keys().copied().collect();
                methods.sort_unstable();
                for method in methods {
                    let path = format!("{service_path}/{method}");
                    if check {
                        check_node(zk, &path, data).await?;
                        continue;
                    }
                    // "ip:port" and nothing else: no trailing NUL, as the
                    // course's callers expect.
                    zk.create(&path, data.as_bytes(), Ephemeral).await?;
                    let session = zk.session_id();
                    let line = format!("registered {path} = {data} (session {session:#x})");
                    self.log(Level::Info, &line);
                }
            }
        }
        Ok(())
    }
}
// ANCHOR_END: create_nodes

/// [`ZkError::Taken`] if the node `path` holds an address not ours (`data`).
async fn check_node(zk: &ZkClient, path: &str, data: &str) -> Result<(), ZkError> {
    let owner = zk.exists(path).await?.map_or(0, |s| s.ephemeral_owner);
    match zk.get_data(path).await {
        Ok(held) if held != data.as_bytes() => Err(ZkError::Taken {
            path: path.to_string(),
            owner,
            data: String::from_utf8_lossy(&held).into_owned(),
        }),
        Ok(_) | Err(ZkError::NoNode { .. }) => Ok(()),
        Err(error) => Err(error),
    }
}

// ANCHOR: close_session
/// The error of a registration that failed, naming the cause.
fn registration_failed(error: ZkError) -> io::Error {
    io::Error::other(format!("cannot register with ZooKeeper: {error}"))
}

/// Closes the provider's ZooKeeper session, so its ephemeral nodes vanish
/// now rather than one session timeout later, and logs how it went.
async fn close_session(zk: ZkClient, log: &LogSink) {
    let session = zk.session_id();
    match timeout(ZK_CLOSE_WAIT, zk.close()).await {
        Ok(Ok(())) => log(
            Level::Info,
            &format!("ZooKeeper session {session:#x} closed: this provider's znodes are gone"),
        ),
        Ok(Err(error)) => log(Level::Error, &error.to_string()),
        Err(_elapsed) => log(
            Level::Error,
            &format!(
                "ZooKeeper did not confirm the end of session {session:#x} within \
                 {ZK_CLOSE_WAIT:?}; its znodes stay until the session expires"
            ),
        ),
    }
}
// ANCHOR_END: close_session

// ANCHOR: serve
impl RpcProvider {
    /// Accepts connections on `listener` until `shutdown` completes; each
    /// connection is served by its own task. On shutdown, open connections
    /// are cut: a real server would stop accepting, then give in-flight
    /// calls a grace period to finish (final/ does).
    pub async fn serve<F>(self, listener: TcpListener, shutdown: F)
    where
        F: Future<Output = ()>,
    {
        // Every connection task needs the provider (for its callbacks and,
        // from step 06, its services): share it, read-only.
        let provider = Arc::new(self);
        match listener.local_addr() {
            Ok(addr) => provider.log(Level::Info, &format!("RpcProvider listening on {addr}")),
            Err(error) => provider.log(Level::Error, &format!("listener has no address: {error}")),
        }
        // The set owns the connection tasks: finished ones are reaped below,
        // and whatever is still running when we stop is aborted.
        let mut connections = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((socket, peer)) => {
                        connections.spawn(Arc::clone(&provider).handle_connection(socket, peer));
                    }
                    Err(error) => {
                        // One failed accept must not end the server.
                        provider.log(Level::Error, &format!("accept failed: {error}"));
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
                Some(finished) = connections.join_next(), if !connections.is_empty() => {
                    if finished.is_err_and(|error| error.is_panic()) {
                        // tokio caught the panic; only that connection died.
                        provider.log(Level::Error, "a connection task panicked");
                    }
                }
            }
        }
        connections.shutdown().await;
        provider.log(Level::Info, "RpcProvider stopped");
    }
}
// ANCHOR_END: serve

// ANCHOR: dispatch_error
/// Why a connection ended without a reply.
#[derive(Debug)]
pub enum DispatchError {
    /// The request frame was bad or incomplete.
    Frame(FrameError),
    /// The whole request did not arrive within the I/O timeout.
    Timeout(Duration),
    /// No service of this name is published.
    UnknownService(String),
    /// The service is published but has no method of this name.
    UnknownMethod {
        /// The service asked for.
        service: String,
        /// The method asked for.
        method: String,
    },
    /// The method could not run: its arguments did not decode.
    Call(CallError),
}
// ANCHOR_END: dispatch_error

impl std::fmt::Display for DispatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DispatchError::Frame(error) => error.fmt(f),
            DispatchError::Timeout(limit) => {
                write!(f, "no complete request within {limit:?}")
            }
            DispatchError::UnknownService(service) => {
                write!(f, "no service {service} is published")
            }
            DispatchError::UnknownMethod { service, method } => {
                write!(f, "service {service} has no method {method}")
            }
            DispatchError::Call(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for DispatchError {}

// ANCHOR: connection
impl RpcProvider {
    /// Serves one connection: one call, then close (the course's "short
    /// connection"). Every path, good or bad, ends in `close`.
    async fn handle_connection(self: Arc<Self>, mut socket: TcpStream, peer: SocketAddr) {
        self.on_connection(peer, true);
        match self.on_message(&mut socket, peer).await {
            Ok(response) => self.send_rpc_response(&mut socket, peer, &response).await,
            // The course's OnMessage just returned here and left the
            // connection open, so the caller waited for a reply forever.
            Err(error) => self.log(
                Level::Error,
                &format!("{peer}: {error}; closing without a reply"),
            ),
        }
        self.close(socket, peer).await;
        self.on_connection(peer, false);
    }

    /// A connection came up or went down (the course's `OnConnection`).
    fn on_connection(&self, peer: SocketAddr, up: bool) {
        let what = if up { "connected" } else { "disconnected" };
        self.log(Level::Info, &format!("on_connection: {peer} {what}"));
    }
}
// ANCHOR_END: connection

// ANCHOR: on_message
impl RpcProvider {
    /// Reads one request and runs it (the course's `OnMessage`); returns the encoded response.
    async fn on_message(
        &self,
        socket: &mut TcpStream,
        peer: SocketAddr,
    ) -> Result<Vec<u8>, DispatchError> {
        // One deadline for the whole frame, however it is split.
        let request = timeout(self.io_timeout, wire::read_request(socket, self.limits))
            .await
            .map_err(|_elapsed| DispatchError::Timeout(self.io_timeout))?
            .map_err(DispatchError::Frame)?;
        // Names are bytes on the wire. Bytes that are not UTF-8 become
        // U+FFFD here and then match no service; escape_debug keeps a
        // hostile name from writing control characters into the log.
        let service = String::from_utf8_lossy(&request.header.service_name);
        let method = String::from_utf8_lossy(&request.header.method_name);
        let args = match request.args.len() {
            0 => "no args".to_string(),
            n => format!("{n} bytes of args {}", hex_preview(&request.args)),
        };
        self.log(
            Level::Info,
            &format!(
                "on_message: {peer} calls {}.{} with {args}",
                service.escape_debug(),
                method.escape_debug(),
            ),
        );
        let info = self
            .services
            .get(service.as_ref())
            .ok_or_else(|| DispatchError::UnknownService(service.escape_debug().to_string()))?;
        let descriptor =
            info.methods
                .get(method.as_ref())
                .ok_or_else(|| DispatchError::UnknownMethod {
                    service: service.escape_debug().to_string(),
                    method: method.escape_debug().to_string(),
                })?;
        // The method runs right here, on this connection's task, as the
        // course runs it on muduo's I/O thread. Fine for quick methods; one
        // that blocks (a database call) would hold a worker thread, and a
        // real server would run it with tokio::task::spawn_blocking or make
        // services async (final/ does the latter).
        info.service
            .call_method(descriptor, &request.args)
            .map_err(DispatchError::Call)
    }
    // ANCHOR_END: on_message

    // ANCHOR: reply
    /// Writes the encoded response (the course's `SendRpcResponse`). No
    /// length prefix: the caller reads until we close.
    async fn send_rpc_response(&self, socket: &mut TcpStream, peer: SocketAddr, response: &[u8]) {
        match timeout(self.io_timeout, socket.write_all(response)).await {
            Ok(Ok(())) => self.log(
                Level::Info,
                &format!(
                    "{peer}: replied {} bytes: {}",
                    response.len(),
                    hex_preview(response)
                ),
            ),
            Ok(Err(error)) => self.log(
                Level::Error,
                &format!("{peer}: sending the reply failed: {error}"),
            ),
            Err(_elapsed) => self.log(
                Level::Error,
                &format!(
                    "{peer}: the client did not take its reply within {:?}",
                    self.io_timeout
                ),
            ),
        }
    }

    /// Closes the connection without destroying the reply.
    ///
    /// Closing a socket that has unread bytes makes the kernel send a reset
    /// (RST) instead of a normal close, and a reset can discard the reply
    /// before the client has read it. So: shut down our sending side first
    /// (the client sees end of file after the reply), then read and drop
    /// whatever the client still sends until it closes, within a time and
    /// a byte budget. Apache httpd calls this a lingering close.
    async fn close(&self, mut socket: TcpStream, peer: SocketAddr) {
        // Fails only when the connection is already gone: nothing to do.
        let _ = socket.shutdown().await;
        let mut dropped = 0;
        let mut buf = [0u8; 4096];
        let drain = async {
            while dropped < LINGER_MAX_BYTES {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => dropped += n,
                }
            }
        };
        // Running out of time is fine: we close anyway.
        let _ = timeout(LINGER_TIMEOUT, drain).await;
        if dropped > 0 {
            self.log(
                Level::Info,
                &format!("{peer}: dropped {dropped} bytes sent after the request"),
            );
        }
    }
    // ANCHOR_END: reply

    /// Writes one line to the log sink.
    fn log(&self, level: Level, line: &str) {
        (self.log)(level, line);
    }
}

/// Lower-case hex, two digits a byte, no separators (like the captures).
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The first [`HEX_SHOWN`] bytes in hex, then `...` if there are more: a
/// large message cannot flood the log.
fn hex_preview(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(HEX_SHOWN)];
    let more = if bytes.len() > HEX_SHOWN { "..." } else { "" };
    format!("{}{more}", to_hex(shown))
}

// ANCHOR: handle
/// A provider serving on a background thread (see [`RpcProvider::start`]).
/// Dropping the handle stops the provider and waits for its thread.
#[derive(Debug)]
pub struct ProviderHandle {
    /// The address the provider listens on, with the port the system chose.
    local_addr: SocketAddr,
    /// Completing this stops the accept loop.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// The thread running the provider's runtime.
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProviderHandle {
    /// Where to connect.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops the provider and waits until it has stopped.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    /// Signals the accept loop, then joins the thread (once).
    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            // Fails only if the provider already ended; nothing to stop then.
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                // The sink went with the thread; the process-wide log
                // still hears about it.
                crate::log_error!("the provider thread panicked");
            }
        }
    }
}

impl Drop for ProviderHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
// ANCHOR_END: handle
