//! The provider's memory is bounded by its configuration, not by what
//! callers send or fail to read.
//!
//! * 200 callers pipeline requests as fast as they can and never read a
//!   response. Each connection may hold `limits.max_buffered_per_connection`
//!   (64 KiB by default) of unread requests and unsent responses; then the
//!   provider stops reading from it and TCP pushes back. The provider's
//!   peak resident memory must stay under 100 MiB (it reached 221 MiB
//!   before the budget), good calls succeed meanwhile and afterwards, and
//!   `idle_ms` closes the stalled connections.
//! * 50 callers send a 4 MiB request each at once: frames above a
//!   connection's allowance borrow from `limits.max_buffered_total` (32 MiB
//!   here), and wait when it is lent out. All 50 calls succeed; the peak
//!   stays near the pool, not near the 200 MiB sent.
//!
//! The provider is the `callee` example as a child process, so the figures
//! are its own. `cargo test -p mprpc --test memory_budget -- --nocapture`;
//! `MPRPC_PIPELINERS=1024` runs the first test with the default
//! `max_connections`' worth of callers.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use mprpc::MprpcChannel;
use mprpc::frame;
use mprpc_examples::fixbug::{LoginRequest, LoginResponse, UserServiceRpcStub};
use support::callee_process::Callee;

/// Callers that never read.
const PIPELINERS: usize = 200;
/// The bound from the issue.
const PEAK_BOUND_MIB: u64 = 100;
/// The provider's idle_ms: stalled connections are closed after it.
const IDLE_MS: u64 = 3000;

/// The service name framed requests carry (the full protobuf name
/// "fixbug.UserServiceRpc" once the provider publishes full names).
const FRAMED_SERVICE: &str = "fixbug.UserServiceRpc";

fn login(name: Vec<u8>) -> LoginRequest {
    LoginRequest {
        name,
        pwd: b"123456".to_vec(),
    }
}

/// Login frames with ids `first..first + n`, back to back.
fn logins(first: u64, n: u64, name: &[u8]) -> Vec<u8> {
    let mut buf = bytes::BytesMut::new();
    for id in first..first + n {
        let r = frame::encode_request(
            &mut buf,
            id,
            0,
            FRAMED_SERVICE,
            "Login",
            &login(name.to_vec()),
            16 << 20,
        );
        assert!(r.is_ok());
    }
    buf.to_vec()
}

/// `n` requests for a method `UserServiceRpc` does not have, with a
/// 255-byte name: each is answered with an `UnknownMethod` error that
/// repeats the name, so responses are as large as requests and the
/// provider has little to compute per byte (the test stays short in a
/// debug build).
fn unknown_methods(n: u64) -> Vec<u8> {
    let name = "m".repeat(255);
    let mut buf = bytes::BytesMut::new();
    for id in 1..=n {
        let r = frame::encode_request(
            &mut buf,
            id,
            0,
            FRAMED_SERVICE,
            &name,
            &login(Vec::new()),
            1 << 20,
        );
        assert!(r.is_ok());
    }
    buf.to_vec()
}

/// Bytes each pipelining caller sends at most.
const PIPELINED_PER_CALLER: usize = 512 << 10;

/// Framed and course-format calls; returns the errors.
async fn good_calls(addr: &str) -> Vec<String> {
    let stub = UserServiceRpcStub::new(MprpcChannel::direct(addr));
    let mut errors = Vec::new();
    for _ in 0..10 {
        if let Err(e) = stub.login(&login(b"zhang san".to_vec())).await {
            errors.push(e.to_string());
        }
        let legacy = mprpc::legacy::call::<_, LoginResponse>(
            addr,
            "UserServiceRpc", // the course format carries the short name
            "Login",
            &login(b"zhang san".to_vec()),
            4096,
        )
        .await;
        if let Err(e) = legacy {
            errors.push(e.to_string());
        }
    }
    errors
}

/// Pipelines `chunk` until the provider stops taking it (a write blocks
/// for 500 ms), [`PIPELINED_PER_CALLER`] bytes are sent or 4 s pass; returns the bytes written and the socket, still
/// open and never read.
async fn pipeline(addr: String, chunk: Arc<Vec<u8>>) -> (usize, TcpStream) {
    // A small receive buffer: the kernel then absorbs fewer of the
    // responses this caller never reads, and the test finishes sooner. The
    // provider sees the same thing: a caller that stops reading.
    let socket = match tokio::net::TcpSocket::new_v4() {
        Ok(s) => s,
        Err(e) => panic!("socket: {e}"),
    };
    let _ = socket.set_recv_buffer_size(64 * 1024);
    let Ok(addr) = addr.parse() else {
        panic!("bad address {addr}");
    };
    let Ok(mut s) = socket.connect(addr).await else {
        panic!("connect refused");
    };
    let mut written = 0;
    if s.write_all(&frame::PREAMBLE).await.is_err() {
        return (0, s);
    }
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) && written < PIPELINED_PER_CALLER {
        match tokio::time::timeout(Duration::from_millis(500), s.write_all(&chunk)).await {
            Ok(Ok(())) => written += chunk.len(),
            _ => break,
        }
    }
    (written, s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_that_never_read_cost_a_bounded_amount() {
    let mut provider = Callee::start("error", &format!("[timeouts]\nidle_ms = {IDLE_MS}\n"), None);
    provider.wait_ready().await;
    let (rss_start, _) = provider.memory_kib();
    let fd_baseline = provider.open_fds();
    let chunk = Arc::new(unknown_methods(1000));
    let mut clients = tokio::task::JoinSet::new();
    // MPRPC_PIPELINERS=1024 measures the default max_connections' worth.
    let pipeliners = std::env::var("MPRPC_PIPELINERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(PIPELINERS);
    for _ in 0..pipeliners {
        clients.spawn(pipeline(provider.addr.clone(), Arc::clone(&chunk)));
    }
    let mut sockets = Vec::new();
    let mut sent = 0;
    while let Some(r) = clients.join_next().await {
        match r {
            Ok((n, s)) => {
                sent += n;
                sockets.push(s);
            }
            Err(e) => panic!("{e}"),
        }
    }
    let (rss_held, hwm_held) = provider.memory_kib();
    let during = good_calls(&provider.addr).await;
    // Every stalled connection is closed by idle_ms: the provider's
    // descriptors fall back to the baseline while the callers still read
    // nothing (reading would unstall them).
    let fds_held = provider.open_fds();
    let wait = Instant::now();
    while provider.open_fds() > fd_baseline + 2 && wait.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let fds_after = provider.open_fds();
    drop(sockets);
    let after = good_calls(&provider.addr).await;
    let (rss_end, hwm) = provider.memory_kib();
    println!(
        "{pipeliners} callers pipelined {} MiB in all and read nothing; provider RSS: start {} MiB, \
         while held {} MiB, peak {} MiB, end {} MiB; provider fds: baseline {fd_baseline}, \
         held {fds_held}, {fds_after} after {:.1} s; \
         good calls failed during: {during:?}, after: {after:?}",
        sent >> 20,
        rss_start >> 10,
        rss_held >> 10,
        hwm.max(hwm_held) >> 10,
        rss_end >> 10,
        wait.elapsed().as_secs_f64(),
    );
    assert!(
        sent >= pipeliners * (256 << 10),
        "the callers sent only {sent} bytes: the provider was never made to buffer"
    );
    // During the attack the provider is busy answering what the kernel's
    // socket buffers hold (megabytes per connection): calls then may be
    // late, so only the calls afterwards must all succeed.
    assert!(
        after.is_empty(),
        "good calls failed after the attack: {after:?}"
    );
    assert!(
        fds_after <= fd_baseline + 2,
        "the provider still holds {fds_after} descriptors (baseline {fd_baseline}): stalled connections left open"
    );
    assert!(
        hwm < PEAK_BOUND_MIB << 10,
        "provider peak RSS {} MiB, bound {PEAK_BOUND_MIB} MiB",
        hwm >> 10
    );
    assert!(provider.alive(), "provider died:\n{}", provider.output());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_requests_borrow_from_a_bounded_pool() {
    const CLIENTS: usize = 50;
    const SIZE: usize = 4 << 20;
    const POOL_MIB: u64 = 32;
    let mut provider = Callee::start(
        "error",
        &format!("[limits]\nmax_buffered_total = {}\n", POOL_MIB << 20),
        None,
    );
    provider.wait_ready().await;
    let big = Arc::new(logins(1, 1, &vec![b'x'; SIZE]));
    let started = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let (addr, big) = (provider.addr.clone(), Arc::clone(&big));
        clients.spawn(async move {
            let mut s = TcpStream::connect(&addr).await.map_err(|e| e.to_string())?;
            s.write_all(&frame::PREAMBLE)
                .await
                .map_err(|e| e.to_string())?;
            s.write_all(&big).await.map_err(|e| e.to_string())?;
            let mut buf = bytes::BytesMut::new();
            let read = tokio::time::timeout(Duration::from_secs(30), async {
                loop {
                    if buf.len() >= 8 {
                        let mut frames = buf.clone();
                        let _ = frames.split_to(8);
                        match frame::try_decode(&mut frames, 1 << 20) {
                            Ok(Some(frame::Frame::Response { code, .. })) => return Ok(code),
                            Ok(Some(other)) => return Err(format!("{other:?}")),
                            Ok(None) => {}
                            Err(e) => return Err(e.to_string()),
                        }
                    }
                    match s.read_buf(&mut buf).await {
                        Ok(0) => return Err("closed".to_string()),
                        Ok(_) => {}
                        Err(e) => return Err(e.to_string()),
                    }
                }
            })
            .await;
            match read {
                Ok(Ok(mprpc::ErrorCode::Ok)) => Ok(()),
                Ok(Ok(code)) => Err(format!("{code:?}")),
                Ok(Err(e)) => Err(e),
                Err(_) => Err("no response within 30 s".to_string()),
            }
        });
    }
    let mut failures = Vec::new();
    while let Some(r) = clients.join_next().await {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(e),
            Err(e) => failures.push(e.to_string()),
        }
    }
    let (_, hwm) = provider.memory_kib();
    println!(
        "{CLIENTS} requests of {} MiB at once, pool {POOL_MIB} MiB: all answered in {:?}, \
         failures {failures:?}; provider peak RSS {} MiB",
        SIZE >> 20,
        started.elapsed(),
        hwm >> 10
    );
    assert!(failures.is_empty(), "{failures:?}");
    // Without the pool all 200 MiB would have been buffered at once. The
    // handler decodes each request into a copy (another 4 MiB per call
    // running), so allow the pool twice plus the runtime.
    assert!(
        hwm < (2 * POOL_MIB + 24) << 10,
        "peak RSS {} MiB",
        hwm >> 10
    );
    assert!(provider.alive());
}
