//! The built-in health service `mprpc.health.v1.Health` and the admin
//! endpoint's `/healthz` and `/readyz`, over real TCP: per service SERVING
//! or SERVICE_UNKNOWN, NOT_SERVING once shutdown starts draining, and
//! `/readyz` following registration in a real ZooKeeper and the drain.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use mprpc::frame::{self, Frame, PREAMBLE};
use mprpc::health::{HEALTH, HealthCheckRequest, HealthCheckResponse, HealthClient, ServingStatus};
use mprpc::prost::Message;
use mprpc::{ErrorCode, Registry, RpcProvider, RunningProvider, ZkRegistry};
use mprpc_examples::fixbug::UserServiceRpcServer;
use support::zk_server::ZkServer;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn admin(p: &RunningProvider) -> std::net::SocketAddr {
    match p.admin_addr() {
        Some(a) => a,
        None => panic!("no admin endpoint"),
    }
}

// ANCHOR: per_service
#[tokio::test]
async fn the_health_service_answers_per_service_on_the_providers_port() {
    let mut config = support::local_config();
    config.admin.address = Some("127.0.0.1:0".into());
    let p = support::demo_provider(config).await;
    let health = HealthClient::direct(&p.local_addr().to_string());
    let check = |name: &'static str| {
        let health = health.clone();
        async move { health.check(name).await }
    };
    assert_eq!(
        check("fixbug.UserServiceRpc").await,
        Ok(ServingStatus::Serving)
    );
    assert_eq!(
        check("fixbug.FriendServiceRpc").await,
        Ok(ServingStatus::Serving)
    );
    // Empty: the provider as a whole.
    assert_eq!(check("").await, Ok(ServingStatus::Serving));
    assert_eq!(
        check("fixbug.NoSuchService").await,
        Ok(ServingStatus::ServiceUnknown)
    );
    // The course's short name is not a framed service name.
    assert_eq!(
        check("UserServiceRpc").await,
        Ok(ServingStatus::ServiceUnknown)
    );
    // Without a registry to wait for, ready as soon as it serves.
    assert_eq!(
        support::http_get(admin(&p), "/healthz").await.0,
        "HTTP/1.1 200 OK"
    );
    assert_eq!(
        support::http_get(admin(&p), "/readyz").await.0,
        "HTTP/1.1 200 OK"
    );
    // The checks are counted like any call.
    let (_, body) = support::http_get(admin(&p), "/metrics").await;
    assert!(
        body.contains(
            "mprpc_server_calls_total{service=\"mprpc.health.v1.Health\",method=\"Check\"} 5"
        ),
        "{body}"
    );
    p.shutdown().await.ok();
}
// ANCHOR_END: per_service

#[tokio::test]
async fn a_bad_check_request_gets_a_clear_error() {
    let p = support::demo_provider(support::local_config()).await;
    let mut conn = Raw::connect(&p).await;
    // Field 1 announced as 100 bytes long, 1 byte sent: not a message.
    let reply = conn
        .call_bytes(1, HEALTH.full_name, "Check", b"\x0a\x64x")
        .await;
    match reply {
        Frame::Response {
            id: 1,
            code,
            payload,
            ..
        } => {
            assert_eq!(code, ErrorCode::BadRequest);
            let text = String::from_utf8_lossy(&payload);
            assert!(text.contains("HealthCheckRequest"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    let reply = conn.call_bytes(2, HEALTH.full_name, "Watch", b"").await;
    assert!(
        matches!(
            reply,
            Frame::Response {
                id: 2,
                code: ErrorCode::UnknownMethod,
                ..
            }
        ),
        "{reply:?}"
    );
    drop(conn);
    p.shutdown().await.ok();
}

/// A framed connection driven by hand: it stays open through the drain
/// (a raw client does not react to goaway), so it can still ask.
struct Raw {
    stream: TcpStream,
    buf: BytesMut,
}

impl Raw {
    async fn connect(p: &RunningProvider) -> Raw {
        let mut stream = match TcpStream::connect(p.local_addr()).await {
            Ok(s) => s,
            Err(e) => panic!("connect: {e}"),
        };
        assert!(stream.write_all(&PREAMBLE).await.is_ok());
        let mut preamble = [0u8; 8];
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut preamble));
        assert!(matches!(read.await, Ok(Ok(_))));
        assert_eq!(preamble, PREAMBLE);
        Raw {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// The next frame from the provider.
    async fn next(&mut self) -> Frame {
        loop {
            match frame::try_decode(&mut self.buf, 1 << 20) {
                Ok(Some(f)) => return f,
                Ok(None) => {}
                Err(e) => panic!("bad frame: {e:?}"),
            }
            let read =
                tokio::time::timeout(Duration::from_secs(5), self.stream.read_buf(&mut self.buf));
            match read.await {
                Ok(Ok(0)) => panic!("connection closed"),
                Ok(Ok(_)) => {}
                other => panic!("read: {other:?}"),
            }
        }
    }

    /// Sends `payload` as a request and returns the answer (skipping a
    /// goaway that may come first).
    async fn call_bytes(&mut self, id: u64, service: &str, method: &str, payload: &[u8]) -> Frame {
        // A request whose payload is given as bytes: encode an empty
        // message, then patch in the raw payload by re-encoding by hand.
        let mut out = BytesMut::new();
        let raw = RawPayload(payload.to_vec());
        assert!(frame::encode_request(&mut out, id, 5_000, service, method, &raw, 1 << 20).is_ok());
        assert!(self.stream.write_all(&out).await.is_ok());
        loop {
            match self.next().await {
                Frame::GoAway => continue,
                f => return f,
            }
        }
    }

    /// `Check(service)`.
    async fn check(&mut self, id: u64, service: &str) -> ServingStatus {
        let request = HealthCheckRequest {
            service: service.into(),
        };
        match self
            .call_bytes(id, HEALTH.full_name, "Check", &request.encode_to_vec())
            .await
        {
            Frame::Response {
                id: got,
                code: ErrorCode::Ok,
                payload,
                ..
            } if got == id => match HealthCheckResponse::decode(payload) {
                Ok(r) => ServingStatus::try_from(r.status).unwrap_or(ServingStatus::Unknown),
                Err(e) => panic!("bad response: {e}"),
            },
            other => panic!("{other:?}"),
        }
    }
}

/// Bytes sent as they are, as a request "message" (to send what no real
/// message would encode to).
#[derive(Debug, Default, Clone, PartialEq)]
struct RawPayload(Vec<u8>);

impl Message for RawPayload {
    fn encode_raw(&self, buf: &mut impl mprpc::bytes::BufMut) {
        buf.put_slice(&self.0);
    }
    fn merge_field(
        &mut self,
        _: u32,
        _: mprpc::prost::encoding::WireType,
        _: &mut impl mprpc::bytes::Buf,
        _: mprpc::prost::encoding::DecodeContext,
    ) -> Result<(), mprpc::prost::DecodeError> {
        Ok(())
    }
    fn encoded_len(&self) -> usize {
        self.0.len()
    }
    fn clear(&mut self) {
        self.0.clear();
    }
}

// ANCHOR: drain
/// A provider registered in a real ZooKeeper: `/readyz` is 200 once its
/// node is there; when shutdown starts, `/readyz` turns 503, the node goes,
/// and a connection still open is told NOT_SERVING — while `/healthz` (the
/// process is alive) stays 200 until the drain ends.
#[test]
fn drain_turns_health_not_serving_and_readyz_follows() -> TestResult {
    let server = ZkServer::start()?;
    let rt = support::harness::runtime()?;
    rt.block_on(async {
        let registry = Arc::new(
            ZkRegistry::connect(
                &server.addr(),
                "/health",
                Duration::from_secs(4),
                Duration::from_secs(20),
            )
            .await?,
        );
        let mut config = support::local_config();
        config.admin.address = Some("127.0.0.1:0".into());
        config.timeouts.drain_ms = 10_000;
        let mut provider = RpcProvider::new(config).with_registry(registry.clone());
        provider.notify_service(UserServiceRpcServer::new(
            mprpc_examples::UserService::default(),
        ));
        let p = provider.start().await?;
        let admin = admin(&p);
        let list = registry.subscribe("fixbug.UserServiceRpc").await?;
        assert_eq!(list.borrow().len(), 1, "registered: {:?}", list.borrow());
        // The health service itself is not announced.
        let health_list = registry.subscribe(HEALTH.full_name).await?;
        assert!(
            health_list.borrow().is_empty(),
            "{:?}",
            health_list.borrow()
        );
        assert_eq!(
            support::http_get(admin, "/readyz").await.0,
            "HTTP/1.1 200 OK"
        );

        let mut conn = Raw::connect(&p).await;
        assert_eq!(
            conn.check(1, "fixbug.UserServiceRpc").await,
            ServingStatus::Serving
        );

        // The open raw connection keeps the drain going.
        let stopping = tokio::spawn(p.shutdown());
        let started = Instant::now();
        let (status, body) = loop {
            let (status, body) = support::http_get(admin, "/readyz").await;
            if status != "HTTP/1.1 200 OK" || started.elapsed() > Duration::from_secs(5) {
                break (status, body);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(status, "HTTP/1.1 503 Service Unavailable");
        assert!(body.contains("draining"), "{body}");
        assert_eq!(
            conn.check(2, "fixbug.UserServiceRpc").await,
            ServingStatus::NotServing
        );
        assert_eq!(conn.check(3, "").await, ServingStatus::NotServing);
        assert_eq!(
            conn.check(4, "no.Such").await,
            ServingStatus::ServiceUnknown
        );
        assert_eq!(
            support::http_get(admin, "/healthz").await.0,
            "HTTP/1.1 200 OK"
        );
        // Deregistered: the node is gone (the watch delivers it).
        let mut list = list;
        let gone =
            tokio::time::timeout(Duration::from_secs(5), list.wait_for(|l| l.is_empty())).await;
        assert!(matches!(gone, Ok(Ok(_))), "node still there");
        // Closing the last connection ends the drain, and the endpoint.
        drop(conn);
        let stopped = tokio::time::timeout(Duration::from_secs(5), stopping).await;
        assert!(matches!(stopped, Ok(Ok(Ok(())))), "{stopped:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            TcpStream::connect(admin).await.is_err(),
            "admin endpoint still open"
        );
        Ok(())
    })
}
// ANCHOR_END: drain

/// `/readyz` every 50 ms until its status line is `want`, for at most
/// `limit`; the last answer.
fn readyz_until(
    rt: &tokio::runtime::Runtime,
    admin: std::net::SocketAddr,
    want: &str,
    limit: Duration,
) -> (String, String) {
    let started = Instant::now();
    loop {
        let (status, body) = rt.block_on(support::http_get(admin, "/readyz"));
        if status == want || started.elapsed() > limit {
            return (status, body);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ANCHOR: lost_session
/// ZooKeeper stopped for twice the provider's session timeout: `/readyz`
/// turns 503 once the session has been out of touch for its whole timeout
/// (ZooKeeper expires it, and its node with it), while `/healthz` stays 200
/// and the health service still says SERVING (the provider takes calls
/// from whoever knows its address). ZooKeeper back: a new session, the
/// node re-created, and `/readyz` 200 again.
#[test]
fn readyz_follows_the_registration_through_a_lost_session() -> TestResult {
    const SESSION: Duration = Duration::from_secs(2);
    let mut server = ZkServer::start()?;
    let rt = support::harness::runtime()?;
    let (registry, p) = rt.block_on(async {
        let registry = Arc::new(
            ZkRegistry::connect(&server.addr(), "/ready", SESSION, Duration::from_secs(20)).await?,
        );
        let mut config = support::local_config();
        config.admin.address = Some("127.0.0.1:0".into());
        let mut provider = RpcProvider::new(config).with_registry(registry.clone());
        provider.notify_service(UserServiceRpcServer::new(
            mprpc_examples::UserService::default(),
        ));
        Ok::<_, Box<dyn std::error::Error>>((registry, provider.start().await?))
    })?;
    let admin = admin(&p);
    let (status, _) = readyz_until(&rt, admin, "HTTP/1.1 200 OK", Duration::from_secs(5));
    assert_eq!(status, "HTTP/1.1 200 OK");
    let old_session = registry.session_id();

    server.stop()?;
    let stopped = Instant::now();
    let (status, body) = readyz_until(&rt, admin, "HTTP/1.1 503 Service Unavailable", SESSION * 4);
    assert_eq!(status, "HTTP/1.1 503 Service Unavailable", "{body}");
    assert!(body.contains("re-registering"), "{body}");
    // Not before the session timeout: a short blip is no reason.
    assert!(stopped.elapsed() >= SESSION, "{:?}", stopped.elapsed());
    assert_eq!(
        rt.block_on(support::http_get(admin, "/healthz")).0,
        "HTTP/1.1 200 OK"
    );
    let health = HealthClient::direct(&p.local_addr().to_string());
    assert_eq!(rt.block_on(health.check("")), Ok(ServingStatus::Serving));

    // Down for twice the timeout: the old session cannot come back.
    std::thread::sleep((SESSION * 2).saturating_sub(stopped.elapsed()));
    server.restart()?;
    let (status, body) = readyz_until(&rt, admin, "HTTP/1.1 200 OK", Duration::from_secs(30));
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    let new_session = registry.session_id();
    assert_ne!(new_session, old_session, "ready again on the old session");
    // Ready means the node is there again, owned by the new session.
    let node = format!(
        "{}/{}",
        registry.providers_path("fixbug.UserServiceRpc"),
        p.address()
    );
    let owner = rt.block_on(async {
        let zk = mprpc::ZkClient::start(&server.addr(), SESSION).await?;
        Ok::<_, mprpc::zk_client::ZkError>(zk.exists(&node).await?.map(|s| s.ephemeral_owner))
    })?;
    assert_eq!(owner, Some(new_session), "{node}");
    rt.block_on(p.shutdown())?;
    Ok(())
}
// ANCHOR_END: lost_session

/// Login answering `success = self.0`: which provider answered.
struct Marked(bool);

impl mprpc_examples::fixbug::UserServiceRpc for Marked {
    async fn login(
        &self,
        _: mprpc::CallContext,
        _: mprpc_examples::fixbug::LoginRequest,
    ) -> Result<mprpc_examples::fixbug::LoginResponse, mprpc::Status> {
        Ok(mprpc_examples::fixbug::LoginResponse {
            result: None,
            success: self.0,
        })
    }

    async fn register(
        &self,
        _: mprpc::CallContext,
        _: mprpc_examples::fixbug::RegisterRequest,
    ) -> Result<mprpc_examples::fixbug::RegisterResponse, mprpc::Status> {
        Ok(Default::default())
    }
}

/// A provider serving [`Marked`] on `port` of 127.0.0.1 (0: any).
async fn marked(mark: bool, port: u16) -> RunningProvider {
    let mut config = support::local_config();
    config.rpcserverport = port;
    let mut provider = support::provider(config);
    provider.notify_service(UserServiceRpcServer::new(Marked(mark)));
    support::start(provider).await
}

// ANCHOR: readmit
/// A provider that accepts connections and says nothing (a frozen process:
/// the kernel still completes the handshake) misses one call's deadline and
/// is ejected. When `eject_ms` is up the channel does not try it with a
/// real call: it asks `Health/Check` first, on a connection of its own, and
/// the silence keeps it out — no later call fails. Once a real provider
/// answers at that address, the check readmits it and calls reach it.
#[tokio::test]
async fn an_ejected_provider_is_readmitted_only_after_it_answers_a_health_check() -> TestResult {
    let serving = marked(false, 0).await;
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let silent_addr = silent.local_addr()?;
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let holder = tokio::spawn({
        let accepted = Arc::clone(&accepted);
        async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = silent.accept().await {
                accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                held.push(stream);
            }
        }
    });
    let mut config = support::local_config();
    config.timeouts.call_ms = 300;
    config.timeouts.connect_ms = 300;
    config.timeouts.eject_ms = 200;
    let registry = mprpc::StaticRegistry::new([(
        "fixbug.UserServiceRpc",
        vec![serving.local_addr().to_string(), silent_addr.to_string()],
    )]);
    let stub = mprpc_examples::fixbug::UserServiceRpcStub::new(mprpc::MprpcChannel::new(
        &config,
        Arc::new(registry),
    ));
    let login = mprpc_examples::fixbug::LoginRequest::default();

    // Until a call lands on the silent one and misses its deadline.
    let mut missed = false;
    for _ in 0..50 {
        if let Err(e) = stub.login(&login).await {
            assert_eq!(e.code, ErrorCode::DeadlineExceeded, "{e}");
            missed = true;
            break;
        }
    }
    assert!(missed, "no call reached the silent provider");
    let before = accepted.load(std::sync::atomic::Ordering::SeqCst);

    // Seven ejection periods: every call succeeds, on the serving one.
    let started = Instant::now();
    let mut calls = 0;
    while started.elapsed() < Duration::from_millis(1400) {
        let reply = stub.login(&login).await;
        assert!(
            matches!(&reply, Ok(r) if !r.success),
            "call {calls}: {reply:?}"
        );
        calls += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // It was asked, again and again, on connections of their own.
    let asked = accepted.load(std::sync::atomic::Ordering::SeqCst) - before;
    assert!(asked >= 2, "{asked} health-check connections in 1.4 s");

    // A real provider at that address now: the next check readmits it.
    holder.abort();
    let _ = holder.await;
    let back = marked(true, silent_addr.port()).await;
    let started = Instant::now();
    let reached = loop {
        if matches!(stub.login(&login).await, Ok(r) if r.success) {
            break true;
        }
        if started.elapsed() > Duration::from_secs(5) {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(
        reached,
        "the provider back at {silent_addr} was never readmitted"
    );
    back.shutdown().await.ok();
    serving.shutdown().await.ok();
    Ok(())
}
// ANCHOR_END: readmit
