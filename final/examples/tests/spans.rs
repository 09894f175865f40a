//! Tracing on real TCP: one `rpc.server` and one `rpc.client` span per call
//! with service, method, call id, peer, status and duration, and the `log`
//! lines still written beside them.
//!
//! One test in its own binary, on purpose: tracing caches per call site
//! whether anyone is interested, and a call site first reached by another
//! test's thread while this test installs its (thread-local) subscriber
//! can be cached as "nobody" — the span would then be missing here.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use mprpc::{ErrorCode, MprpcChannel, RunningProvider};
use mprpc_examples::fixbug::{RegisterRequest, UserServiceRpcStub};

/// A provider of [`RegistrationsClosed`](support::RegistrationsClosed):
/// Login succeeds, Register fails.
async fn provider() -> RunningProvider {
    support::user_service_provider(support::local_config(), support::RegistrationsClosed).await
}

use support::login;

/// A span's name and fields.
type SpanFields = (String, HashMap<String, String>);

/// Fields of every closed span.
type Closed = Arc<Mutex<Vec<SpanFields>>>;

/// A tracing layer that keeps each span's fields until it closes.
#[derive(Default)]
struct Capture {
    open: Mutex<HashMap<u64, SpanFields>>,
    closed: Closed,
}

/// Records fields as strings.
struct Fields<'a>(&'a mut HashMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut fields = HashMap::new();
        attrs.record(&mut Fields(&mut fields));
        if let Ok(mut open) = self.open.lock() {
            open.insert(id.into_u64(), (attrs.metadata().name().to_string(), fields));
        }
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Ok(mut open) = self.open.lock() {
            if let Some((_, fields)) = open.get_mut(&id.into_u64()) {
                values.record(&mut Fields(fields));
            }
        }
    }
    fn on_close(&self, id: Id, _: Context<'_, S>) {
        let span = self
            .open
            .lock()
            .ok()
            .and_then(|mut o| o.remove(&id.into_u64()));
        if let (Some(span), Ok(mut closed)) = (span, self.closed.lock()) {
            closed.push(span);
        }
    }
}

/// The `log` records written while the test ran.
static LOG_LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Lines;

impl log::Log for Lines {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if let Ok(mut lines) = LOG_LINES.lock() {
            lines.push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

// ANCHOR: spans
#[tokio::test]
async fn every_call_has_a_span_on_both_sides_and_log_lines_still_flow() {
    let _ = log::set_logger(&Lines).map(|()| log::set_max_level(log::LevelFilter::Info));
    let capture = Capture::default();
    let closed = Arc::clone(&capture.closed);
    // This test's runtime has one thread: provider and caller run on it,
    // under this subscriber.
    let _default = tracing::subscriber::set_default(tracing_subscriber::registry().with(capture));
    let p = provider().await;
    let stub = UserServiceRpcStub::new(MprpcChannel::direct(&p.local_addr().to_string()));
    assert!(stub.login(&login()).await.is_ok());
    let r = stub.register(&RegisterRequest::default()).await;
    assert!(
        matches!(&r, Err(s) if s.code == ErrorCode::HandlerError),
        "{r:?}"
    );
    let spans = closed.lock().map(|c| c.clone()).unwrap_or_default();
    let find = |name: &str, method: &str| {
        spans
            .iter()
            .find(|(n, f)| n == name && f.get("method").map(String::as_str) == Some(method))
            .map(|(_, f)| f.clone())
            .unwrap_or_else(|| panic!("no {name} span for {method} in {spans:?}"))
    };
    for side in ["rpc.server", "rpc.client"] {
        let ok = find(side, "Login");
        assert_eq!(
            ok.get("service").map(String::as_str),
            Some("fixbug.UserServiceRpc")
        );
        assert_eq!(
            ok.get("status").map(String::as_str),
            Some("ok"),
            "{side} {ok:?}"
        );
        assert!(
            ok.get("call_id").is_some_and(|id| id != "0"),
            "{side} {ok:?}"
        );
        assert!(
            ok.get("peer").is_some_and(|p| p.starts_with("127.0.0.1:")),
            "{side} {ok:?}"
        );
        assert!(
            ok.get("duration_us")
                .is_some_and(|d| d.parse::<u64>().is_ok()),
            "{side} {ok:?}"
        );
        let failed = find(side, "Register");
        assert_eq!(
            failed.get("status").map(String::as_str),
            Some("handler error"),
            "{side}"
        );
    }
    let lines = LOG_LINES.lock().map(|l| l.clone()).unwrap_or_default();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("provider serving fixbug.UserServiceRpc")),
        "{lines:?}"
    );
}
// ANCHOR_END: spans
