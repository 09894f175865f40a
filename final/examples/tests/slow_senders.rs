//! Slow senders cannot hold the provider's connection slots.
//!
//! The provider (`callee` example, a child process) allows 200 connections;
//! 300 slow senders each send the preamble and the head of a request
//! frame, then one byte a second — each byte is progress, so `idle_ms`
//! (10 s here) alone never fires. What must hold:
//!
//! * every slow connection is closed within `frame_ms` (3 s here) of its
//!   frame starting, plus scheduling slack, or earlier when it is the least
//!   productive connection and a newcomer needs its slot;
//! * while they hold every slot, at least 90 % of fresh callers (a new
//!   connection, one call, a 3 s deadline, one every 250 ms) succeed;
//! * a preamble or a course-format request trickled byte by byte is closed
//!   `handshake_ms` after the connection was accepted.
//!
//! Figures: `cargo test -p mprpc --test slow_senders -- --nocapture`.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use mprpc::frame::{self, Frame};
use mprpc::{ErrorCode, MprpcChannel, MprpcController};
use mprpc_examples::fixbug::{LoginRequest, UserServiceRpcStub};
use support::callee_process::Callee;

/// The provider's `limits.max_connections`.
const MAX_CONNECTIONS: usize = 200;
/// Slow senders kept connected (reconnecting when closed).
const SLOW: usize = 300;
/// The provider's `timeouts.frame_ms`, `handshake_ms` and `idle_ms`.
const FRAME_MS: u64 = 3000;
const HANDSHAKE_MS: u64 = 2000;
const IDLE_MS: u64 = 10_000;
/// Scheduling slack on a busy 2-core machine.
const SLACK: Duration = Duration::from_millis(1500);
/// Fresh callers: one every 250 ms.
const FRESH: usize = 32;

/// The service name framed requests carry (the full protobuf name
/// "fixbug.UserServiceRpc" once the provider publishes full names).
const FRAMED_SERVICE: &str = "fixbug.UserServiceRpc";

fn login() -> LoginRequest {
    LoginRequest {
        name: b"zhang san".to_vec(),
        pwd: b"123456".to_vec(),
    }
}

/// What ended a slow connection.
#[derive(Debug, Default)]
struct Ends {
    /// Closed with a `DeadlineExceeded` connection error (frame_ms).
    deadline: AtomicUsize,
    /// Closed with an `Overloaded` connection error (made room).
    evicted: AtomicUsize,
    /// Closed without a connection-error frame.
    other: AtomicUsize,
    /// Longest life of a slow connection, in ms.
    longest_ms: AtomicU64,
    /// Slow connections opened.
    opened: AtomicUsize,
}

/// One slow sender: connects, sends the preamble and 5 bytes of a Login
/// frame, then a byte a second, until the provider closes; then again,
/// until `stop`.
async fn slow_sender(addr: String, ends: Arc<Ends>, stop: Arc<AtomicBool>, once: bool) {
    let mut request = bytes::BytesMut::new();
    let encoded = frame::encode_request(
        &mut request,
        1,
        0,
        FRAMED_SERVICE,
        "Login",
        &login(),
        1 << 20,
    );
    assert!(encoded.is_ok());
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut s) = TcpStream::connect(&addr).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let opened = Instant::now();
        ends.opened.fetch_add(1, Ordering::Relaxed);
        let mut first = frame::PREAMBLE.to_vec();
        first.extend_from_slice(&request[..5]);
        if s.write_all(&first).await.is_err() {
            continue;
        }
        let mut sent = 5;
        let mut got = bytes::BytesMut::new();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        let end = loop {
            tokio::select! {
                r = s.read_buf(&mut got) => match r {
                    Ok(0) | Err(_) => break None,
                    Ok(_) => {
                        if got.len() >= 8 {
                            let mut frames = got.clone();
                            let _ = frames.split_to(8);
                            if let Ok(Some(Frame::ConnectionError { code, .. })) = frame::try_decode(&mut frames, 1 << 20) {
                                break Some(code);
                            }
                        }
                    }
                },
                _ = tick.tick() => {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    if sent < request.len() - 1 && s.write_all(&request[sent..sent + 1]).await.is_ok() {
                        sent += 1;
                    }
                }
            }
        };
        // A real attacker would reconnect at once; a pause keeps the
        // test's own load bounded.
        let lived = opened.elapsed().as_millis() as u64;
        tokio::time::sleep(Duration::from_millis(200)).await;
        ends.longest_ms.fetch_max(lived, Ordering::Relaxed);
        match end {
            Some(ErrorCode::DeadlineExceeded) => &ends.deadline,
            Some(ErrorCode::Overloaded) => &ends.evicted,
            _ => &ends.other,
        }
        .fetch_add(1, Ordering::Relaxed);
        if once {
            return;
        }
    }
}

/// Sends `bytes` one every 300 ms and returns how long the provider kept
/// the connection open.
async fn trickle(addr: String, bytes: Vec<u8>) -> Duration {
    let started = Instant::now();
    let Ok(mut s) = TcpStream::connect(&addr).await else {
        panic!("connect refused");
    };
    let mut sink = [0u8; 256];
    for b in bytes {
        if s.write_all(&[b]).await.is_err() {
            return started.elapsed();
        }
        match tokio::time::timeout(Duration::from_millis(300), s.read(&mut sink)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            _ => {}
        }
    }
    // Sent it all within the deadline?! Wait for the close.
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read(&mut sink)).await;
    started.elapsed()
}

/// `name` from the environment, else `default`: `MPRPC_SLOW=2000
/// MPRPC_MAX_CONNECTIONS=1024 MPRPC_FRESH=120` repeats the attack at
/// its own scale.
fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_senders_hold_no_slot_and_fresh_callers_get_in() {
    let max_connections = env_or("MPRPC_MAX_CONNECTIONS", MAX_CONNECTIONS);
    let slow_count = env_or("MPRPC_SLOW", SLOW);
    let fresh_count = env_or("MPRPC_FRESH", FRESH);
    let mut provider = Callee::start(
        "error",
        &format!(
            "[limits]\nmax_connections = {max_connections}\n\
             [timeouts]\nhandshake_ms = {HANDSHAKE_MS}\nidle_ms = {IDLE_MS}\nframe_ms = {FRAME_MS}\n"
        ),
        None,
    );
    provider.wait_ready().await;

    // A preamble and a course-format request, trickled: closed at
    // handshake_ms after accept, not reset by each byte.
    let mut trickles = tokio::task::JoinSet::new();
    for _ in 0..5 {
        trickles.spawn(trickle(provider.addr.clone(), frame::PREAMBLE.to_vec()));
        trickles.spawn(trickle(
            provider.addr.clone(),
            support::capture("request.hex"),
        ));
    }
    let mut longest_trickle = Duration::ZERO;
    while let Some(lived) = trickles.join_next().await {
        longest_trickle = longest_trickle.max(lived.unwrap_or(Duration::MAX));
    }
    println!("trickled preambles and legacy requests: closed after at most {longest_trickle:?}");
    assert!(
        longest_trickle <= Duration::from_millis(HANDSHAKE_MS) + SLACK,
        "a trickled handshake lived {longest_trickle:?}"
    );

    // Below max_connections nobody needs their slots: frame_ms alone
    // closes slow senders, with a DeadlineExceeded connection error.
    let below = Arc::new(Ends::default());
    let mut slow = tokio::task::JoinSet::new();
    for _ in 0..50 {
        slow.spawn(slow_sender(
            provider.addr.clone(),
            Arc::clone(&below),
            Arc::new(AtomicBool::new(false)),
            true,
        ));
    }
    while slow.join_next().await.is_some() {}
    let below_longest = Duration::from_millis(below.longest_ms.load(Ordering::Relaxed));
    println!(
        "50 slow senders below the limit: {} closed by frame_ms, {} otherwise; longest lived {below_longest:?}",
        below.deadline.load(Ordering::Relaxed),
        below.evicted.load(Ordering::Relaxed) + below.other.load(Ordering::Relaxed),
    );
    assert_eq!(below.deadline.load(Ordering::Relaxed), 50);
    assert!(below_longest <= Duration::from_millis(FRAME_MS) + SLACK);

    let ends = Arc::new(Ends::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut slow = tokio::task::JoinSet::new();
    for i in 0..slow_count {
        slow.spawn(slow_sender(
            provider.addr.clone(),
            Arc::clone(&ends),
            Arc::clone(&stop),
            false,
        ));
        if i % 25 == 24 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let fds_full = provider.open_fds();

    // Fresh callers, one every 250 ms, each on a new connection.
    let mut fresh = tokio::task::JoinSet::new();
    for _ in 0..fresh_count {
        let addr = provider.addr.clone();
        fresh.spawn(async move {
            let stub = UserServiceRpcStub::new(MprpcChannel::direct(&addr));
            let controller = MprpcController::with_timeout(Duration::from_secs(3));
            stub.login_with(&controller, &login()).await.map(|_| ())
        });
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (mut ok, mut failures) = (0, Vec::new());
    while let Some(r) = fresh.join_next().await {
        match r {
            Ok(Ok(())) => ok += 1,
            Ok(Err(e)) => failures.push(e.to_string()),
            Err(e) => failures.push(e.to_string()),
        }
    }
    // Let every slow connection opened so far reach its end.
    tokio::time::sleep(Duration::from_millis(FRAME_MS) + SLACK).await;
    stop.store(true, Ordering::Relaxed);
    while slow.join_next().await.is_some() {}

    let longest = Duration::from_millis(ends.longest_ms.load(Ordering::Relaxed));
    println!(
        "{slow_count} slow senders against max_connections = {max_connections}: provider fds with every slot held: {fds_full}; \
         {} slow connections opened, ended by frame_ms: {}, evicted to make room: {}, otherwise: {}; \
         longest lived {longest:?}; fresh callers: {ok} of {fresh_count} succeeded; failures: {failures:?}",
        ends.opened.load(Ordering::Relaxed),
        ends.deadline.load(Ordering::Relaxed),
        ends.evicted.load(Ordering::Relaxed),
        ends.other.load(Ordering::Relaxed),
    );
    assert!(
        fds_full >= max_connections,
        "the slow senders never filled the provider ({fds_full} descriptors): nothing was measured"
    );
    assert!(
        ok * 10 >= fresh_count * 9,
        "only {ok} of {fresh_count} fresh callers succeeded: {failures:?}"
    );
    assert!(
        longest <= Duration::from_millis(FRAME_MS) + SLACK,
        "a slow sender held its connection for {longest:?}"
    );
    assert!(provider.alive(), "provider died:\n{}", provider.output());

    // Good calls afterwards.
    let stub = UserServiceRpcStub::new(MprpcChannel::direct(&provider.addr));
    let after = stub.login(&login()).await;
    assert!(after.is_ok(), "{after:?}");
}
