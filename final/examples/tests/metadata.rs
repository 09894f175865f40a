//! Metadata on real TCP: set on the controller, read by the handler through
//! `CallContext`, answered with response metadata that the controller
//! shows; bounded on both sides; invisible to callers that do not ask for
//! it (the course's preamble without the flag).

mod support;

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use mprpc::frame::{self, Frame};
use mprpc::{
    CallContext, ErrorCode, Metadata, MprpcChannel, MprpcConfig, MprpcController, RunningProvider,
    Status,
};
use mprpc_examples::fixbug::{
    LoginRequest, LoginResponse, RegisterRequest, RegisterResponse, UserServiceRpc,
    UserServiceRpcStub,
};

/// Login answers with what it saw: every request entry comes back as
/// response metadata under `echo-<key>`; Register sets a response entry
/// longer than the provider's limits allow.
struct Echo;

impl UserServiceRpc for Echo {
    async fn login(&self, ctx: CallContext, _: LoginRequest) -> Result<LoginResponse, Status> {
        if let Some(reason) = ctx.metadata.get("x-fail") {
            let mut md = Metadata::new();
            md.insert("retry-after-ms", "250")?;
            return Err(Status::handler(reason.to_string()).with_metadata(md));
        }
        for (k, v) in ctx.metadata.iter() {
            ctx.set_response_metadata(format!("echo-{k}"), v)?;
        }
        Ok(LoginResponse {
            result: None,
            success: ctx.metadata.get("x-user") == Some("zhang san"),
        })
    }

    async fn register(
        &self,
        ctx: CallContext,
        _: RegisterRequest,
    ) -> Result<RegisterResponse, Status> {
        ctx.set_response_metadata("big", "x".repeat(10_000))?;
        Ok(RegisterResponse::default())
    }
}

/// A provider of `Echo` with `config`.
async fn echo_provider(config: MprpcConfig) -> RunningProvider {
    support::user_service_provider(config, Echo).await
}

use support::login;

/// Writes a `Login` request with call id `id` and metadata `md` to `s`.
async fn send_login(s: &mut TcpStream, id: u64, md: &Metadata) {
    let mut out = BytesMut::new();
    let service = "fixbug.UserServiceRpc";
    let ok = frame::encode_request_with_metadata(
        &mut out,
        id,
        0,
        service,
        "Login",
        Some(md),
        &login(),
        1 << 20,
    );
    assert!(ok.is_ok());
    assert!(s.write_all(&out).await.is_ok());
}

#[tokio::test]
async fn metadata_goes_from_controller_to_handler_and_back() {
    let p = echo_provider(support::local_config()).await;
    let stub = UserServiceRpcStub::new(MprpcChannel::direct(&p.local_addr().to_string()));
    let c = MprpcController::new();
    assert!(c.set_metadata("x-user", "zhang san").is_ok());
    assert!(c.set_metadata("x-trace", "4bf92f35").is_ok());
    let r = stub.login_with(&c, &login()).await;
    assert!(matches!(&r, Ok(resp) if resp.success), "{r:?}");
    let md = c.response_metadata();
    assert_eq!(md.get("echo-x-user"), Some("zhang san"));
    assert_eq!(md.get("echo-x-trace"), Some("4bf92f35"));
    assert_eq!(md.len(), 2);
    // A call without metadata answers without any, and says so.
    let plain = MprpcController::new();
    let r = stub.login_with(&plain, &login()).await;
    assert!(matches!(&r, Ok(resp) if !resp.success), "{r:?}");
    assert!(plain.response_metadata().is_empty());
}

/// Keeps its call's context after answering, and sets response metadata
/// through it later: too late for that call, and it must not reach any
/// other (the provider reuses the cells of finished calls).
struct Lingering;

impl UserServiceRpc for Lingering {
    async fn login(&self, ctx: CallContext, _: LoginRequest) -> Result<LoginResponse, Status> {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = ctx.set_response_metadata("late", "yes");
        });
        Ok(LoginResponse::default())
    }

    async fn register(
        &self,
        ctx: CallContext,
        _: RegisterRequest,
    ) -> Result<RegisterResponse, Status> {
        ctx.set_response_metadata("served", "register")?;
        Ok(RegisterResponse::default())
    }
}

#[tokio::test]
async fn metadata_set_after_the_answer_reaches_no_other_call() {
    let p = support::user_service_provider(support::local_config(), Lingering).await;
    let stub = UserServiceRpcStub::new(MprpcChannel::direct(&p.local_addr().to_string()));
    for round in 0..3 {
        let first = MprpcController::new();
        let r = stub.login_with(&first, &login()).await;
        assert!(r.is_ok(), "{r:?}");
        assert!(first.response_metadata().is_empty(), "round {round}");
        // The handler's task sets `late` meanwhile.
        tokio::time::sleep(Duration::from_millis(100)).await;
        for _ in 0..4 {
            let next = MprpcController::new();
            let r = stub.register_with(&next, &RegisterRequest::default()).await;
            assert!(r.is_ok(), "{r:?}");
            let md = next.response_metadata();
            assert_eq!(md.get("served"), Some("register"), "round {round}");
            assert_eq!(md.len(), 1, "round {round}: {md:?}");
        }
    }
}

#[tokio::test]
async fn an_error_carries_its_metadata_to_the_caller() {
    let p = echo_provider(support::local_config()).await;
    let stub = UserServiceRpcStub::new(MprpcChannel::direct(&p.local_addr().to_string()));
    let c = MprpcController::new();
    assert!(c.set_metadata("x-fail", "busy").is_ok());
    let r = stub.login_with(&c, &login()).await;
    match &r {
        Err(s) => {
            assert_eq!(
                (s.code, s.message.as_str()),
                (ErrorCode::HandlerError, "busy")
            );
            assert_eq!(s.metadata.get("retry-after-ms"), Some("250"));
        }
        Ok(_) => panic!("the call succeeded"),
    }
    assert_eq!(c.response_metadata().get("retry-after-ms"), Some("250"));
}

#[tokio::test]
async fn invalid_keys_are_refused_on_the_controller() {
    let c = MprpcController::new();
    for key in ["", "X-Upper", "with space", "ключ"] {
        let r = c.set_metadata(key, "v");
        assert!(
            matches!(&r, Err(s) if s.code == ErrorCode::BadRequest),
            "{key:?}: {r:?}"
        );
    }
    assert!(c.metadata().is_empty());
}

#[tokio::test]
async fn the_caller_refuses_to_send_more_than_its_limits() {
    let p = echo_provider(support::local_config()).await;
    let mut config = support::local_config();
    config.limits.max_metadata_entries = 2;
    let stub = UserServiceRpcStub::new(MprpcChannel::direct_with(
        &config,
        &p.local_addr().to_string(),
    ));
    let c = MprpcController::new();
    for k in ["a", "b", "c"] {
        assert!(c.set_metadata(k, "1").is_ok());
    }
    let r = stub.login_with(&c, &login()).await;
    assert!(
        matches!(&r, Err(s) if s.code == ErrorCode::BadRequest && s.message.contains("max_metadata_entries")),
        "{r:?}"
    );
}

#[tokio::test]
async fn response_metadata_over_the_providers_limit_fails_the_call() {
    let p = echo_provider(support::local_config()).await;
    let stub = UserServiceRpcStub::new(MprpcChannel::direct(&p.local_addr().to_string()));
    let c = MprpcController::new();
    let r = stub.register_with(&c, &RegisterRequest::default()).await;
    assert!(
        matches!(&r, Err(s) if s.code == ErrorCode::HandlerError && s.message.contains("max_metadata_bytes")),
        "{r:?}"
    );
    // The connection is fine afterwards.
    assert!(stub.login(&login()).await.is_ok());
}

/// Opens a raw framed connection with the given preamble flags.
async fn raw(p: &RunningProvider, flags: u8) -> TcpStream {
    let mut s = match TcpStream::connect(p.local_addr()).await {
        Ok(s) => s,
        Err(e) => panic!("connect: {e}"),
    };
    let mut preamble = frame::PREAMBLE;
    preamble[5] = flags;
    assert!(s.write_all(&preamble).await.is_ok());
    let mut theirs = [0u8; 8];
    assert!(s.read_exact(&mut theirs).await.is_ok());
    assert_eq!(theirs[5] & frame::FLAG_METADATA, frame::FLAG_METADATA);
    s
}

/// Reads the next frame.
async fn next_frame(s: &mut TcpStream, buf: &mut BytesMut) -> Frame {
    let read = async {
        loop {
            if let Ok(Some(f)) = frame::try_decode(buf, 1 << 20) {
                return f;
            }
            match s.read_buf(buf).await {
                Ok(0) | Err(_) => panic!("connection closed"),
                Ok(_) => {}
            }
        }
    };
    match tokio::time::timeout(Duration::from_secs(5), read).await {
        Ok(f) => f,
        Err(_) => panic!("no frame within 5 s"),
    }
}

#[tokio::test]
async fn a_caller_without_the_flag_gets_plain_responses() {
    let p = echo_provider(support::local_config()).await;
    let mut md = Metadata::new();
    assert!(md.insert("x-user", "zhang san").is_ok());
    for (flags, want_md) in [(0u8, false), (frame::FLAG_METADATA, true)] {
        let mut s = raw(&p, flags).await;
        send_login(&mut s, 1, &md).await;
        let mut buf = BytesMut::new();
        match next_frame(&mut s, &mut buf).await {
            Frame::Response {
                id: 1,
                code: ErrorCode::Ok,
                metadata,
                payload,
            } => {
                assert_eq!(!metadata.is_empty(), want_md, "flags {flags}");
                let resp: Result<LoginResponse, _> = prost::Message::decode(payload);
                assert!(matches!(resp, Ok(r) if r.success));
            }
            other => panic!("flags {flags}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_malformed_or_oversized_block_fails_that_call_only() {
    let mut config = support::local_config();
    config.limits.max_metadata_entries = 4;
    config.limits.max_metadata_bytes = 128;
    let p = echo_provider(config).await;
    let mut s = raw(&p, frame::FLAG_METADATA).await;
    let body = prost::Message::encode_to_vec(&login());
    // Kind 6 frames by hand: a block whose value runs past its end, a
    // block over 128 bytes, five entries, a duplicate key, bad UTF-8.
    let blocks: [Vec<u8>; 5] = [
        vec![1, b'a', 0, 9, b'x'],
        [vec![3, b'b', b'i', b'g', 0, 200], vec![b'x'; 200]].concat(),
        (0..5u8).flat_map(|i| [1, b'a' + i, 0, 0]).collect(),
        vec![1, b'a', 0, 0, 1, b'a', 0, 0],
        vec![1, b'a', 0, 1, 0xff],
    ];
    for (i, block) in blocks.iter().enumerate() {
        let id = i as u64 + 1;
        let mut out = BytesMut::new();
        let service = b"fixbug.UserServiceRpc";
        let len = 1 + 8 + 4 + 1 + service.len() + 1 + 5 + 2 + block.len() + body.len();
        out.extend_from_slice(&(len as u32).to_be_bytes());
        out.extend_from_slice(&[6]);
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&[service.len() as u8]);
        out.extend_from_slice(service);
        out.extend_from_slice(&[5]);
        out.extend_from_slice(b"Login");
        out.extend_from_slice(&(block.len() as u16).to_be_bytes());
        out.extend_from_slice(block);
        out.extend_from_slice(&body);
        assert!(s.write_all(&out).await.is_ok());
        let mut buf = BytesMut::new();
        match next_frame(&mut s, &mut buf).await {
            Frame::Response {
                id: got,
                code,
                payload,
                ..
            } => {
                assert_eq!((got, code), (id, ErrorCode::BadRequest), "block {i}");
                assert!(
                    String::from_utf8_lossy(&payload).contains("metadata"),
                    "block {i}"
                );
            }
            other => panic!("block {i}: {other:?}"),
        }
    }
    // The same connection still serves a good call.
    let mut md = Metadata::new();
    assert!(md.insert("x-user", "zhang san").is_ok());
    send_login(&mut s, 99, &md).await;
    let mut buf = BytesMut::new();
    let f = next_frame(&mut s, &mut buf).await;
    assert!(
        matches!(
            f,
            Frame::Response {
                id: 99,
                code: ErrorCode::Ok,
                ..
            }
        ),
        "{f:?}"
    );
}
