//! Interceptors on real TCP: the bearer-token example of
//! `mprpc_examples::auth` on both sides, interceptor order, refusals
//! before any handler runs (framed and course format), and caller-side
//! refusals before anything is sent.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mprpc::{
    CallContext, ClientCall, ErrorCode, MprpcChannel, MprpcController, RunningProvider, ServerCall,
    Status,
};
use mprpc_examples::auth::{AttachBearer, CALLER, RequireBearer};
use mprpc_examples::fixbug::{
    LoginRequest, LoginResponse, RegisterRequest, RegisterResponse, UserServiceRpc,
    UserServiceRpcServer, UserServiceRpcStub,
};

/// Login reports in `errmsg` who the provider says called, and whether the
/// token reached it; counts the calls that reached it.
#[derive(Default)]
struct WhoCalls {
    reached: Arc<AtomicUsize>,
}

impl UserServiceRpc for WhoCalls {
    async fn login(&self, ctx: CallContext, _: LoginRequest) -> Result<LoginResponse, Status> {
        self.reached.fetch_add(1, Ordering::SeqCst);
        let seen = format!(
            "caller={} authorization={} stamp={}",
            ctx.metadata.get(CALLER).unwrap_or("-"),
            ctx.metadata.get("authorization").unwrap_or("-"),
            ctx.metadata.get("stamp").unwrap_or("-"),
        );
        Ok(LoginResponse {
            result: Some(mprpc_examples::fixbug::ResultCode {
                errcode: 0,
                errmsg: seen.into_bytes(),
            }),
            success: true,
        })
    }

    async fn register(
        &self,
        _: CallContext,
        _: RegisterRequest,
    ) -> Result<RegisterResponse, Status> {
        Ok(RegisterResponse::default())
    }
}

/// A provider requiring the token `s3cret` (caller `alice`); the second
/// interceptor runs after the token check and stamps the call.
async fn guarded() -> (RunningProvider, Arc<AtomicUsize>) {
    let service = WhoCalls::default();
    let reached = Arc::clone(&service.reached);
    let mut provider = support::provider(support::local_config());
    provider.notify_service(UserServiceRpcServer::new(service));
    provider.add_interceptor(RequireBearer::new([("alice".into(), "s3cret".into())]));
    provider.add_interceptor(|call: &mut ServerCall| {
        // Sees the caller the first one put there: order is kept.
        let stamp = format!("after-auth:{}", call.metadata.get(CALLER).unwrap_or("none"));
        call.metadata.insert("stamp", stamp)?;
        call.response_metadata.insert("served-by", "guarded")
    });
    (support::start(provider).await, reached)
}

use support::login;

#[tokio::test]
async fn a_known_token_passes_and_the_handler_sees_the_caller_not_the_secret() {
    let (p, reached) = guarded().await;
    let channel = MprpcChannel::direct(&p.local_addr().to_string())
        .with_interceptor(AttachBearer::new("s3cret"));
    let stub = UserServiceRpcStub::new(channel);
    let c = MprpcController::new();
    let r = stub.login_with(&c, &login()).await;
    let seen = r
        .ok()
        .and_then(|r| r.result)
        .map(|rc| String::from_utf8_lossy(&rc.errmsg).into_owned());
    assert_eq!(
        seen.as_deref(),
        Some("caller=alice authorization=- stamp=after-auth:alice")
    );
    assert_eq!(c.response_metadata().get("served-by"), Some("guarded"));
    assert_eq!(reached.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn missing_or_wrong_tokens_are_refused_before_the_handler() {
    let (p, reached) = guarded().await;
    let addr = p.local_addr().to_string();
    let cases = [
        (MprpcChannel::direct(&addr), "no authorization metadata"),
        (
            MprpcChannel::direct(&addr).with_interceptor(AttachBearer::new("guess")),
            "unknown bearer token",
        ),
        (
            MprpcChannel::direct(&addr).with_interceptor(|call: &mut ClientCall| {
                call.metadata.insert("authorization", "Basic czNjcmV0")
            }),
            "unknown bearer token",
        ),
    ];
    for (channel, why) in cases {
        let r = UserServiceRpcStub::new(channel).login(&login()).await;
        assert!(
            matches!(&r, Err(s) if s.code == ErrorCode::Unauthenticated && s.message.contains(why)),
            "{r:?}"
        );
        if let Err(s) = &r {
            assert!(
                !s.message.contains("guess"),
                "the presented token is echoed: {s}"
            );
        }
    }
    assert_eq!(reached.load(Ordering::SeqCst), 0, "a handler ran");
}

#[tokio::test]
async fn a_course_format_call_carries_no_token_and_is_refused() {
    let (p, reached) = guarded().await;
    let (read, reply) = support::course_login_reply(p.local_addr()).await;
    assert!(matches!(read, Ok(Ok(0))), "{read:?}");
    assert!(
        reply.is_empty(),
        "the course's format got an answer: {reply:?}"
    );
    assert_eq!(reached.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_client_interceptor_can_refuse_before_anything_is_sent() {
    // Nothing listens on this address: a refusal must come first.
    let channel = MprpcChannel::direct("127.0.0.1:1").with_interceptor(|call: &mut ClientCall| {
        Err(Status::new(
            ErrorCode::PermissionDenied,
            format!("{}.{} is not allowed from here", call.service, call.method),
        ))
    });
    let c = MprpcController::new();
    let r = UserServiceRpcStub::new(channel)
        .login_with(&c, &login())
        .await;
    assert!(
        matches!(&r, Err(s) if s.code == ErrorCode::PermissionDenied && s.message.contains("fixbug.UserServiceRpc.Login")),
        "{r:?}"
    );
    assert!(c.failed());
    assert_eq!(c.error_code(), ErrorCode::PermissionDenied);
}

#[tokio::test]
async fn interceptors_stack_and_see_the_controllers_metadata() {
    let (p, _) = guarded().await;
    let base = MprpcChannel::direct(&p.local_addr().to_string());
    // The second interceptor sees what the controller and the first set.
    let channel = base
        .with_interceptor(AttachBearer::new("s3cret"))
        .with_interceptor(|call: &mut ClientCall| {
            match (
                call.metadata.get("authorization"),
                call.metadata.get("x-from"),
            ) {
                (Some(_), Some("controller")) => Ok(()),
                _ => Err(Status::new(ErrorCode::Internal, "interceptor order broken")),
            }
        });
    let c = MprpcController::new();
    assert!(c.set_metadata("x-from", "controller").is_ok());
    let r = UserServiceRpcStub::new(channel)
        .login_with(&c, &login())
        .await;
    assert!(r.is_ok(), "{r:?}");
    // `base` kept no interceptor: refused by the provider.
    let r = UserServiceRpcStub::new(base).login(&login()).await;
    assert!(
        matches!(&r, Err(s) if s.code == ErrorCode::Unauthenticated),
        "{r:?}"
    );
}
