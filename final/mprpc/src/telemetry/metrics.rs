//! The provider's metrics, and the admin endpoint that serves them in
//! Prometheus' text format (`GET /metrics` on `[admin] address`) — like
//! brpc's built-in `/vars`, without a dependency.
//!
//! Per service and method: calls finished, errors by code, calls in flight
//! and a latency histogram; per provider: connections open and accepted.
//! Every number is a relaxed atomic owned by the method it counts, found
//! by index when the call starts, so a call costs a few uncontended atomic
//! adds and no lock or lookup by name. Nothing is collected unless the
//! admin address is set.
//!
//! What a production system might add: client-side metrics in the channel,
//! per-peer labels (bounded!), a push gateway. What it must not add: labels
//! from caller input, such as an unknown method's name — every distinct
//! label value is a new time series kept forever, so a hostile caller could
//! grow the provider's memory without bound. Calls to services or methods
//! that do not exist are counted under one fixed label.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::prometheus::{Histogram, code_label, escape, header};
use crate::error::ErrorCode;
use crate::telemetry::health::HealthState;

/// Codes a provider can answer with; errors are counted per code.
const CODES: [ErrorCode; 10] = [
    ErrorCode::UnknownService,
    ErrorCode::UnknownMethod,
    ErrorCode::BadRequest,
    ErrorCode::HandlerError,
    ErrorCode::DeadlineExceeded,
    ErrorCode::Overloaded,
    ErrorCode::FrameTooLarge,
    ErrorCode::Unauthenticated,
    ErrorCode::PermissionDenied,
    ErrorCode::Unsupported,
];

/// The counters of one method.
#[derive(Debug, Default)]
pub(crate) struct MethodMetrics {
    /// Calls finished (answered, failed or cancelled).
    calls: AtomicU64,
    /// Calls started and not finished.
    in_flight: AtomicI64,
    /// Calls cancelled by their caller (no answer sent).
    cancelled: AtomicU64,
    /// Failed calls by code, in the order of [`CODES`].
    errors: [AtomicU64; CODES.len()],
    /// Latencies.
    latency: Histogram,
    /// Messages sent on this method's server streams.
    stream_messages: AtomicU64,
}

impl MethodMetrics {
    /// A call started.
    pub(crate) fn start(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// One message went out on a server stream of this method.
    pub(crate) fn stream_message(&self) {
        self.stream_messages.fetch_add(1, Ordering::Relaxed);
    }

    /// A call finished after `took` with `code` (`None`: cancelled).
    pub(crate) fn finish(&self, took: Duration, code: Option<ErrorCode>) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
        match code {
            None => {
                self.cancelled.fetch_add(1, Ordering::Relaxed);
            }
            Some(ErrorCode::Ok) => {}
            Some(code) => count_error(&self.errors, code),
        }
        self.latency.observe(took);
    }
}

/// Adds one to the counter of `code` (codes made only by callers are
/// never answered by a provider and are not counted).
fn count_error(errors: &[AtomicU64; CODES.len()], code: ErrorCode) {
    if let Some(i) = CODES.iter().position(|c| *c == code) {
        errors[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// Everything one provider counts.
#[derive(Debug)]
pub(crate) struct Metrics {
    /// (service, method, counters), in the order rendered.
    methods: Vec<(&'static str, &'static str, Arc<MethodMetrics>)>,
    /// Calls refused before reaching a method (unknown service or method,
    /// bad metadata, duplicate id, over the in-flight limit), by code.
    refused: [AtomicU64; CODES.len()],
    /// Connections open now.
    connections_open: AtomicI64,
    /// Connections accepted since start.
    connections_total: AtomicU64,
}

impl Metrics {
    /// Counters for `methods` (service full name, method name, counters).
    pub(crate) fn new(methods: Vec<(&'static str, &'static str, Arc<MethodMetrics>)>) -> Metrics {
        Metrics {
            methods,
            refused: Default::default(),
            connections_open: AtomicI64::new(0),
            connections_total: AtomicU64::new(0),
        }
    }

    /// A call refused with `code` before it reached a method.
    pub(crate) fn refused(&self, code: ErrorCode) {
        count_error(&self.refused, code);
    }

    /// A connection was accepted; the guard counts it closed when dropped.
    pub(crate) fn connection(self: &Arc<Self>) -> ConnectionGuard {
        self.connections_open.fetch_add(1, Ordering::Relaxed);
        self.connections_total.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(Arc::clone(self))
    }

    // ANCHOR: render
    /// The Prometheus text exposition (format 0.0.4) of every counter.
    pub(crate) fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let labels =
            |s: &str, m: &str| format!("service=\"{}\",method=\"{}\"", escape(s), escape(m));
        header(
            &mut out,
            "mprpc_server_calls_total",
            "counter",
            "Calls finished, by service and method.",
        );
        for (s, m, c) in &self.methods {
            let _ = writeln!(
                out,
                "mprpc_server_calls_total{{{}}} {}",
                labels(s, m),
                c.calls.load(Ordering::Relaxed)
            );
        }
        header(
            &mut out,
            "mprpc_server_errors_total",
            "counter",
            "Calls answered with an error, by code.",
        );
        for (s, m, c) in &self.methods {
            for (code, n) in CODES.iter().zip(&c.errors) {
                let n = n.load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "mprpc_server_errors_total{{{},code=\"{}\"}} {n}",
                        labels(s, m),
                        code_label(*code)
                    );
                }
            }
        }
        header(
            &mut out,
            "mprpc_server_cancelled_total",
            "counter",
            "Calls cancelled by their caller.",
        );
        for (s, m, c) in &self.methods {
            let _ = writeln!(
                out,
                "mprpc_server_cancelled_total{{{}}} {}",
                labels(s, m),
                c.cancelled.load(Ordering::Relaxed)
            );
        }
        header(
            &mut out,
            "mprpc_server_stream_messages_total",
            "counter",
            "Messages sent on server streams (a stream also counts as one call), by service and method.",
        );
        for (s, m, c) in &self.methods {
            let n = c.stream_messages.load(Ordering::Relaxed);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "mprpc_server_stream_messages_total{{{}}} {n}",
                    labels(s, m)
                );
            }
        }
        header(
            &mut out,
            "mprpc_server_in_flight",
            "gauge",
            "Calls running now.",
        );
        for (s, m, c) in &self.methods {
            let _ = writeln!(
                out,
                "mprpc_server_in_flight{{{}}} {}",
                labels(s, m),
                c.in_flight.load(Ordering::Relaxed)
            );
        }
        header(
            &mut out,
            "mprpc_server_call_duration_seconds",
            "histogram",
            "Time from a request's arrival to its answer.",
        );
        for (s, m, c) in &self.methods {
            let name = "mprpc_server_call_duration_seconds";
            c.latency.render(&mut out, name, &labels(s, m));
        }
        header(
            &mut out,
            "mprpc_server_refused_total",
            "counter",
            "Calls refused before reaching a method (unknown name, limits, bad metadata), by code.",
        );
        for (code, n) in CODES.iter().zip(&self.refused) {
            let _ = writeln!(
                out,
                "mprpc_server_refused_total{{code=\"{}\"}} {}",
                code_label(*code),
                n.load(Ordering::Relaxed)
            );
        }
        header(
            &mut out,
            "mprpc_server_connections_open",
            "gauge",
            "Connections open now.",
        );
        let _ = writeln!(
            out,
            "mprpc_server_connections_open {}",
            self.connections_open.load(Ordering::Relaxed)
        );
        header(
            &mut out,
            "mprpc_server_connections_total",
            "counter",
            "Connections accepted since start.",
        );
        let _ = writeln!(
            out,
            "mprpc_server_connections_total {}",
            self.connections_total.load(Ordering::Relaxed)
        );
        out
    }
    // ANCHOR_END: render
}

/// Counts a connection closed when dropped.
#[derive(Debug)]
pub(crate) struct ConnectionGuard(Arc<Metrics>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

// ANCHOR: pages
/// What the admin endpoint serves: a provider's metrics and health, and
/// the process's client metrics (when they are on).
#[derive(Debug, Default)]
pub(crate) struct AdminPages {
    /// The provider's counters; `None` for a caller-only program.
    pub(crate) server: Option<Arc<Metrics>>,
    /// The provider's health; `None` for a caller-only program, which is
    /// ready whenever it is live.
    pub(crate) health: Option<Arc<HealthState>>,
}

impl AdminPages {
    /// `GET /metrics`: the provider's metrics, then the client's.
    fn metrics(&self) -> String {
        let mut out = self.server.as_ref().map(|m| m.render()).unwrap_or_default();
        out.push_str(&crate::telemetry::client_metrics::render());
        out
    }

    /// `GET /readyz`: ready, or why not.
    fn ready(&self) -> Result<(), &'static str> {
        self.health.as_ref().map_or(Ok(()), |h| h.ready())
    }
}
// ANCHOR_END: pages

/// Admin connections served at once; beyond that the oldest connection
/// still waiting for its request head is closed to make room.
const MAX_ADMIN_CONNECTIONS: usize = 16;
/// Longest request head read from an admin connection.
const MAX_ADMIN_REQUEST: usize = 8 << 10;
/// Time an admin connection has, from accept, to send its request head.
/// A scraper sends it at once; a connection that stays silent this long
/// is not one.
const ADMIN_HEAD_TIMEOUT: Duration = Duration::from_secs(1);
/// Time an admin connection has to send its request and take the answer.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The admin connections being served, by accept order (oldest first).
type AdminTable = Arc<Mutex<BTreeMap<u64, AdminConn>>>;

/// One admin connection being served.
struct AdminConn {
    /// Set once its request head has arrived: from then on it is being
    /// answered and is not closed to make room.
    busy: Arc<AtomicBool>,
    /// Closes the connection (dropping its socket).
    task: tokio::task::AbortHandle,
}

/// Takes a connection out of the table when its task ends, however it ends.
struct Leave(AdminTable, u64);

impl Drop for Leave {
    fn drop(&mut self) {
        lock(&self.0).remove(&self.1);
    }
}

/// Locks, ignoring poisoning (critical sections are single map updates).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// ANCHOR: admin
/// Serves `GET /metrics`, `/healthz` and `/readyz` on `listener` until shutdown: HTTP/1.1, one
/// request per connection. A scrape is small and rare, so this is the
/// least HTTP that Prometheus (and curl) accept, bounded like every other
/// input: 16 connections, an 8 KiB request head that must arrive within
/// 1 s, 5 s per connection. When all 16 are taken, the oldest connection
/// still waiting for its head is closed to make room for the new one, so
/// silent connections cannot keep a scrape out; only 16 connections all
/// being answered at once turn a new one away.
pub(crate) async fn serve_admin(
    listener: TcpListener,
    metrics: Arc<AdminPages>,
    mut shutdown: watch::Receiver<bool>,
) {
    let table: AdminTable = Arc::default();
    let mut next_id = 0u64;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    next_id += 1;
                    admit(&table, next_id, stream, peer, &metrics);
                }
                Err(e) => {
                    log::warn!("admin endpoint: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            // The guard `wait_for` returns is not `Send`: dropped inside.
            () = async { let _ = shutdown.wait_for(|stop| *stop).await; } => break,
        }
    }
    let open = std::mem::take(&mut *lock(&table));
    for conn in open.into_values() {
        conn.task.abort();
    }
}
// ANCHOR_END: admin

/// Serves `stream` if there is room, making room by closing the oldest
/// connection that has not sent its request head yet.
fn admit(
    table: &AdminTable,
    id: u64,
    stream: TcpStream,
    peer: SocketAddr,
    pages: &Arc<AdminPages>,
) {
    // Held until the new entry is in: its task's `Leave` cannot run before.
    let mut conns = lock(table);
    if conns.len() >= MAX_ADMIN_CONNECTIONS {
        let idle = conns
            .iter()
            .find(|(_, c)| !c.busy.load(Ordering::Acquire))
            .map(|(id, _)| *id);
        match idle.and_then(|oldest| conns.remove(&oldest)) {
            Some(oldest) => {
                log::debug!("admin {peer}: all slots taken, closing the oldest silent connection");
                oldest.task.abort();
            }
            // Every slot is answering a request: drop this one unanswered.
            None => return,
        }
    }
    let busy = Arc::new(AtomicBool::new(false));
    let leave = Leave(Arc::clone(table), id);
    let pages = Arc::clone(pages);
    let flag = Arc::clone(&busy);
    let task = tokio::spawn(async move {
        let _leave = leave;
        let served = tokio::time::timeout(ADMIN_TIMEOUT, answer(stream, &pages, &flag));
        if served.await.is_err() {
            log::debug!("admin {peer}: timed out");
        }
    });
    conns.insert(
        id,
        AdminConn {
            busy,
            task: task.abort_handle(),
        },
    );
}

/// Reads one request head (within [`ADMIN_HEAD_TIMEOUT`]), sets `busy`,
/// and answers it.
async fn answer(mut stream: TcpStream, pages: &AdminPages, busy: &AtomicBool) {
    let head = match tokio::time::timeout(ADMIN_HEAD_TIMEOUT, read_head(&mut stream)).await {
        Ok(Some(head)) => head,
        Ok(None) => return,
        Err(_) => {
            log::debug!("admin connection: no request head within {ADMIN_HEAD_TIMEOUT:?}");
            return;
        }
    };
    busy.store(true, Ordering::Release);
    if head.len() > MAX_ADMIN_REQUEST {
        return respond(
            &mut stream,
            "431 Request Header Fields Too Large",
            "request head too large\n",
        )
        .await;
    }
    let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|b| *b == b' ');
    let (method, path) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    match (method, path) {
        (b"GET", b"/metrics") => respond(&mut stream, "200 OK", &pages.metrics()).await,
        (b"GET", b"/healthz") => respond(&mut stream, "200 OK", "ok\n").await,
        (b"GET", b"/readyz") => match pages.ready() {
            Ok(()) => respond(&mut stream, "200 OK", "ready\n").await,
            Err(why) => {
                let body = format!("not ready: {why}\n");
                respond(&mut stream, "503 Service Unavailable", &body).await
            }
        },
        (b"GET", _) => {
            let body = "only /metrics, /healthz and /readyz are here\n";
            respond(&mut stream, "404 Not Found", body).await
        }
        _ => {
            respond(
                &mut stream,
                "405 Method Not Allowed",
                "only GET is served\n",
            )
            .await
        }
    }
}

/// Reads until the end of the request head, or past
/// [`MAX_ADMIN_REQUEST`]; `None` if the peer closes or fails first.
async fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() <= MAX_ADMIN_REQUEST {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    Some(head)
}

/// Writes a complete response and closes.
async fn respond(stream: &mut TcpStream, status: &str, body: &str) {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Binds the admin endpoint.
pub(crate) async fn bind_admin(addr: &str) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}
