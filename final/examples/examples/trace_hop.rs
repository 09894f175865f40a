//! One hop of a traced chain A → B → C, each its own process: prints every
//! closed `rpc.client` / `rpc.server` span with its trace ids, one line
//! each, so a test (`tests/trace.rs`) can check that the three processes
//! share one trace id and that each span names the right parent.
//!
//! ```text
//! trace_hop serve                 # C: answers Login
//! trace_hop serve --next <addr>   # B: answers Login by calling <addr> first
//! trace_hop call <addr>           # A: one Login call, then exits
//! ```
//!
//! The ids are mprpc's own (no OpenTelemetry): the span fields `trace_id`,
//! `span_id` and `parent_span_id`, carried between processes as the
//! `traceparent` request metadata.

use std::collections::HashMap;
use std::sync::Arc;

use clap::Parser;
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use mprpc::{CallContext, MprpcChannel, MprpcConfig, RpcProvider, StaticRegistry, Status};
use mprpc_examples::fixbug::{
    LoginRequest, LoginResponse, RegisterRequest, RegisterResponse, UserServiceRpc,
    UserServiceRpcServer, UserServiceRpcStub,
};

/// What this process is.
#[derive(Parser)]
enum Cli {
    /// Serve Login on a free port of 127.0.0.1, calling `--next` first.
    Serve {
        /// The next hop's "ip:port".
        #[arg(long)]
        next: Option<String>,
    },
    /// Call Login on `addr` once and exit.
    Call {
        /// The first hop's "ip:port".
        addr: String,
    },
}

/// Login, passed on to the next hop if there is one.
struct Hop(Option<UserServiceRpcStub>);

impl UserServiceRpc for Hop {
    async fn login(&self, _: CallContext, req: LoginRequest) -> Result<LoginResponse, Status> {
        match &self.0 {
            // Made inside the handler: it carries the handler's context.
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

/// Prints each rpc span's ids when it closes.
struct PrintSpans;

/// A span's fields, kept in its extensions until it closes.
#[derive(Default)]
struct Fields(HashMap<&'static str, String>);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name(), value.to_string());
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for PrintSpans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(fields) = span.extensions_mut().get_mut::<Fields>() {
                values.record(fields);
            }
        }
    }
    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let ext = span.extensions();
        let Some(Fields(f)) = ext.get::<Fields>() else {
            return;
        };
        let get = |k| f.get(k).map_or("-", String::as_str);
        println!(
            "SPAN {} trace_id={} span_id={} parent_span_id={}",
            span.name(),
            get("trace_id"),
            get("span_id"),
            get("parent_span_id")
        );
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(PrintSpans))?;
    match Cli::parse() {
        Cli::Call { addr } => {
            let stub = UserServiceRpcStub::new(MprpcChannel::direct(&addr));
            stub.login(&LoginRequest::default()).await?;
            println!("called {addr}");
        }
        Cli::Serve { next } => {
            let mut config = MprpcConfig::default();
            config.rpcserverport = 0;
            let next = next.map(|addr| UserServiceRpcStub::new(MprpcChannel::direct(&addr)));
            let mut provider =
                RpcProvider::new(config).with_registry(Arc::new(StaticRegistry::default()));
            provider.notify_service(UserServiceRpcServer::new(Hop(next)));
            let running = provider.start().await?;
            println!("serving on {}", running.local_addr());
            tokio::signal::ctrl_c().await?;
            running.shutdown().await?;
        }
    }
    Ok(())
}
