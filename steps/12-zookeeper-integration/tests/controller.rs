//! `MprpcController` over real sockets: every way a call can fail is
//! reported to the caller, with a reason that says what happened, the
//! response is left at its default, and a good call afterwards works.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};
use step::channel::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT, MprpcChannel};
use step::controller::MprpcController;
use step::fixbug::{
    FriendServiceRpcStub, GetFriendsListRequest, GetFriendsListResponse, LoginRequest,
    LoginResponse, UserServiceRpcServer, UserServiceRpcStub,
};
use step::rpc::RpcController;
use step::user_service::UserService;
use support::{capture, config, scripted_provider, start_provider_with, start_services};

/// A channel to the provider at `addr`.
fn channel_to(addr: SocketAddr) -> MprpcChannel {
    MprpcChannel::direct(config(addr.port()).rpc_server_addr())
}

/// The course's Login request, through `channel`, with a controller.
/// Returns the controller and the response.
fn login(channel: MprpcChannel) -> (MprpcController, LoginResponse) {
    let stub = UserServiceRpcStub::new(channel);
    let mut controller = MprpcController::new();
    // A stale answer, to see that a failure clears it.
    let mut response = LoginResponse {
        success: true,
        ..Default::default()
    };
    let request = LoginRequest {
        name: b"zhang san".to_vec(),
        pwd: b"123456".to_vec(),
    };
    stub.login(Some(&mut controller), &request, &mut response);
    (controller, response)
}

/// Checks that the call failed with `reason` in its text and left a
/// default response.
fn assert_failed(result: (MprpcController, LoginResponse), reason: &str) {
    let (controller, response) = result;
    assert!(controller.failed(), "the call should have failed");
    assert!(
        controller
            .error_text()
            .starts_with("UserServiceRpc.Login: "),
        "{}",
        controller.error_text()
    );
    assert!(
        controller.error_text().contains(reason),
        "expected {reason:?} in {:?}",
        controller.error_text()
    );
    assert_eq!(response, LoginResponse::default());
}

#[test]
fn a_controller_starts_clear_records_a_failure_and_resets() {
    let mut controller = MprpcController::new();
    assert!(!controller.failed());
    assert_eq!(controller.error_text(), "");
    controller.set_failed("it broke".to_string());
    assert!(controller.failed());
    assert_eq!(controller.error_text(), "it broke");
    controller.reset();
    assert_eq!(controller, MprpcController::default());
}

#[test]
fn a_successful_call_leaves_the_controller_clear() {
    let (provider, _log) = start_services();
    let (controller, response) = login(channel_to(provider.local_addr()));
    assert!(!controller.failed(), "{}", controller.error_text());
    assert_eq!(controller.error_text(), "");
    assert!(!response.success, "zhang san is not registered");
    assert!(response.result.is_some());
}

#[test]
fn connection_refused() {
    // A port we bound and released: nothing listens there now.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    assert_failed(
        login(MprpcChannel::direct(config(port).rpc_server_addr())),
        &format!("cannot connect to the provider at 127.0.0.1:{port}: Connection refused"),
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn end_of_file_before_any_byte() {
    // A provider that reads the request and closes without a word: what a
    // provider does with a call it rejects.
    let (addr, provider) = scripted_provider(capture("request").len(), Vec::new());
    assert_failed(
        login(channel_to(addr)),
        "the provider closed the connection without a response: it most likely does not \
         publish this service or method",
    );
    assert_eq!(provider.join().unwrap(), capture("request"));
}

#[test]
fn a_real_provider_rejecting_the_call() {
    let (provider, log) = start_provider_with(|p| {
        p.notify_service(UserServiceRpcServer(UserService::default()))
            .unwrap();
    });
    let stub = FriendServiceRpcStub::new(channel_to(provider.local_addr()));
    let mut controller = MprpcController::new();
    let mut response = GetFriendsListResponse::default();
    stub.get_friends_list(
        Some(&mut controller),
        &GetFriendsListRequest { userid: 1 },
        &mut response,
    );
    assert!(controller.failed());
    assert!(
        controller
            .error_text()
            .starts_with("FriendServiceRpc.GetFriendsList: the provider closed the connection"),
        "{}",
        controller.error_text()
    );
    log.wait_for("no service FriendServiceRpc is published");
}

#[test]
fn a_reply_that_does_not_decode() {
    // Field 1 (result), length 9, and then nothing.
    let (addr, _provider) = scripted_provider(capture("request").len(), vec![0x0a, 0x09]);
    assert_failed(
        login(channel_to(addr)),
        "the response is not the expected message",
    );
}

#[test]
fn a_junk_reply() {
    let (addr, _provider) = scripted_provider(capture("request").len(), vec![0xff; 7]);
    assert_failed(
        login(channel_to(addr)),
        "the response is not the expected message",
    );
}

#[test]
fn a_response_over_the_limit() {
    let (addr, _provider) = scripted_provider(capture("request").len(), vec![0x0a; 5000]);
    let mut channel = channel_to(addr);
    channel.set_max_response_size(100);
    assert_failed(
        login(channel),
        "the response is larger than the limit of 100 bytes",
    );
}

#[test]
fn a_provider_that_never_answers() {
    // Listening, never accepting: the kernel completes the connection, the
    // request sits in a buffer, and no answer ever comes.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut channel = channel_to(silent.local_addr().unwrap());
    channel.set_read_timeout(Duration::from_millis(200));
    let started = Instant::now();
    assert_failed(login(channel), "no response within 200ms");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn a_provider_that_trickles_is_cut_off_at_the_deadline() {
    // Answers one byte every 50 ms: each read is quick, the response never
    // ends. The deadline is for the whole response.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let trickler = std::thread::spawn(move || {
        use std::io::Write;
        let (mut stream, _) = listener.accept().unwrap();
        for _ in 0..100 {
            if stream.write_all(&[0x0a]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let mut channel = channel_to(addr);
    channel.set_read_timeout(Duration::from_millis(300));
    let started = Instant::now();
    assert_failed(login(channel), "no response within 300ms");
    assert!(started.elapsed() < Duration::from_secs(2));
    trickler.join().unwrap();
}

#[test]
fn a_connection_that_cannot_be_made_in_time() {
    // A listener with a full accept queue: Linux then drops new
    // connection attempts (SYNs), so connecting hangs until the timeout.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let socket = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        socket
    });
    let addr = socket.local_addr().unwrap();
    let _listener = runtime.block_on(async { socket.listen(0).unwrap() });
    // Fill the queue (a backlog of 0 holds one connection) and then some,
    // without ever accepting.
    let fillers: Vec<_> = (0..3)
        .filter_map(|_| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()
        })
        .collect();
    assert!(!fillers.is_empty());

    let mut channel = channel_to(addr);
    channel.set_connect_timeout(Duration::from_millis(200));
    let started = Instant::now();
    assert_failed(login(channel), "no connection within 200ms");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn the_default_timeouts() {
    assert_eq!(DEFAULT_CONNECT_TIMEOUT, Duration::from_secs(3));
    assert_eq!(DEFAULT_READ_TIMEOUT, Duration::from_secs(10));
}

#[test]
fn without_a_controller_a_failure_still_leaves_a_default_response() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let stub = UserServiceRpcStub::new(MprpcChannel::direct(config(port).rpc_server_addr()));
    let mut response = LoginResponse {
        success: true,
        ..Default::default()
    };
    stub.login(None, &LoginRequest::default(), &mut response);
    assert_eq!(response, LoginResponse::default());
}

#[test]
fn a_reused_controller_reports_only_the_last_call_and_good_calls_still_work() {
    let (provider, _log) = start_services();
    let good = channel_to(provider.local_addr());
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bad = MprpcChannel::direct(config(port).rpc_server_addr());
    let request = LoginRequest {
        name: b"zhang san".to_vec(),
        pwd: b"123456".to_vec(),
    };
    let mut controller = MprpcController::new();
    let mut response = LoginResponse::default();

    UserServiceRpcStub::new(bad).login(Some(&mut controller), &request, &mut response);
    assert!(controller.failed());
    UserServiceRpcStub::new(good).login(Some(&mut controller), &request, &mut response);
    assert!(!controller.failed(), "{}", controller.error_text());
    assert!(response.result.is_some(), "the provider's answer arrived");
}
