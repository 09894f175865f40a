//! Providers in the test's own process, over real TCP on 127.0.0.1, and the
//! requests and captures the tests send them. (Providers that must be
//! killed or measured from outside run as children: `provider_process`,
//! `callee_process`.)

// Every test binary uses a different part of this helper.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use mprpc::{CallContext, MprpcConfig, RpcProvider, RunningProvider, StaticRegistry, Status};
use mprpc_examples::fixbug::{
    FriendServiceRpcServer, LoginRequest, LoginResponse, RegisterRequest, RegisterResponse,
    UserServiceRpc, UserServiceRpcServer,
};

/// Config for a provider on 127.0.0.1, any free port.
pub fn local_config() -> MprpcConfig {
    let mut config = MprpcConfig::default();
    config.rpcserverport = 0;
    config
}

/// A provider with `config` and no discovery, for the test to add its
/// services and interceptors to before [`start`].
pub fn provider(config: MprpcConfig) -> RpcProvider {
    RpcProvider::new(config).with_registry(Arc::new(StaticRegistry::default()))
}

/// Starts `provider`; a provider that cannot start fails the test, saying why.
pub async fn start(provider: RpcProvider) -> RunningProvider {
    match provider.start().await {
        Ok(p) => p,
        Err(e) => panic!("provider failed to start: {e}"),
    }
}

/// Starts a provider with the demo services and no discovery.
pub async fn demo_provider(config: MprpcConfig) -> RunningProvider {
    let mut provider = provider(config);
    provider.notify_service(UserServiceRpcServer::new(
        mprpc_examples::UserService::default(),
    ));
    provider.notify_service(FriendServiceRpcServer::new(mprpc_examples::FriendService));
    start(provider).await
}

/// Starts a provider of `service` (as `UserServiceRpc`) and no discovery.
pub async fn user_service_provider(
    config: MprpcConfig,
    service: impl UserServiceRpc,
) -> RunningProvider {
    let mut provider = provider(config);
    provider.notify_service(UserServiceRpcServer::new(service));
    start(provider).await
}

/// The course's login request: zhang san, 123456.
pub fn login() -> LoginRequest {
    LoginRequest {
        name: b"zhang san".to_vec(),
        pwd: b"123456".to_vec(),
    }
}

/// A `UserServiceRpc` whose Login succeeds (after 30 s for the user
/// `slow`, a call to leave in flight) and whose Register always fails with
/// a handler error: one call of each outcome for the metrics and spans.
pub struct RegistrationsClosed;

impl UserServiceRpc for RegistrationsClosed {
    async fn login(&self, _: CallContext, req: LoginRequest) -> Result<LoginResponse, Status> {
        if req.name == b"slow" {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        Ok(LoginResponse::default())
    }

    async fn register(
        &self,
        _: CallContext,
        _: RegisterRequest,
    ) -> Result<RegisterResponse, Status> {
        Err(Status::handler("registrations are closed"))
    }
}

/// What came back for the course's captured Login request ("zhang san",
/// "123456") sent on a new connection to `addr`: the last read, once the
/// provider closed the connection or 5 s passed, and every byte received.
pub async fn course_login_reply(
    addr: SocketAddr,
) -> (
    Result<std::io::Result<usize>, tokio::time::error::Elapsed>,
    Vec<u8>,
) {
    let mut s = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => panic!("connect: {e}"),
    };
    assert!(s.write_all(&capture("request.hex")).await.is_ok());
    let mut reply = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut reply)).await;
    (read, reply)
}

/// `<repo>/proto/captures`: the course's bytes (the shared harness's).
pub fn captures_dir() -> PathBuf {
    testkit::captures_dir()
}

/// Bytes of a capture file, named with its extension ("request.hex").
pub fn capture(name: &str) -> Vec<u8> {
    testkit::capture(name.trim_end_matches(".hex"))
}

/// `GET path` over HTTP/1.1 on `addr` (an admin endpoint): the status line
/// and the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    http_exchange(addr, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")).await
}

/// Sends `request` (any bytes, well-formed HTTP or not) to the admin
/// endpoint at `addr` and reads to the end: the status line and the body.
pub async fn http_exchange(addr: SocketAddr, request: &str) -> (String, String) {
    let mut s = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => panic!("connect to the admin endpoint: {e}"),
    };
    assert!(s.write_all(request.as_bytes()).await.is_ok());
    let mut text = String::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut text)).await;
    assert!(matches!(read, Ok(Ok(_))), "{read:?}");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head.lines().next().unwrap_or_default().to_string(),
        body.to_string(),
    )
}

/// The value of the Prometheus sample line that starts with `series`
/// (name and labels).
pub fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}
