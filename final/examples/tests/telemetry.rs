//! Metrics on real TCP: the Prometheus text on the admin address, scraped
//! over HTTP, counting calls, errors by code, calls in flight, latencies
//! and connections — bounded against hostile scrapers. (Spans are tested
//! in `spans.rs`.)

mod support;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use mprpc::{MprpcChannel, MprpcConfig, RunningProvider};
use mprpc_examples::fixbug::{LoginRequest, RegisterRequest, UserServiceRpcStub};

/// A provider of [`RegistrationsClosed`](support::RegistrationsClosed):
/// Login succeeds (slowly for `slow`), Register fails.
async fn provider(config: MprpcConfig) -> RunningProvider {
    support::user_service_provider(config, support::RegistrationsClosed).await
}

use support::login;

/// `GET path` on the admin endpoint: (status line, body).
async fn get(p: &RunningProvider, request: &str) -> (String, String) {
    let Some(addr) = p.admin_addr() else {
        panic!("no admin endpoint")
    };
    support::http_exchange(addr, request).await
}

/// A connection of its own to `p`, on which the preamble and one request
/// of `fixbug.UserServiceRpc/method` (call id 1, no deadline) were sent.
async fn raw_request(
    p: &RunningProvider,
    method: &str,
    message: &impl prost::Message,
) -> TcpStream {
    let mut s = match TcpStream::connect(p.local_addr()).await {
        Ok(s) => s,
        Err(e) => panic!("connect: {e}"),
    };
    let mut out = bytes::BytesMut::from(&mprpc::frame::PREAMBLE[..]);
    let service = "fixbug.UserServiceRpc";
    let ok = mprpc::frame::encode_request(&mut out, 1, 0, service, method, message, 1 << 20);
    assert!(ok.is_ok());
    assert!(s.write_all(&out).await.is_ok());
    s
}

/// The value of the sample line that starts with `series` (name and labels).
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

// ANCHOR: scrape
#[tokio::test]
async fn the_admin_endpoint_serves_prometheus_text() {
    let mut config = support::local_config();
    config.admin.address = Some("127.0.0.1:0".into());
    let p = provider(config).await;
    let stub = UserServiceRpcStub::new(MprpcChannel::direct(&p.local_addr().to_string()));
    for _ in 0..5 {
        assert!(stub.login(&login()).await.is_ok());
    }
    for _ in 0..2 {
        assert!(stub.register(&RegisterRequest::default()).await.is_err());
    }
    let (status, body) = get(&p, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let login = r#"{service="fixbug.UserServiceRpc",method="Login""#;
    let register = r#"{service="fixbug.UserServiceRpc",method="Register""#;
    assert_eq!(
        sample(&body, &format!("mprpc_server_calls_total{login}}}")),
        Some(5.0),
        "{body}"
    );
    assert_eq!(
        sample(&body, &format!("mprpc_server_calls_total{register}}}")),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &body,
            &format!("mprpc_server_errors_total{register},code=\"handler_error\"}}")
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(&body, &format!("mprpc_server_in_flight{login}}}")),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &body,
            &format!("mprpc_server_call_duration_seconds_bucket{login},le=\"+Inf\"}}")
        ),
        Some(5.0)
    );
    assert_eq!(
        sample(
            &body,
            &format!("mprpc_server_call_duration_seconds_count{login}}}")
        ),
        Some(5.0)
    );
    assert!(
        sample(
            &body,
            &format!("mprpc_server_call_duration_seconds_sum{login}}}")
        )
        .is_some_and(|s| s > 0.0)
    );
    assert_eq!(sample(&body, "mprpc_server_connections_open"), Some(1.0));
    assert_eq!(sample(&body, "mprpc_server_connections_total"), Some(1.0));
    assert!(body.contains("# TYPE mprpc_server_call_duration_seconds histogram"));
}
// ANCHOR_END: scrape

#[tokio::test]
async fn refusals_count_under_fixed_labels_and_connections_close() {
    let mut config = support::local_config();
    config.admin.address = Some("127.0.0.1:0".into());
    let p = provider(config).await;
    {
        // A raw call of a method that does not exist: counted as refused,
        // never as a label made from the caller's bytes.
        let mut s = raw_request(&p, "Nope", &login()).await;
        let mut buf = vec![0u8; 256];
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await;
    }
    // The raw connection closed: once the provider has seen that, none is
    // open (the scrape itself is not counted).
    let mut body = String::new();
    for _ in 0..40 {
        body = get(&p, "GET /metrics HTTP/1.0\r\n\r\n").await.1;
        if sample(&body, "mprpc_server_connections_open") == Some(0.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        sample(&body, "mprpc_server_connections_open"),
        Some(0.0),
        "{body}"
    );
    assert_eq!(
        sample(&body, "mprpc_server_refused_total{code=\"unknown_method\"}"),
        Some(1.0),
        "{body}"
    );
    assert!(!body.contains("Nope"));
}

#[tokio::test]
async fn calls_cancelled_or_cut_off_leave_the_in_flight_gauge() {
    let mut config = support::local_config();
    config.admin.address = Some("127.0.0.1:0".into());
    let p = provider(config).await;
    let slow = LoginRequest {
        name: b"slow".to_vec(),
        pwd: Vec::new(),
    };
    let series = r#"{service="fixbug.UserServiceRpc",method="Login"}"#;
    // Waits until the gauge reads `want`; returns the last page.
    let gauge_at = |want: f64| {
        let p = &p;
        async move {
            let mut body = String::new();
            for _ in 0..100 {
                body = get(p, "GET /metrics HTTP/1.1\r\n\r\n").await.1;
                if sample(&body, &format!("mprpc_server_in_flight{series}")) == Some(want) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            body
        }
    };
    for cut_off in [false, true] {
        let mut s = raw_request(&p, "Login", &slow).await;
        let body = gauge_at(1.0).await;
        assert_eq!(
            sample(&body, &format!("mprpc_server_in_flight{series}")),
            Some(1.0),
            "{body}"
        );
        if cut_off {
            // Reset, not a half-close: the provider's connection ends with
            // the call still running.
            let _ = s.set_zero_linger();
            drop(s);
        } else {
            let mut cancel = bytes::BytesMut::new();
            mprpc::frame::encode_cancel(&mut cancel, 1);
            assert!(s.write_all(&cancel).await.is_ok());
        }
        let body = gauge_at(0.0).await;
        assert_eq!(
            sample(&body, &format!("mprpc_server_in_flight{series}")),
            Some(0.0),
            "cut off {cut_off}: {body}"
        );
    }
    let (_, body) = get(&p, "GET /metrics HTTP/1.1\r\n\r\n").await;
    assert_eq!(
        sample(&body, &format!("mprpc_server_cancelled_total{series}")),
        Some(2.0),
        "{body}"
    );
}

#[tokio::test]
async fn the_admin_endpoint_answers_bad_requests_and_is_bounded() {
    let mut config = support::local_config();
    config.admin.address = Some("127.0.0.1:0".into());
    let p = provider(config).await;
    let (status, _) = get(&p, "GET /vars HTTP/1.1\r\n\r\n").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, _) = get(&p, "POST /metrics HTTP/1.1\r\n\r\n").await;
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
    let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
    let (status, _) = get(&p, &huge).await;
    assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large");
}

// ANCHOR: silent_scrapers
/// Connections that never send a request cannot keep a scrape out: when
/// all 16 slots are taken the oldest silent one is closed to make room,
/// and every silent one is closed after 1 s without a request head.
#[tokio::test]
async fn silent_connections_cannot_keep_a_scrape_out() {
    let mut config = support::local_config();
    config.admin.address = Some("127.0.0.1:0".into());
    let p = provider(config).await;
    let Some(addr) = p.admin_addr() else {
        panic!("no admin endpoint")
    };
    let opened = std::time::Instant::now();
    let mut silent = Vec::new();
    for _ in 0..40 {
        match TcpStream::connect(addr).await {
            Ok(s) => silent.push(s),
            Err(e) => panic!("connect: {e}"),
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let asked = std::time::Instant::now();
    let (status, body) = get(&p, "GET /metrics HTTP/1.1\r\n\r\n").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.contains("mprpc_server_connections_open"), "{body}");
    let took = asked.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "scrape answered after {took:?}"
    );
    // The oldest were closed to make room at once, the newest within 1 s
    // (plus scheduling) of being opened.
    let mut byte = [0u8; 1];
    for (i, s) in silent.iter_mut().enumerate() {
        let closed = tokio::time::timeout(Duration::from_secs(2), s.read(&mut byte)).await;
        assert!(
            matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
            "silent #{i}: {closed:?}"
        );
    }
    let all_closed = opened.elapsed();
    assert!(
        all_closed >= Duration::from_millis(900) && all_closed < Duration::from_millis(1_900),
        "the last silent connection closed after {all_closed:?}"
    );
}
// ANCHOR_END: silent_scrapers

#[tokio::test]
async fn without_an_admin_address_nothing_listens() {
    let p = provider(support::local_config()).await;
    assert_eq!(p.admin_addr(), None);
}
