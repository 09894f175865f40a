//! Helpers shared by this step's integration tests: a log recorder, a
//! config, a provider started on 127.0.0.1 with a port the system picks,
//! the course's captured bytes, a raw client, and a scripted provider;
//! [`log_file`] reads the logger's files back.

// Each test file compiles this module separately and uses only part of it.
#![allow(dead_code)]

pub mod log_file;

use prost::Message;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};
use step::config::MprpcConfig;
use step::fixbug::{FriendServiceRpcServer, UserServiceRpcServer};
use step::logger::{LogGuard, Logger};
use step::mprpc::RpcHeader;
use step::provider::{Level, LogSink, ProviderHandle, RpcProvider};
use step::user_service::{FriendService, UserService};

/// The provider's log so far: level and text of each line.
pub type Lines = Vec<(Level, String)>;

/// Collects the provider's log lines so a test can wait for one.
#[derive(Clone, Default)]
pub struct Recorder {
    /// The lines, and a condition variable notified on every new one.
    pub lines: Arc<(Mutex<Lines>, Condvar)>,
}

impl Recorder {
    /// A sink that appends to this recorder.
    pub fn sink(&self) -> LogSink {
        let lines = Arc::clone(&self.lines);
        Arc::new(move |level, line: &str| {
            let (list, changed) = &*lines;
            list.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((level, line.to_string()));
            changed.notify_all();
        })
    }

    /// Waits (at most 10 s) until `done` holds for the lines logged so far.
    pub fn wait_until(&self, what: &str, done: impl Fn(&[(Level, String)]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let (list, changed) = &*self.lines;
        let mut lines = list.lock().unwrap_or_else(PoisonError::into_inner);
        while !done(&lines) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {what}; log: {lines:#?}"
            );
            lines = changed
                .wait_timeout(lines, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Waits for a line containing `text`.
    pub fn wait_for(&self, text: &str) {
        self.wait_until(text, |lines| lines.iter().any(|(_, l)| l.contains(text)));
    }
}

/// A config for 127.0.0.1:`port`.
///
/// Every test that builds a provider or a channel comes here first, so this
/// is also where the process-wide log is sent out of the way (see
/// [`log_in_target_dir`]).
pub fn config(port: u16) -> MprpcConfig {
    log_in_target_dir();
    MprpcConfig {
        rpcserverip: [127, 0, 0, 1].into(),
        rpcserverport: port,
        zookeeperip: "127.0.0.1".to_string(),
        zookeeperport: 2181,
    }
}

/// Starts the process-wide logger in `<target>/tmp/step-NN-logs`, once
/// per test binary. A provider without a sink of its own, and a channel
/// failing without a controller, write to that logger; left to its default
/// (`logs/` under the current directory, the crate's folder for a test),
/// every test run would leave a `logs/` folder in the step.
///
/// If the logger already exists (a test made it on purpose), it stays as
/// it is. The guard lives in a `static` and is never dropped: a test binary
/// does not need its last lines flushed.
pub fn log_in_target_dir() {
    static GUARD: OnceLock<Option<LogGuard>> = OnceLock::new();
    GUARD.get_or_init(|| {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(concat!(env!("CARGO_PKG_NAME"), "-logs"));
        Logger::init(dir).ok()
    });
}

/// A provider on 127.0.0.1 with a port the system picks.
pub fn start_provider() -> (ProviderHandle, Recorder) {
    start_provider_with(|_| {})
}

/// A provider publishing the example services, on 127.0.0.1 with a port
/// the system picks; `configure` may change its settings first.
pub fn start_services_with(configure: impl FnOnce(&mut RpcProvider)) -> (ProviderHandle, Recorder) {
    start_provider_with(|provider| {
        provider
            .notify_service(UserServiceRpcServer(UserService::default()))
            .expect("publish UserServiceRpc");
        provider
            .notify_service(FriendServiceRpcServer(FriendService))
            .expect("publish FriendServiceRpc");
        configure(provider);
    })
}

/// [`start_services_with`] with the default settings.
pub fn start_services() -> (ProviderHandle, Recorder) {
    start_services_with(|_| {})
}

/// A provider on 127.0.0.1 with a port the system picks, set up by
/// `configure` before it starts.
pub fn start_provider_with(configure: impl FnOnce(&mut RpcProvider)) -> (ProviderHandle, Recorder) {
    let recorder = Recorder::default();
    let mut provider = RpcProvider::new(&config(0));
    provider.set_thread_num(4);
    provider.set_log_sink(recorder.sink());
    configure(&mut provider);
    let handle = provider
        .start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("start the provider");
    recorder.wait_for("RpcProvider listening on 127.0.0.1:");
    (handle, recorder)
}

impl Recorder {
    /// A copy of the lines logged so far.
    pub fn snapshot(&self) -> Lines {
        self.lines
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The bytes of one of the course's captures, `proto/captures/<name>.hex`
/// (copied from the course's material; see that folder's README).
pub fn capture(name: &str) -> Vec<u8> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = repo.join("proto/captures").join(format!("{name}.hex"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read the course capture {}: {error}\n\
             These tests compare against the bytes captured from the C++ course; \
             they live in proto/captures/ of this repository.",
            path.display()
        )
    });
    from_hex(text.trim())
}

/// `"0a00"` -> `[0x0a, 0x00]`.
pub fn from_hex(hex: &str) -> Vec<u8> {
    assert!(hex.len() % 2 == 0, "odd number of hex digits: {hex}");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digits"))
        .collect()
}

/// A request frame built by hand, independently of the code under test:
/// `[u32 header_size LE][RpcHeader][args]`.
pub fn frame(service: &str, method: &str, args: &[u8]) -> Vec<u8> {
    let header = RpcHeader {
        service_name: service.as_bytes().to_vec(),
        method_name: method.as_bytes().to_vec(),
        args_size: u32::try_from(args.len()).expect("small args"),
    }
    .encode_to_vec();
    let mut frame = u32::try_from(header.len())
        .expect("small header")
        .to_le_bytes()
        .to_vec();
    frame.extend_from_slice(&header);
    frame.extend_from_slice(args);
    frame
}

/// Connects to `addr`, with a read timeout so a test can never hang.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to the provider");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set a read timeout");
    stream
}

/// Reads until the provider closes. A reset counts as a close; a timeout
/// fails the test: the provider must answer or close, never leave the
/// caller waiting (the course's provider did).
pub fn read_reply(stream: &mut TcpStream) -> Vec<u8> {
    let mut reply = Vec::new();
    match stream.read_to_end(&mut reply) {
        Ok(_) => {}
        Err(error) if error.kind() == ErrorKind::ConnectionReset => {}
        Err(error) => panic!("the provider neither replied nor closed: {error}"),
    }
    reply
}

/// Sends `request` on a new connection and returns the whole reply.
pub fn call_raw(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = connect(addr);
    stream.write_all(request).expect("send the request");
    read_reply(&mut stream)
}

/// The course's Login capture still gets the course's reply: the provider
/// is healthy after whatever the test did to it.
pub fn assert_good_call(addr: SocketAddr) {
    assert_eq!(call_raw(addr, &capture("request")), capture("response"));
}

/// A one-shot provider with a script: it accepts one connection, reads
/// exactly `request_len` bytes, writes `reply`, closes its sending side,
/// and returns everything the client sent (the request, plus anything the
/// client sent after it).
pub fn scripted_provider(
    request_len: usize,
    reply: Vec<u8>,
) -> (SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a scripted provider");
    let addr = listener.local_addr().expect("its address");
    let thread = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept the channel");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("set a read timeout");
        let mut received = vec![0; request_len];
        stream.read_exact(&mut received).expect("read the request");
        // Write in small pieces: the channel must read to the end, not
        // once. A channel that gives up early (a limit) makes the rest of
        // these fail, which is fine.
        for piece in reply.chunks(1000) {
            if stream.write_all(piece).is_err() {
                return received;
            }
        }
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let _ = stream.read_to_end(&mut received);
        received
    });
    (addr, thread)
}
