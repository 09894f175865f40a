//! Trace propagation across three processes over TCP: A calls B, whose
//! handler calls C (`examples/trace_hop.rs`). Every span shares one trace
//! id, and each names its parent: A's `rpc.client` is the root, B's
//! `rpc.server` is its child, B's `rpc.client` (made inside B's handler) is
//! the child of B's `rpc.server`, and C's `rpc.server` the child of that.
//! And in one process: the context reaches the handler, and never fails a
//! call (a malformed one is replaced, one without room is left out).

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mprpc::trace::{TRACEPARENT, TraceContext};
use mprpc::{CallContext, MprpcChannel, MprpcController, RpcProvider, StaticRegistry, Status};
use mprpc_examples::fixbug::{
    LoginRequest, LoginResponse, RegisterRequest, RegisterResponse, UserServiceRpc,
    UserServiceRpcServer, UserServiceRpcStub,
};
use testkit::process::{ChildProcess, Target, cargo_build};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// One printed span: its name and fields.
#[derive(Debug)]
struct Span {
    name: String,
    fields: HashMap<String, String>,
}

impl Span {
    fn get(&self, key: &str) -> &str {
        self.fields.get(key).map_or("", String::as_str)
    }
}

/// The `SPAN …` lines a hop printed.
fn spans(output: &str) -> Vec<Span> {
    output
        .lines()
        .filter_map(|l| l.strip_prefix("SPAN "))
        .map(|l| {
            let mut words = l.split(' ');
            let name = words.next().unwrap_or_default().to_string();
            let fields = words
                .filter_map(|w| w.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Span { name, fields }
        })
        .collect()
}

/// The one span called `name` in `output`.
fn only(output: &str, name: &str) -> Span {
    let mut found: Vec<Span> = spans(output)
        .into_iter()
        .filter(|s| s.name == name)
        .collect();
    assert_eq!(found.len(), 1, "one {name} span expected in:\n{output}");
    found.remove(0)
}

/// The address a serving hop printed.
fn serving_addr(output: &str) -> String {
    output
        .lines()
        .find_map(|l| l.strip_prefix("serving on "))
        .unwrap_or_default()
        .trim()
        .to_string()
}

// ANCHOR: three_processes
#[test]
fn one_trace_id_across_three_processes() -> TestResult {
    let hop = cargo_build("mprpc-examples", Target::Example("trace_hop"))?;
    let wait = Duration::from_secs(30);
    let mut c = ChildProcess::spawn(&hop, &["serve"], ChildProcess::workdir()?, |_| {})?;
    c.wait_for("serving on ", wait)?;
    let c_addr = serving_addr(&c.output());
    let mut b = ChildProcess::spawn(
        &hop,
        &["serve", "--next", &c_addr],
        ChildProcess::workdir()?,
        |_| {},
    )?;
    b.wait_for("serving on ", wait)?;
    let b_addr = serving_addr(&b.output());
    let mut a = ChildProcess::spawn(&hop, &["call", &b_addr], ChildProcess::workdir()?, |_| {})?;
    a.wait_for("called ", wait)?;
    b.wait_for("SPAN rpc.server", wait)?;
    c.wait_for("SPAN rpc.server", wait)?;

    let a_client = only(&a.output(), "rpc.client");
    let b_server = only(&b.output(), "rpc.server");
    let b_client = only(&b.output(), "rpc.client");
    let c_server = only(&c.output(), "rpc.server");
    let trace = a_client.get("trace_id");
    assert_eq!(trace.len(), 32, "{a_client:?}");
    for span in [&b_server, &b_client, &c_server] {
        assert_eq!(span.get("trace_id"), trace, "{span:?}");
    }
    // A's call starts the trace; each later span names the one before.
    assert_eq!(a_client.get("parent_span_id"), "-", "{a_client:?}");
    assert_eq!(b_server.get("parent_span_id"), a_client.get("span_id"));
    assert_eq!(b_client.get("parent_span_id"), b_server.get("span_id"));
    assert_eq!(c_server.get("parent_span_id"), b_client.get("span_id"));
    let ids: Vec<&str> = [&a_client, &b_server, &b_client, &c_server]
        .iter()
        .map(|s| s.get("span_id"))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(id.len(), 16, "{ids:?}");
        assert!(!ids[..i].contains(id), "span ids must differ: {ids:?}");
    }
    Ok(())
}
// ANCHOR_END: three_processes

/// Login says whether its request carried a valid `traceparent` that the
/// handler's current context continues.
struct SeesTrace;

impl UserServiceRpc for SeesTrace {
    async fn login(&self, ctx: CallContext, _: LoginRequest) -> Result<LoginResponse, Status> {
        let received = ctx
            .metadata
            .get(TRACEPARENT)
            .and_then(|v| TraceContext::parse(v, None));
        let current = mprpc::trace::current();
        let continued = match (received, current) {
            (Some(r), Some(c)) => c.trace_id == r.trace_id && c.parent_span_id == Some(r.span_id),
            _ => false,
        };
        Ok(LoginResponse {
            result: None,
            success: continued,
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

/// In one process, with spans recorded: the context reaches the handler;
/// a malformed `traceparent` set by the caller is replaced, not sent on;
/// and a controller whose metadata leaves no room for the context still
/// makes its call — without the context — instead of failing.
#[tokio::test(flavor = "current_thread")]
async fn the_context_never_fails_a_call() {
    let _default = tracing::subscriber::set_default(tracing_subscriber::registry());
    let mut provider = RpcProvider::new(support::local_config())
        .with_registry(Arc::new(StaticRegistry::default()));
    provider.notify_service(UserServiceRpcServer::new(SeesTrace));
    let p = match provider.start().await {
        Ok(p) => p,
        Err(e) => panic!("provider failed to start: {e}"),
    };
    let stub = UserServiceRpcStub::new(MprpcChannel::direct(&p.local_addr().to_string()));
    let plain = stub.login(&LoginRequest::default()).await;
    assert!(matches!(&plain, Ok(r) if r.success), "{plain:?}");

    let bad = MprpcController::new();
    assert!(bad.set_metadata(TRACEPARENT, "00-not-a-trace-01").is_ok());
    let replaced = stub.login_with(&bad, &LoginRequest::default()).await;
    assert!(matches!(&replaced, Ok(r) if r.success), "{replaced:?}");

    // The default limit is 32 entries: all taken by the caller's own.
    let full = MprpcController::new();
    for i in 0..32 {
        assert!(full.set_metadata(format!("k{i}"), "v").is_ok());
    }
    let untraced = stub.login_with(&full, &LoginRequest::default()).await;
    assert!(matches!(&untraced, Ok(r) if !r.success), "{untraced:?}");
    p.shutdown().await.ok();
}
