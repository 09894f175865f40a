//! The provider serves callers speaking the course's original format, byte
//! for byte (captures from the C++ course in proto/captures).

mod support;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use mprpc_examples::fixbug::{LoginRequest, LoginResponse, RegisterRequest};

/// Sends `request` (optionally one byte at a time) and reads to EOF.
async fn exchange(addr: std::net::SocketAddr, request: &[u8], trickle: bool) -> Vec<u8> {
    let mut s = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => panic!("connect: {e}"),
    };
    if trickle {
        for b in request {
            s.write_all(&[*b]).await.ok();
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    } else {
        s.write_all(request).await.ok();
    }
    let mut reply = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut reply)).await;
    assert!(
        matches!(read, Ok(Ok(_))),
        "provider neither answered nor closed"
    );
    reply
}

#[tokio::test]
async fn captured_login_gets_captured_response() {
    let p = support::demo_provider(support::local_config()).await;
    let reply = exchange(p.local_addr(), &support::capture("request.hex"), false).await;
    assert_eq!(reply, support::capture("response.hex"));
    p.shutdown().await.ok();
}

#[tokio::test]
async fn captured_register_gets_captured_response() {
    let p = support::demo_provider(support::local_config()).await;
    let reply = exchange(
        p.local_addr(),
        &support::capture("register_request.hex"),
        false,
    )
    .await;
    assert_eq!(reply, support::capture("register_response.hex"));
    // Same answer for li si, who is not registered either.
    let reply = exchange(
        p.local_addr(),
        &support::capture("login_request_lisi.hex"),
        true,
    )
    .await;
    assert_eq!(reply, support::capture("response.hex"));
    p.shutdown().await.ok();
}

#[test]
fn our_legacy_encoder_produces_the_captured_bytes() {
    let login = LoginRequest {
        name: b"zhang san".to_vec(),
        pwd: b"123456".to_vec(),
    };
    assert_eq!(
        mprpc::legacy::encode_request("UserServiceRpc", "Login", &login),
        support::capture("request.hex")
    );
    let register = RegisterRequest {
        id: 4099,
        name: b"zhang san".to_vec(),
        pwd: b"888888".to_vec(),
    };
    assert_eq!(
        mprpc::legacy::encode_request("UserServiceRpc", "Register", &register),
        support::capture("register_request.hex")
    );
}

#[tokio::test]
async fn legacy_client_helper_and_login_after_register() {
    let p = support::demo_provider(support::local_config()).await;
    let addr = p.local_addr().to_string();
    let register = RegisterRequest {
        id: 1,
        name: b"wang".to_vec(),
        pwd: b"pw".to_vec(),
    };
    let r: Result<mprpc_examples::fixbug::RegisterResponse, _> =
        mprpc::legacy::call(&addr, "UserServiceRpc", "Register", &register, 1024).await;
    assert!(matches!(r, Ok(ref resp) if resp.success));
    let login = LoginRequest {
        name: b"wang".to_vec(),
        pwd: b"pw".to_vec(),
    };
    let r: Result<LoginResponse, _> =
        mprpc::legacy::call(&addr, "UserServiceRpc", "Login", &login, 1024).await;
    assert!(matches!(r, Ok(ref resp) if resp.success));
    p.shutdown().await.ok();
}

#[tokio::test]
async fn legacy_errors_close_instead_of_hanging() {
    let p = support::demo_provider(support::local_config()).await;
    // Unknown method: the course's provider never replied; we close.
    let login = LoginRequest::default();
    let bytes = mprpc::legacy::encode_request("UserServiceRpc", "Logout", &login);
    assert!(exchange(p.local_addr(), &bytes, false).await.is_empty());
    // Absurd header size: refused before allocating, connection closed.
    assert!(
        exchange(p.local_addr(), &[0xff, 0xff, 0xff, 0x0f, 1, 2, 3], false)
            .await
            .is_empty()
    );
    // Provider still serves.
    let reply = exchange(p.local_addr(), &support::capture("request.hex"), false).await;
    assert_eq!(reply, support::capture("response.hex"));
    p.shutdown().await.ok();
}
