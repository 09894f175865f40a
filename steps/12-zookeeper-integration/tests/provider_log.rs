//! The framework's own lines reach the log file: a provider left with its
//! default sink, and a channel failing without a controller, write through
//! the process-wide logger. One test only, because the process-wide logger
//! can be set once per process (this file is its own test binary).

mod support;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};
use step::channel::MprpcChannel;
use step::fixbug::{LoginRequest, LoginResponse, UserServiceRpcServer, UserServiceRpcStub};
use step::logger::Logger;
use step::provider::RpcProvider;
use step::user_service::UserService;
use support::log_file::{Line, read_all};
use support::{assert_good_call, config, connect, read_reply};

/// Flushes the process-wide logger and reads `dir` until a line containing
/// `text` is there (at most 10 s); returns that line.
fn wait_for_line(dir: &Path, text: &str) -> Line {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Logger::global().flush(), "the logger is writing");
        if let Some(line) = read_all(dir)
            .into_iter()
            .find(|line| line.message.contains(text))
        {
            return line;
        }
        assert!(
            Instant::now() < deadline,
            "no line with {text:?} in the log: {:#?}",
            read_all(dir)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_bad_request_and_an_unreported_failure_land_in_the_log_file_as_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("logs");
    // First, before `config()` could start the logger elsewhere.
    let _guard = Logger::init(&dir).unwrap();

    // A provider with no sink of its own: its lines go to the file.
    let mut provider = RpcProvider::new(&config(0));
    provider
        .notify_service(UserServiceRpcServer(UserService::default()))
        .unwrap();
    let provider = provider.start("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = provider.local_addr();
    let line = wait_for_line(&dir, "RpcProvider listening on 127.0.0.1:");
    assert_eq!(line.level, "INFO");

    // A request for a service nobody published.
    let mut stream = connect(addr);
    stream
        .write_all(&support::frame("NoSuchService", "Login", b""))
        .unwrap();
    assert_eq!(read_reply(&mut stream), b"", "rejected without a reply");
    let line = wait_for_line(&dir, "no service NoSuchService is published");
    assert_eq!(line.level, "ERROR");
    assert!(
        line.message.ends_with("closing without a reply"),
        "{}",
        line.message
    );
    // The provider still serves, and says so in the log.
    assert_good_call(addr);
    let line = wait_for_line(&dir, "calls UserServiceRpc.Login with 19 bytes of args");
    assert_eq!(line.level, "INFO");
    provider.shutdown();
    wait_for_line(&dir, "RpcProvider stopped");

    // A failed call without a controller: the channel logs it.
    let stub = UserServiceRpcStub::new(MprpcChannel::direct(config(addr.port()).rpc_server_addr()));
    let mut response = LoginResponse::default();
    stub.login(None, &LoginRequest::default(), &mut response);
    let line = wait_for_line(&dir, "rpc UserServiceRpc.Login: cannot connect");
    assert_eq!(line.level, "ERROR");
}
