//! TLS on real TCP with certificates made at test time (testkit's
//! `TestPki`, rcgen): calls over TLS, verification against the CA file,
//! mutual TLS, and what happens to callers that do not fit — plaintext
//! callers, the course's format, a caller trusting another CA, a silent
//! client in the handshake, bad files and forbidden combinations.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use mprpc::{ErrorCode, MprpcChannel, MprpcConfig, RpcProvider, RunningProvider, StaticRegistry};
use mprpc_examples::fixbug::{LoginRequest, UserServiceRpcServer, UserServiceRpcStub};
use testkit::TestPki;

fn pki() -> TestPki {
    TestPki::new().unwrap_or_else(|e| panic!("{e}"))
}

/// A provider of the demo UserService with TLS from `pki` (and mutual TLS
/// when `mutual`).
async fn tls_provider(pki: &TestPki, mutual: bool) -> RunningProvider {
    let mut config = support::local_config();
    config.tls.cert = Some(pki.path("provider.pem"));
    config.tls.key = Some(pki.path("provider.key"));
    if mutual {
        config.tls.client_ca = Some(pki.path("ca.pem"));
    }
    config.timeouts.handshake_ms = 500;
    match start(config).await {
        Ok(p) => p,
        Err(e) => panic!("provider failed to start: {e}"),
    }
}

async fn start(config: MprpcConfig) -> Result<RunningProvider, mprpc::Error> {
    let mut provider = RpcProvider::new(config).with_registry(Arc::new(StaticRegistry::default()));
    provider.notify_service(UserServiceRpcServer::new(
        mprpc_examples::UserService::default(),
    ));
    provider.start().await
}

/// A caller config trusting `ca` (a file of `pki`).
fn caller(pki: &TestPki, ca: &str) -> MprpcConfig {
    let mut config = MprpcConfig::default();
    config.tls.ca = Some(pki.path(ca));
    config
}

fn login() -> LoginRequest {
    LoginRequest {
        name: b"zhang san".to_vec(),
        pwd: b"123456".to_vec(),
    }
}

/// Calls Login through a channel built from `config` to `p`.
async fn call(config: &MprpcConfig, p: &RunningProvider) -> Result<(), mprpc::Status> {
    let channel = MprpcChannel::direct_with(config, &p.local_addr().to_string());
    UserServiceRpcStub::new(channel)
        .login(&login())
        .await
        .map(|_| ())
}

#[tokio::test]
async fn calls_go_over_tls_verified_against_the_ca() {
    let pki = pki();
    let p = tls_provider(&pki, false).await;
    let config = caller(&pki, "ca.pem");
    // Several calls on the one (multiplexed) TLS connection.
    let stub = UserServiceRpcStub::new(MprpcChannel::direct_with(
        &config,
        &p.local_addr().to_string(),
    ));
    let request = login();
    let calls = (0..50).map(|_| stub.login(&request));
    for r in futures_util::future::join_all(calls).await {
        assert!(r.is_ok(), "{r:?}");
    }
    // The certificate names "localhost" too.
    let mut by_name = caller(&pki, "ca.pem");
    by_name.tls.server_name = Some("localhost".into());
    assert!(call(&by_name, &p).await.is_ok());
}

#[tokio::test]
async fn a_caller_trusting_another_ca_or_name_is_refused() {
    let pki = pki();
    let p = tls_provider(&pki, false).await;
    let r = call(&caller(&pki, "other-ca.pem"), &p).await;
    assert!(
        matches!(&r, Err(s) if s.code == ErrorCode::Transport && s.message.contains("TLS handshake")),
        "{r:?}"
    );
    let mut wrong_name = caller(&pki, "ca.pem");
    wrong_name.tls.server_name = Some("provider.example.com".into());
    let r = call(&wrong_name, &p).await;
    assert!(
        matches!(&r, Err(s) if s.code == ErrorCode::Transport),
        "{r:?}"
    );
}

#[tokio::test]
async fn a_plaintext_caller_fails_fast_on_a_tls_port() {
    let pki = pki();
    let p = tls_provider(&pki, false).await;
    let started = Instant::now();
    let r = call(&MprpcConfig::default(), &p).await;
    assert!(
        matches!(&r, Err(s) if s.code == ErrorCode::Transport),
        "{r:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn the_course_format_gets_no_answer_on_a_tls_port() {
    let pki = pki();
    let p = tls_provider(&pki, false).await;
    let (read, reply) = support::course_login_reply(p.local_addr()).await;
    // Closed; whatever came back is a TLS alert, never a response.
    assert!(
        matches!(read, Ok(Ok(_)) | Ok(Err(_))),
        "still open after 5 s"
    );
    assert!(reply.len() < 16, "{reply:?}");
}

#[tokio::test]
async fn a_silent_client_is_dropped_after_the_handshake_deadline() {
    let pki = pki();
    let p = tls_provider(&pki, false).await;
    let mut s = match TcpStream::connect(p.local_addr()).await {
        Ok(s) => s,
        Err(e) => panic!("connect: {e}"),
    };
    let started = Instant::now();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), s.read(&mut byte)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[tokio::test]
async fn mutual_tls_needs_a_client_certificate_from_the_ca() {
    let pki = pki();
    let p = tls_provider(&pki, true).await;
    // Without a client certificate: refused. (TLS 1.3 lets the client
    // finish its handshake before the provider's verdict arrives, so the
    // refusal may surface on the call rather than the connect.)
    let r = call(&caller(&pki, "ca.pem"), &p).await;
    assert!(
        matches!(&r, Err(s) if s.code == ErrorCode::Transport),
        "{r:?}"
    );
    // With one signed by the CA: served.
    let mut with_cert = caller(&pki, "ca.pem");
    with_cert.tls.client_cert = Some(pki.path("client.pem"));
    with_cert.tls.client_key = Some(pki.path("client.key"));
    let r = call(&with_cert, &p).await;
    assert!(r.is_ok(), "{r:?}");
}

#[tokio::test]
async fn bad_files_and_combinations_are_errors_not_plaintext() {
    let pki = pki();
    // A provider whose certificate file is missing does not start.
    let mut config = support::local_config();
    config.tls.cert = Some(pki.path("missing.pem"));
    config.tls.key = Some(pki.path("provider.key"));
    let r = start(config).await;
    assert!(
        matches!(&r, Err(mprpc::Error::Config(m)) if m.contains("tls.cert")),
        "{r:?}"
    );
    // A key that is not a key.
    let mut config = support::local_config();
    config.tls.cert = Some(pki.path("provider.pem"));
    config.tls.key = Some(pki.path("ca.pem"));
    assert!(matches!(start(config).await, Err(mprpc::Error::Config(_))));
    // Half a pair, or TLS with the course's registration, is refused by
    // the config's own validation.
    for text in [
        "[tls]\ncert = \"a.pem\"\n",
        "[tls]\nclient_cert = \"c.pem\"\nclient_key = \"c.key\"\n",
        "zookeeperip = \"127.0.0.1\"\n[course_compat]\nregister = true\n[tls]\ncert = \"a.pem\"\nkey = \"a.key\"\n",
    ] {
        assert!(MprpcConfig::from_toml(text).is_err(), "{text}");
    }
    // A caller whose CA file is missing fails every call, and never falls
    // back to plaintext (the provider here is plaintext and would answer).
    let plain = support::demo_provider(support::local_config()).await;
    let mut config = MprpcConfig::default();
    config.tls.ca = Some(pki.path("missing-ca.pem"));
    let r = call(&config, &plain).await;
    assert!(
        matches!(&r, Err(s) if s.code == ErrorCode::Internal && s.message.contains("tls.ca")),
        "{r:?}"
    );
    assert!(MprpcChannel::from_config(&config).await.is_err());
}
