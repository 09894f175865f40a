//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use mprpc::{MprpcConfig, RpcProvider, RunningProvider, StaticRegistry};
use mprpc_examples::fixbug::{FriendServiceRpcServer, UserServiceRpcServer};

/// Config for a provider on 127.0.0.1, any free port.
pub fn local_config() -> MprpcConfig {
    let mut config = MprpcConfig::default();
    config.rpcserverport = 0;
    config
}

/// Starts a provider with the demo services and no discovery.
pub async fn demo_provider(config: MprpcConfig) -> RunningProvider {
    let mut provider = RpcProvider::new(config).with_registry(Arc::new(StaticRegistry::default()));
    provider.notify_service(UserServiceRpcServer::new(
        mprpc_examples::UserService::default(),
    ));
    provider.notify_service(FriendServiceRpcServer::new(mprpc_examples::FriendService));
    match provider.start().await {
        Ok(p) => p,
        Err(e) => panic!("provider failed to start: {e}"),
    }
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
    let mut s = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => panic!("connect to the admin endpoint: {e}"),
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
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
