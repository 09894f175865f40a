//! Calls over the multiplexed protocol on real TCP: stubs, multiplexing,
//! every error code, deadlines, cancellation and limits.

mod support;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use mprpc::{
    BlockingChannel, CallContext, ErrorCode, MprpcChannel, MprpcConfig, MprpcController,
    RunningProvider, ServiceDescriptor, StaticRegistry, Status,
};
use mprpc_examples::fixbug::{
    BlockingUserServiceRpcStub, FriendServiceRpcStub, GetFriendsListRequest, LoginRequest,
    LoginResponse, RegisterRequest, RegisterResponse, USER_SERVICE_RPC_DESCRIPTOR, UserServiceRpc,
    UserServiceRpcServer, UserServiceRpcStub,
};

/// A UserService whose Login sleeps `delay` and records who called;
/// Register with id 0 fails with a handler error.
#[derive(Default)]
struct Slow {
    delay: Duration,
    peers: Mutex<HashSet<SocketAddr>>,
    calls: std::sync::atomic::AtomicUsize,
    /// Handlers dropped before they finished (cancelled or timed out).
    abandoned: std::sync::atomic::AtomicUsize,
}

/// Counts a handler as abandoned unless it reaches its end.
struct Unfinished<'a>(&'a std::sync::atomic::AtomicUsize, bool);

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

impl UserServiceRpc for Slow {
    async fn login(
        &self,
        ctx: CallContext,
        request: LoginRequest,
    ) -> Result<LoginResponse, Status> {
        self.peers.lock().map(|mut p| p.insert(ctx.peer)).ok();
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut unfinished = Unfinished(&self.abandoned, false);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        unfinished.1 = true;
        Ok(LoginResponse {
            result: None,
            success: request.name == b"ok",
        })
    }

    async fn register(
        &self,
        _ctx: CallContext,
        request: RegisterRequest,
    ) -> Result<RegisterResponse, Status> {
        if request.id == 0 {
            return Err(Status::handler("id 0 is reserved"));
        }
        Ok(RegisterResponse::default())
    }
}

async fn slow_provider(config: MprpcConfig, delay: Duration) -> (RunningProvider, Arc<Slow>) {
    let slow = Arc::new(Slow {
        delay,
        ..Slow::default()
    });
    let mut provider = support::provider(config);
    provider.notify_service(UserServiceRpcServer::from_arc(Arc::clone(&slow)));
    (support::start(provider).await, slow)
}

fn login(name: &str) -> LoginRequest {
    LoginRequest {
        name: name.as_bytes().to_vec(),
        pwd: b"pw".to_vec(),
    }
}

#[tokio::test]
async fn register_then_login_through_async_stubs() {
    let p = support::demo_provider(support::local_config()).await;
    let channel = MprpcChannel::direct(&p.local_addr().to_string());
    let users = UserServiceRpcStub::new(channel.clone());
    let reg = users
        .register(&RegisterRequest {
            id: 7,
            name: b"zhang san".to_vec(),
            pwd: b"123456".to_vec(),
        })
        .await;
    assert!(matches!(reg, Ok(ref r) if r.success), "{reg:?}");
    let ok = users
        .login(&LoginRequest {
            name: b"zhang san".to_vec(),
            pwd: b"123456".to_vec(),
        })
        .await;
    assert!(matches!(ok, Ok(ref r) if r.success), "{ok:?}");
    let friends = FriendServiceRpcStub::new(channel)
        .get_friends_list(&GetFriendsListRequest { userid: 1 })
        .await;
    assert!(
        matches!(friends, Ok(ref r) if r.friends.len() == 3),
        "{friends:?}"
    );
    p.shutdown().await.ok();
}

#[test]
fn blocking_stub_works_without_a_runtime() {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    let p = runtime.block_on(support::demo_provider(support::local_config()));
    let channel = match BlockingChannel::direct(&p.local_addr().to_string()) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let stub = BlockingUserServiceRpcStub::new(channel);
    let controller = MprpcController::with_timeout(Duration::from_secs(2));
    let r = stub.login_with(&controller, &login("nobody"));
    assert!(matches!(r, Ok(ref r) if !r.success));
    assert!(!controller.failed());
    drop(stub);
    runtime.block_on(async {
        // Inside a runtime the blocking stub refuses instead of panicking.
        let inside = match BlockingChannel::direct(&p.local_addr().to_string()) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let r = BlockingUserServiceRpcStub::new(inside.clone()).login(&login("x"));
        assert_eq!(r.err().map(|e| e.code), Some(ErrorCode::Internal));
        // Dropping a runtime inside a runtime panics: hand it to a thread.
        std::thread::spawn(move || drop(inside)).join().ok();
        p.shutdown().await.ok();
    });
}

#[tokio::test]
async fn many_concurrent_calls_share_one_connection() {
    let (p, slow) = slow_provider(support::local_config(), Duration::from_millis(100)).await;
    let stub = UserServiceRpcStub::new(MprpcChannel::direct(&p.local_addr().to_string()));
    let started = Instant::now();
    let calls = (0..500).map(|i| {
        let stub = stub.clone();
        tokio::spawn(async move {
            stub.login(&login(if i % 2 == 0 { "ok" } else { "no" }))
                .await
        })
    });
    let results = futures_util::future::join_all(calls).await;
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Ok(Ok(resp)) => assert_eq!(resp.success, i % 2 == 0),
            other => panic!("call {i}: {other:?}"),
        }
    }
    // 500 calls of 100 ms each finished together: they were in flight at once.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let peers = slow.peers.lock().map(|p| p.len()).unwrap_or(0);
    assert_eq!(peers, 1, "all calls should use one connection");
    p.shutdown().await.ok();
}

/// A descriptor naming a service or method the provider does not have.
static NO_SUCH_SERVICE: ServiceDescriptor =
    ServiceDescriptor::new("NoSuchService", "fixbug.NoSuchService", &["Login"]);
static NO_SUCH_METHOD: ServiceDescriptor =
    ServiceDescriptor::new("UserServiceRpc", "fixbug.UserServiceRpc", &["Logout"]);

#[tokio::test]
async fn every_provider_error_code_reaches_the_caller() {
    let (p, _) = slow_provider(support::local_config(), Duration::from_millis(300)).await;
    let channel = MprpcChannel::direct(&p.local_addr().to_string());
    let ctrl = MprpcController::new();

    let r: Result<LoginResponse, _> = channel
        .call(Some(&ctrl), &NO_SUCH_SERVICE, 0, &login("a"))
        .await;
    assert_eq!(r.err().map(|e| e.code), Some(ErrorCode::UnknownService));
    assert!(
        ctrl.failed() && ctrl.error_text().contains("NoSuchService"),
        "{}",
        ctrl.error_text()
    );

    let r: Result<LoginResponse, _> = channel
        .call(Some(&ctrl), &NO_SUCH_METHOD, 0, &login("a"))
        .await;
    assert_eq!(ctrl.error_code(), ErrorCode::UnknownMethod);
    assert!(ctrl.error_text().contains("Logout") && ctrl.error_text().contains("Login, Register"));
    assert!(r.is_err());

    // A RegisterRequest (field 1 = varint) is not a LoginRequest (field 1 = bytes).
    let r: Result<LoginResponse, _> = channel
        .call(
            Some(&ctrl),
            &USER_SERVICE_RPC_DESCRIPTOR,
            0,
            &RegisterRequest {
                id: 5,
                ..Default::default()
            },
        )
        .await;
    assert_eq!(r.err().map(|e| e.code), Some(ErrorCode::BadRequest));

    let stub = UserServiceRpcStub::new(channel.clone());
    let r = stub.register_with(&ctrl, &RegisterRequest::default()).await;
    assert_eq!(r.err().map(|e| e.code), Some(ErrorCode::HandlerError));
    assert!(ctrl.error_text().contains("id 0 is reserved"));

    ctrl.set_timeout(Duration::from_millis(50));
    let r = stub.login_with(&ctrl, &login("ok")).await;
    assert_eq!(r.err().map(|e| e.code), Some(ErrorCode::DeadlineExceeded));

    // Success clears the recorded failure.
    let r = stub
        .register_with(
            &ctrl,
            &RegisterRequest {
                id: 1,
                ..Default::default()
            },
        )
        .await;
    assert!(r.is_ok() && !ctrl.failed());
    p.shutdown().await.ok();
}

#[tokio::test]
async fn provider_enforces_the_deadline_it_is_sent() {
    let (p, _) = slow_provider(support::local_config(), Duration::from_millis(500)).await;
    // Raw request frame with timeout_ms = 50: the provider itself answers
    // "deadline exceeded" without waiting for the 500 ms handler.
    let mut s = TcpStream::connect(p.local_addr())
        .await
        .ok()
        .unwrap_or_else(|| panic!("connect"));
    let mut out = bytes::BytesMut::from(&mprpc::frame::PREAMBLE[..]);
    mprpc::frame::encode_request(
        &mut out,
        1,
        50,
        "fixbug.UserServiceRpc",
        "Login",
        &login("ok"),
        1 << 20,
    )
    .ok();
    s.write_all(&out).await.ok();
    let started = Instant::now();
    let mut preamble = [0u8; 8];
    s.read_exact(&mut preamble).await.ok();
    assert_eq!(preamble, mprpc::frame::PREAMBLE);
    let mut buf = bytes::BytesMut::new();
    let frame = loop {
        if let Ok(Some(f)) = mprpc::frame::try_decode(&mut buf, 1 << 20) {
            break f;
        }
        match s.read_buf(&mut buf).await {
            Ok(0) | Err(_) => panic!("connection closed"),
            Ok(_) => {}
        }
    };
    assert!(started.elapsed() < Duration::from_millis(400));
    assert!(
        matches!(
            frame,
            mprpc::frame::Frame::Response {
                id: 1,
                code: ErrorCode::DeadlineExceeded,
                ..
            }
        ),
        "{frame:?}"
    );
    // A raw client does not react to goaway: close it, or shutdown would
    // wait out the drain timeout for it.
    drop(s);
    p.shutdown().await.ok();
}

#[tokio::test]
async fn cancel_through_the_controller() {
    let (p, slow) = slow_provider(support::local_config(), Duration::from_secs(5)).await;
    let stub = UserServiceRpcStub::new(MprpcChannel::direct(&p.local_addr().to_string()));
    let ctrl = MprpcController::new();
    let canceller = ctrl.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        canceller.start_cancel();
    });
    let started = Instant::now();
    let r = stub.login_with(&ctrl, &login("ok")).await;
    assert_eq!(r.err().map(|e| e.code), Some(ErrorCode::Cancelled));
    assert!(ctrl.is_canceled() && started.elapsed() < Duration::from_secs(1));
    // The cancel frame made the provider drop the 5 s handler.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(slow.abandoned.load(std::sync::atomic::Ordering::SeqCst), 1);
    p.shutdown().await.ok();
}

#[tokio::test]
async fn in_flight_limit_answers_overloaded() {
    let mut config = support::local_config();
    config.limits.max_in_flight_per_connection = 4;
    let (p, _) = slow_provider(config, Duration::from_millis(200)).await;
    // The caller's own limit is higher, so it does send 20 at once.
    let stub = UserServiceRpcStub::new(MprpcChannel::direct(&p.local_addr().to_string()));
    let calls = (0..20).map(|_| {
        let stub = stub.clone();
        tokio::spawn(async move { stub.login(&login("ok")).await })
    });
    let results = futures_util::future::join_all(calls).await;
    let ok = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
    let overloaded = results
        .iter()
        .filter(|r| matches!(r, Ok(Err(e)) if e.code == ErrorCode::Overloaded))
        .count();
    assert_eq!((ok, overloaded), (4, 16));
    p.shutdown().await.ok();
}

#[tokio::test]
async fn connection_limit_answers_overloaded() {
    let mut config = support::local_config();
    config.limits.max_connections = 1;
    let p = support::demo_provider(config).await;
    let addr = p.local_addr().to_string();
    let first = UserServiceRpcStub::new(MprpcChannel::direct(&addr));
    assert!(first.login(&login("a")).await.is_ok());
    let second = UserServiceRpcStub::new(MprpcChannel::direct(&addr));
    let r = second.login(&login("a")).await;
    let err = r
        .err()
        .unwrap_or_else(|| panic!("second connection should be refused"));
    assert_eq!(err.code, ErrorCode::Overloaded);
    assert!(err.message.contains("max_connections"), "{err}");
    assert!(first.login(&login("a")).await.is_ok());
    p.shutdown().await.ok();
}

#[tokio::test]
async fn huge_length_prefix_gets_a_clear_error_and_provider_survives() {
    let p = support::demo_provider(support::local_config()).await;
    let mut s = match TcpStream::connect(p.local_addr()).await {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    s.write_all(&mprpc::frame::PREAMBLE).await.ok();
    s.write_all(&[0xff, 0xff, 0xff, 0xf0, 1]).await.ok();
    let mut reply = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut reply)).await;
    assert!(matches!(read, Ok(Ok(_))), "connection should be closed");
    assert_eq!(&reply[..8], &mprpc::frame::PREAMBLE);
    let mut rest = bytes::BytesMut::from(&reply[8..]);
    match mprpc::frame::try_decode(&mut rest, 1 << 20) {
        Ok(Some(mprpc::frame::Frame::ConnectionError { code, message })) => {
            assert_eq!(code, ErrorCode::FrameTooLarge);
            assert!(
                message.contains("4294967280") && message.contains("max_frame_size"),
                "{message}"
            );
        }
        other => panic!("expected a connection error frame, got {other:?}"),
    }
    let stub = UserServiceRpcStub::new(MprpcChannel::direct(&p.local_addr().to_string()));
    assert!(stub.login(&login("a")).await.is_ok());
    p.shutdown().await.ok();
}

#[tokio::test]
async fn oversized_request_is_refused_locally() {
    let p = support::demo_provider(support::local_config()).await;
    let mut config = MprpcConfig::default();
    config.limits.max_frame_size = 1024;
    let stub = UserServiceRpcStub::new(MprpcChannel::direct_with(
        &config,
        &p.local_addr().to_string(),
    ));
    let big = LoginRequest {
        name: vec![b'x'; 4096],
        pwd: Vec::new(),
    };
    assert_eq!(
        stub.login(&big).await.err().map(|e| e.code),
        Some(ErrorCode::FrameTooLarge)
    );
    p.shutdown().await.ok();
}

#[tokio::test]
async fn unreachable_provider_is_a_transport_error() {
    // Bind and drop to get a port nobody listens on.
    let addr = match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(a) => a,
        Err(e) => panic!("{e}"),
    };
    let stub = UserServiceRpcStub::new(MprpcChannel::direct(&addr.to_string()));
    let err = stub.login(&login("a")).await.err();
    assert_eq!(err.map(|e| e.code), Some(ErrorCode::Transport));
}

#[tokio::test]
async fn graceful_shutdown_finishes_calls_in_flight() {
    let (p, _) = slow_provider(support::local_config(), Duration::from_millis(300)).await;
    let addr = p.local_addr().to_string();
    let stub = UserServiceRpcStub::new(MprpcChannel::direct(&addr));
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let stub = stub.clone();
            tokio::spawn(async move { stub.login(&login("ok")).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    assert!(p.shutdown().await.is_ok());
    // Shutdown waited for the calls (not for the 10 s drain timeout).
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    for c in calls {
        assert!(
            matches!(c.await, Ok(Ok(_))),
            "a call in flight failed during graceful shutdown"
        );
    }
    // Afterwards nothing listens: new calls fail fast with a transport error.
    assert_eq!(
        stub.login(&login("ok")).await.err().map(|e| e.code),
        Some(ErrorCode::Transport)
    );
}

#[tokio::test]
async fn caller_side_error_codes() {
    // NoProvider: the registry knows no address for the service.
    let empty = MprpcChannel::new(&MprpcConfig::default(), Arc::new(StaticRegistry::default()));
    let r = UserServiceRpcStub::new(empty).login(&login("a")).await;
    let err = r.err().unwrap_or_else(|| panic!("expected NoProvider"));
    assert_eq!(err.code, ErrorCode::NoProvider);
    assert!(err.message.contains("UserServiceRpc"), "{err}");

    // BadResponse: decode the LoginResponse `0a00` as a RegisterRequest
    // (field 1 is a varint there, a message here).
    let p = support::demo_provider(support::local_config()).await;
    let channel = MprpcChannel::direct(&p.local_addr().to_string());
    let r: Result<RegisterRequest, _> = channel
        .call(None, &USER_SERVICE_RPC_DESCRIPTOR, 0, &login("a"))
        .await;
    assert_eq!(r.err().map(|e| e.code), Some(ErrorCode::BadResponse));
    p.shutdown().await.ok();

    // Protocol: something that is not an mprpc provider answers.
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("{e}"),
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tokio::spawn(async move {
        if let Ok((mut s, _)) = listener.accept().await {
            s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await.ok();
        }
    });
    let r = UserServiceRpcStub::new(MprpcChannel::direct(&addr))
        .login(&login("a"))
        .await;
    let err = r.err().unwrap_or_else(|| panic!("expected Protocol"));
    assert_eq!(err.code, ErrorCode::Protocol);
    assert!(err.message.contains("preamble"), "{err}");
}

/// Counts calls per provider for the load-balancing tests.
async fn spread(policy: mprpc::LoadBalance, delays: [Duration; 2]) -> [usize; 2] {
    let mut providers = Vec::new();
    for delay in delays {
        providers.push(slow_provider(support::local_config(), delay).await);
    }
    let addrs: Vec<String> = providers
        .iter()
        .map(|(p, _)| p.local_addr().to_string())
        .collect();
    let mut config = MprpcConfig::default();
    config.load_balance = policy;
    let registry = StaticRegistry::new([("fixbug.UserServiceRpc", addrs)]);
    let stub = UserServiceRpcStub::new(MprpcChannel::new(&config, Arc::new(registry)));
    let workers = (0..16).map(|_| {
        let stub = stub.clone();
        tokio::spawn(async move {
            let until = Instant::now() + Duration::from_millis(600);
            while Instant::now() < until {
                assert!(stub.login(&login("ok")).await.is_ok());
            }
        })
    });
    for w in futures_util::future::join_all(workers).await {
        assert!(w.is_ok(), "a call failed");
    }
    let mut counts = [0; 2];
    for (i, (p, slow)) in providers.into_iter().enumerate() {
        counts[i] = slow.calls.load(std::sync::atomic::Ordering::SeqCst);
        p.shutdown().await.ok();
    }
    counts
}

#[tokio::test]
async fn round_robin_alternates_and_p2c_avoids_the_slow_provider() {
    let even = spread(
        mprpc::LoadBalance::RoundRobin,
        [Duration::from_millis(5); 2],
    )
    .await;
    assert!(even[0].abs_diff(even[1]) <= 16, "round robin: {even:?}");
    // Provider 0 takes 50 ms per call, provider 1 is instant: calls pile up
    // on 0, so power of two choices sends nearly everything to 1.
    let skewed = spread(
        mprpc::LoadBalance::P2c,
        [Duration::from_millis(50), Duration::ZERO],
    )
    .await;
    eprintln!("round robin {even:?}, p2c with one slow provider {skewed:?}");
    assert!(skewed[1] > 10 * skewed[0], "p2c: {skewed:?}");
}

/// A provider that completes the handshake and then answers nothing: the
/// caller's own deadline must end the call (the connection enforces it once
/// the request waits for its response, see `connection::deadlines`) and
/// send a cancel frame for it; calls with later deadlines on the same
/// connection keep waiting until theirs.
#[tokio::test]
async fn caller_deadline_ends_a_call_to_a_silent_provider_and_sends_a_cancel() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("local_addr: {e}"));
    // The silent provider: reads every frame and reports each one.
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        let mut buf = bytes::BytesMut::new();
        if s.write_all(&mprpc::frame::PREAMBLE).await.is_err() {
            return;
        }
        let mut preamble_left = mprpc::frame::PREAMBLE.len();
        loop {
            match s.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if preamble_left > 0 {
                let n = preamble_left.min(buf.len());
                let _ = buf.split_to(n);
                preamble_left -= n;
            }
            while let Ok(Some(f)) = mprpc::frame::try_decode(&mut buf, 1 << 20) {
                let _ = seen_tx.send(f);
            }
        }
    });

    let stub = UserServiceRpcStub::new(MprpcChannel::direct(&addr.to_string()));
    let short = MprpcController::new();
    short.set_timeout(Duration::from_millis(100));
    let long = MprpcController::new();
    long.set_timeout(Duration::from_millis(600));
    let request = login("ok");
    let started = Instant::now();
    let both = async {
        tokio::join!(stub.login_with(&short, &request), async {
            // Sent second, with the later deadline.
            tokio::time::sleep(Duration::from_millis(10)).await;
            stub.login_with(&long, &request).await
        })
    };
    // A deadline nobody enforces would hang here: bound the wait.
    let (r_short, r_long) = tokio::time::timeout(Duration::from_secs(5), both)
        .await
        .unwrap_or_else(|_| panic!("calls to a silent provider outlived their deadlines"));
    let e = r_short
        .err()
        .unwrap_or_else(|| panic!("the silent call succeeded"));
    assert_eq!(e.code, ErrorCode::DeadlineExceeded, "{e}");
    assert!(e.message.contains("took longer than 100ms"), "{e}");
    let e = r_long
        .err()
        .unwrap_or_else(|| panic!("the silent call succeeded"));
    assert_eq!(e.code, ErrorCode::DeadlineExceeded, "{e}");
    assert!(e.message.contains("took longer than 600ms"), "{e}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_millis(1500),
        "{took:?}"
    );

    // Two requests, then a cancel for each.
    let mut requests = Vec::new();
    let mut cancels = Vec::new();
    while cancels.len() < 2 {
        let f = tokio::time::timeout(Duration::from_secs(2), seen.recv())
            .await
            .unwrap_or_else(|_| panic!("no cancel frame within 2 s (got {cancels:?})"))
            .unwrap_or_else(|| panic!("the silent provider went away"));
        match f {
            mprpc::frame::Frame::Request { id, .. } => requests.push(id),
            mprpc::frame::Frame::Cancel { id } => {
                assert!(requests.contains(&id), "cancel for unknown id {id}");
                cancels.push(id);
            }
            other => panic!("unexpected frame {other:?}"),
        }
    }
    assert_eq!(requests.len(), 2);
}
