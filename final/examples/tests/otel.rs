//! The `otel` feature (`cargo test -p mprpc-examples --features otel --test
//! otel`): with `tracing-opentelemetry`'s layer installed, a chain A → B → C
//! over TCP is one OpenTelemetry trace — every exported span has the
//! trace id of A's own span, and each provider's `rpc.server` span has the
//! caller's `rpc.client` span as its (remote) parent. A `traceparent` set on
//! the controller becomes the parent of the call's span; and without the
//! layer the feature changes nothing: mprpc's own ids, as before.
//!
//! Caller and providers share this process, and so one subscriber, but not
//! a span: each provider runs its connections on tasks of its own, which
//! no caller span is entered on, so only the `traceparent` sent over TCP can
//! link them (and the exporter marks those parents remote).

use std::sync::{Arc, Mutex};

use mprpc::trace::{TRACEPARENT, TraceContext};
use mprpc::{CallContext, MprpcChannel, MprpcController, RpcProvider, StaticRegistry, Status};
use mprpc_examples::fixbug::{
    LoginRequest, LoginResponse, RegisterRequest, RegisterResponse, UserServiceRpc,
    UserServiceRpcServer, UserServiceRpcStub,
};
use opentelemetry::trace::{SpanId, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing::Instrument as _;
use tracing_subscriber::layer::SubscriberExt as _;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// What a hop's handler saw: the `traceparent` and the current context.
type Seen = Arc<Mutex<Vec<(Option<String>, Option<TraceContext>)>>>;

/// Login, passed on to the next hop if there is one; remembers the
/// `traceparent` it received and the handler's context.
struct Hop {
    next: Option<UserServiceRpcStub>,
    seen: Seen,
}

impl UserServiceRpc for Hop {
    async fn login(&self, ctx: CallContext, req: LoginRequest) -> Result<LoginResponse, Status> {
        let received = ctx.metadata.get(TRACEPARENT).map(str::to_string);
        if let Ok(mut seen) = self.seen.lock() {
            seen.push((received, mprpc::trace::current()));
        }
        match &self.next {
            // Made inside the handler: a child of its span.
            Some(next) => next.login(&req).await,
            None => Ok(LoginResponse::default()),
        }
    }

    async fn register(
        &self,
        _: CallContext,
        _: RegisterRequest,
    ) -> Result<RegisterResponse, Status> {
        Ok(RegisterResponse::default())
    }
}

/// Starts a provider of [`Hop`] on a free port, passing calls to `next`.
async fn hop(next: Option<String>) -> Result<(mprpc::RunningProvider, Seen), mprpc::Error> {
    let mut config = mprpc::MprpcConfig::default();
    config.rpcserverport = 0;
    let seen = Seen::default();
    let next = next.map(|addr| UserServiceRpcStub::new(MprpcChannel::direct(&addr)));
    let mut provider = RpcProvider::new(config).with_registry(Arc::new(StaticRegistry::default()));
    provider.notify_service(UserServiceRpcServer::new(Hop {
        next,
        seen: Arc::clone(&seen),
    }));
    Ok((provider.start().await?, seen))
}

// ANCHOR: layer
/// A tracer provider whose spans end up in `exporter`, and the `tracing`
/// subscriber that makes every span an OpenTelemetry span. A program sets
/// the subscriber as its global default, with a real exporter.
fn otel_subscriber(
    exporter: &InMemorySpanExporter,
) -> (SdkTracerProvider, impl tracing::Subscriber) {
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("mprpc-otel-test"));
    (provider, tracing_subscriber::registry().with(layer))
}
// ANCHOR_END: layer

/// The one exported span called `name` whose parent is `parent`.
fn child<'a>(spans: &'a [SpanData], name: &str, parent: SpanId) -> &'a SpanData {
    let found: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.name == name && s.parent_span_id == parent)
        .collect();
    assert_eq!(found.len(), 1, "one {name} child of {parent} in {spans:#?}");
    found[0]
}

/// The string attribute `key` of `span`.
fn attribute(span: &SpanData, key: &str) -> String {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.as_str().into_owned())
        .unwrap_or_default()
}

/// Hex of a span id, as the span fields write it.
fn hex(id: SpanId) -> String {
    format!("{id}")
}

// ANCHOR: chain
#[tokio::test(flavor = "current_thread")]
async fn a_chain_over_tcp_is_one_opentelemetry_trace() -> TestResult {
    let exporter = InMemorySpanExporter::default();
    let (provider, subscriber) = otel_subscriber(&exporter);
    // This thread only, and the runtime is this thread: the test's spans
    // are the only ones it sees.
    let _default = tracing::subscriber::set_default(subscriber);

    let (c, c_seen) = hop(None).await?;
    let (b, b_seen) = hop(Some(c.local_addr().to_string())).await?;
    let stub = UserServiceRpcStub::new(MprpcChannel::direct(&b.local_addr().to_string()));
    let request = tracing::info_span!("request");
    stub.login(&LoginRequest::default())
        .instrument(request.clone())
        .await?;
    drop(request);
    b.shutdown().await?;
    c.shutdown().await?;
    provider.force_flush()?;
    let spans = exporter.get_finished_spans()?;

    // A's own span starts the trace; the rest hang below it.
    let roots: Vec<&SpanData> = spans.iter().filter(|s| s.name == "request").collect();
    assert_eq!(roots.len(), 1, "{spans:#?}");
    let root = roots[0];
    let trace_id = root.span_context.trace_id();
    assert_ne!(trace_id, TraceId::INVALID);
    let a_client = child(&spans, "rpc.client", root.span_context.span_id());
    let b_server = child(&spans, "rpc.server", a_client.span_context.span_id());
    let b_client = child(&spans, "rpc.client", b_server.span_context.span_id());
    let c_server = child(&spans, "rpc.server", b_client.span_context.span_id());
    assert_eq!(spans.len(), 5, "{spans:#?}");
    for span in &spans {
        assert_eq!(span.span_context.trace_id(), trace_id, "{span:#?}");
    }
    // The providers' parents came over the wire.
    assert!(b_server.parent_span_is_remote && c_server.parent_span_is_remote);
    assert!(!a_client.parent_span_is_remote && !b_client.parent_span_is_remote);
    // The span fields mprpc records are the same ids.
    for span in [a_client, b_server, b_client, c_server] {
        assert_eq!(attribute(span, "trace_id"), format!("{trace_id}"));
        assert_eq!(attribute(span, "span_id"), hex(span.span_context.span_id()));
        assert_eq!(attribute(span, "parent_span_id"), hex(span.parent_span_id));
    }
    // What each provider received names its caller's span, and its handler
    // runs with its own span's context current.
    for (seen, caller, server) in [(&b_seen, a_client, b_server), (&c_seen, b_client, c_server)] {
        let seen = seen.lock().map_err(|_| "poisoned")?;
        let [(Some(traceparent), Some(current))] = seen.as_slice() else {
            panic!("one traced call expected: {seen:?}");
        };
        assert_eq!(
            traceparent,
            &format!("00-{trace_id}-{}-01", caller.span_context.span_id())
        );
        assert_eq!(current.span_id, server.span_context.span_id().to_bytes());
    }
    Ok(())
}
// ANCHOR_END: chain

#[tokio::test(flavor = "current_thread")]
async fn a_traceparent_on_the_controller_becomes_the_calls_parent() -> TestResult {
    let exporter = InMemorySpanExporter::default();
    let (provider, subscriber) = otel_subscriber(&exporter);
    let _default = tracing::subscriber::set_default(subscriber);
    let (c, _) = hop(None).await?;
    let stub = UserServiceRpcStub::new(MprpcChannel::direct(&c.local_addr().to_string()));
    let controller = MprpcController::new();
    let upstream = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    controller.set_metadata(TRACEPARENT, upstream)?;
    stub.login_with(&controller, &LoginRequest::default())
        .await?;
    c.shutdown().await?;
    provider.force_flush()?;
    let spans = exporter.get_finished_spans()?;
    let client = child(&spans, "rpc.client", SpanId::from_hex("00f067aa0ba902b7")?);
    assert_eq!(
        client.span_context.trace_id(),
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736")?
    );
    assert!(client.parent_span_is_remote);
    let server = child(&spans, "rpc.server", client.span_context.span_id());
    assert_eq!(
        server.span_context.trace_id(),
        client.span_context.trace_id()
    );
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn without_the_layer_the_ids_are_mprpcs_own() -> TestResult {
    // Spans recorded, but by no OpenTelemetry layer.
    let _default = tracing::subscriber::set_default(tracing_subscriber::registry());
    let (c, c_seen) = hop(None).await?;
    let (b, b_seen) = hop(Some(c.local_addr().to_string())).await?;
    let stub = UserServiceRpcStub::new(MprpcChannel::direct(&b.local_addr().to_string()));
    stub.login(&LoginRequest::default()).await?;
    b.shutdown().await?;
    c.shutdown().await?;
    let b_seen = b_seen.lock().map_err(|_| "poisoned")?;
    let c_seen = c_seen.lock().map_err(|_| "poisoned")?;
    let ([(Some(to_b), Some(in_b))], [(Some(to_c), Some(in_c))]) =
        (b_seen.as_slice(), c_seen.as_slice())
    else {
        panic!("traced calls expected: {b_seen:?} {c_seen:?}");
    };
    let to_b = TraceContext::parse(to_b, None).ok_or("bad traceparent")?;
    let to_c = TraceContext::parse(to_c, None).ok_or("bad traceparent")?;
    // One trace; B's handler is the child of A's call, C's of B's call.
    assert_eq!(in_b.trace_id, to_b.trace_id);
    assert_eq!(in_b.parent_span_id, Some(to_b.span_id));
    assert_eq!(to_c.trace_id, to_b.trace_id);
    assert_eq!(in_c.trace_id, to_b.trace_id);
    assert_eq!(in_c.parent_span_id, Some(to_c.span_id));
    Ok(())
}
