//! The caller's metrics over real TCP: a caller-only program's admin
//! endpoint (`MprpcApplication::start_admin`) counts calls per method and
//! code, and attempts per provider address — including one that refuses
//! connections and is ejected.
//!
//! One test in this file on purpose: client metrics are process-wide, and
//! another test's calls would change the counts.

mod support;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;

use mprpc::{LoadBalance, MprpcApplication, MprpcChannel, StaticRegistry};
use mprpc_examples::fixbug::{
    FriendServiceRpcStub, GetFriendsListRequest, LoginRequest, RegisterRequest, UserServiceRpcStub,
};

// ANCHOR: test
#[tokio::test]
async fn client_metrics_count_calls_per_provider_including_an_ejected_one() {
    // Off until an endpoint (or the program) turns them on.
    assert_eq!(mprpc::metrics::client_metrics_text(), "");
    let a = support::demo_provider(support::local_config()).await;
    let b = support::demo_provider(support::local_config()).await;
    // A port nobody listens on: connecting is refused, the call goes to
    // another provider, and this address is ejected.
    let dead = format!("127.0.0.1:{}", testkit::net::free_port().unwrap_or(1));
    let (a_addr, b_addr) = (a.local_addr().to_string(), b.local_addr().to_string());
    let mut config = support::local_config();
    config.admin.address = Some("127.0.0.1:0".into());
    config.load_balance = LoadBalance::RoundRobin;
    let endpoint = match MprpcApplication::start_admin(&config).await {
        Ok(Some(e)) => e,
        other => panic!("admin endpoint: {other:?}"),
    };
    let registry = StaticRegistry::new([(
        "fixbug.UserServiceRpc",
        vec![dead.clone(), a_addr.clone(), b_addr.clone()],
    )]);
    let stub_channel = MprpcChannel::new(&config, Arc::new(registry));
    let stub = UserServiceRpcStub::new(stub_channel.clone());
    let login = LoginRequest {
        name: b"zhang san".to_vec(),
        pwd: b"123456".to_vec(),
    };
    for _ in 0..9 {
        assert!(stub.login(&login).await.is_ok());
    }
    assert!(stub.register(&RegisterRequest::default()).await.is_ok());
    // A service the registry has no provider for: counted by its code.
    let friends = FriendServiceRpcStub::new(stub_channel.clone());
    let none = friends
        .get_friends_list(&GetFriendsListRequest::default())
        .await;
    assert!(none.is_err());

    let addr = endpoint.local_addr();
    assert_eq!(
        support::http_get(addr, "/healthz").await.0,
        "HTTP/1.1 200 OK"
    );
    assert_eq!(
        support::http_get(addr, "/readyz").await.0,
        "HTTP/1.1 200 OK"
    );
    let (status, body) = support::http_get(addr, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let login_ok =
        r#"mprpc_client_calls_total{service="fixbug.UserServiceRpc",method="Login",code="ok"}"#;
    assert_eq!(support::sample(&body, login_ok), Some(9.0), "{body}");
    let count = r#"mprpc_client_call_duration_seconds_count{service="fixbug.UserServiceRpc",method="Login"}"#;
    assert_eq!(support::sample(&body, count), Some(9.0), "{body}");
    let register_ok =
        r#"mprpc_client_calls_total{service="fixbug.UserServiceRpc",method="Register",code="ok"}"#;
    assert_eq!(support::sample(&body, register_ok), Some(1.0), "{body}");
    let no_provider = r#"mprpc_client_calls_total{service="fixbug.FriendServiceRpc",method="GetFriendsList",code="no_provider"}"#;
    assert_eq!(support::sample(&body, no_provider), Some(1.0), "{body}");
    // Per provider: the two live ones share the ten calls; the dead one
    // was tried (once: then ejected and skipped) and is ejected now.
    let ok = |p: &str| {
        support::sample(
            &body,
            &format!("mprpc_client_provider_calls_total{{provider=\"{p}\",code=\"ok\"}}"),
        )
        .unwrap_or(0.0)
    };
    let (on_a, on_b) = (ok(&a_addr), ok(&b_addr));
    assert_eq!(on_a + on_b, 10.0, "{body}");
    assert!(
        on_a >= 3.0 && on_b >= 3.0,
        "round-robin over both: {on_a} / {on_b}\n{body}"
    );
    let refused = format!(
        "mprpc_client_provider_calls_total{{provider=\"{dead}\",code=\"transport_error\"}}"
    );
    assert_eq!(support::sample(&body, &refused), Some(1.0), "{body}");
    let ejected = |p: &str| {
        support::sample(
            &body,
            &format!("mprpc_client_provider_ejected{{provider=\"{p}\"}}"),
        )
    };
    assert_eq!(ejected(&dead), Some(1.0), "{body}");
    assert_eq!(ejected(&a_addr), Some(0.0), "{body}");
    assert_eq!(ejected(&b_addr), Some(0.0), "{body}");
    // The same text for a program serving it on its own endpoint.
    assert!(mprpc::metrics::client_metrics_text().contains(&refused));

    // The endpoint stops with its handle.
    drop(endpoint);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "admin endpoint still open"
    );
    a.shutdown().await.ok();
    b.shutdown().await.ok();
}
// ANCHOR_END: test
