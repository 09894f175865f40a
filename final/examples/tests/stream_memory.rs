//! What a stream nobody reads costs the provider, measured as the
//! provider's own resident memory: the `feed_server` example runs as a
//! child process, a caller opens a stream of 64 KiB messages without end,
//! reads one and stops, and the test reads the child's `VmRSS` from
//! `/proc/<pid>/status` over two seconds while unary calls on the same
//! connection answer. The control runs the same measurement against a
//! provider that is allowed to buffer a 32 MiB window (a raw caller
//! announcing it and reading nothing, a connection budget raised to hold
//! it): there the figure grows by megabytes, so the bound of the first test is one the measurement can
//! break. `cargo test -p mprpc-examples --test stream_memory -- --nocapture`
//! prints the figures.

mod support;

use std::time::{Duration, Instant};

use bytes::BytesMut;
use mprpc::frame;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use mprpc::{MprpcChannel, MprpcConfig, MprpcController, Streaming};
use mprpc_examples::feed::{Event, FeedStub, PingRequest, WatchRequest};
use support::callee_process::Callee;

/// Bytes of filler in each message.
const MESSAGE: u32 = 64 << 10;
/// One stream-message frame of such a message: the filler, a few bytes of
/// protobuf and the frame's header, rounded up.
const FRAME: u64 = (64 << 10) + 64;
/// What the bound allows beyond the window and one frame: the allocator's
/// rounding and the stream task's and connection's first allocations.
const SLACK: u64 = 1 << 20;
/// How long, and how often, the memory is read while the stream is held.
const HOLD: Duration = Duration::from_secs(2);
/// Readings over [`HOLD`].
const READINGS: u32 = 10;

/// What one held stream cost.
#[derive(Debug)]
struct Held {
    /// VmRSS before the stream opened, bytes.
    before: u64,
    /// VmRSS when the provider had stopped producing, bytes.
    at_window: u64,
    /// The highest VmRSS read while the stream was held, bytes.
    highest: u64,
    /// Messages the provider produced before it stopped.
    produced: u64,
    /// Messages produced by the end of the hold (must equal `produced`
    /// when flow control holds the handler).
    produced_after: u64,
    /// The slowest unary call on the same connection meanwhile.
    slowest_ping: Duration,
}

/// The provider's VmRSS in bytes.
fn rss(provider: &Callee) -> u64 {
    provider.memory_kib().0 << 10
}

/// `Ping`'s count of produced messages; fails the test if the call does not
/// answer within 2 s.
async fn produced(stub: &FeedStub) -> (u64, Duration) {
    let started = Instant::now();
    match tokio::time::timeout(Duration::from_secs(2), stub.ping(&PingRequest {})).await {
        Ok(Ok(r)) => (r.produced, started.elapsed()),
        other => panic!("a unary call beside the held stream: {other:?}"),
    }
}

/// Opens an endless stream of [`MESSAGE`]-byte messages on `stub`.
async fn endless(stub: &FeedStub) -> Streaming<Event> {
    let controller = MprpcController::with_timeout(Duration::from_secs(60));
    let request = WatchRequest {
        count: 0,
        size: MESSAGE,
    };
    match stub.watch_with(&controller, &request).await {
        Ok(s) => s,
        Err(e) => panic!("open: {e}"),
    }
}

/// Starts `feed_server` with `tables` (TOML) and waits until it listens.
async fn feed_server(tables: &str) -> Callee {
    let mut provider = Callee::start_example("feed_server", "error", tables, None);
    provider.wait_ready().await;
    provider
}

/// Once the provider has stopped producing (two readings of `Ping` 200 ms
/// apart agree), reads its memory [`READINGS`] times over [`HOLD`], with a
/// unary call on `stub` after each reading. `before` is the reading taken
/// before the stream opened.
async fn measure_held(provider: &Callee, stub: &FeedStub, before: u64) -> Held {
    let mut last = u64::MAX;
    let mut slowest_ping = Duration::ZERO;
    let settle = Instant::now();
    loop {
        let (now, took) = produced(stub).await;
        slowest_ping = slowest_ping.max(took);
        if now == last || settle.elapsed() > Duration::from_secs(10) {
            break;
        }
        last = now;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let at_window = rss(provider);
    let mut highest = at_window;
    for _ in 0..READINGS {
        tokio::time::sleep(HOLD / READINGS).await;
        highest = highest.max(rss(provider));
        let (_, took) = produced(stub).await;
        slowest_ping = slowest_ping.max(took);
    }
    let (produced_after, _) = produced(stub).await;
    Held {
        before,
        at_window,
        highest,
        produced: last,
        produced_after,
        slowest_ping,
    }
}

/// Starts `feed_server` with the defaults, opens an endless stream of
/// [`MESSAGE`]-byte messages with the caller's `config`, reads one and
/// holds it unread, and measures, making the unary calls on the stream's
/// own connection.
async fn hold_a_stream(config: &MprpcConfig) -> (Held, Callee) {
    let provider = feed_server("").await;
    let stub = FeedStub::new(MprpcChannel::direct_with(config, &provider.addr));
    // The connection and the runtime's first allocations, before the
    // baseline.
    let _ = produced(&stub).await;
    let before = rss(&provider);
    let mut events = endless(&stub).await;
    assert!(matches!(events.message().await, Ok(Some(e)) if e.seq == 0));
    let held = measure_held(&provider, &stub, before).await;
    drop(events);
    (held, provider)
}

/// A caller that announces a 32 MiB window and then reads nothing from its
/// socket at all (`final/`'s caller would keep reading into its own
/// buffer, up to the window): everything the kernel's socket buffers cannot
/// take stays with the provider.
async fn raw_unread_stream(addr: &str) -> TcpStream {
    let mut s = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => panic!("connect: {e}"),
    };
    let mut out = BytesMut::new();
    let mut preamble = frame::PREAMBLE;
    preamble[5] = frame::FLAG_METADATA | frame::FLAG_STREAMS;
    out.extend_from_slice(&preamble);
    let request = WatchRequest {
        count: 0,
        size: MESSAGE,
    };
    let opened = frame::encode_stream_open(
        &mut out,
        1,
        60_000,
        32 << 20,
        ("feed.Feed", "Watch"),
        None,
        &request,
        1 << 20,
    );
    assert!(opened.is_ok(), "{opened:?}");
    assert!(s.write_all(&out).await.is_ok());
    s
}

/// Prints `held` in KiB.
fn report(what: &str, window: u64, held: &Held) {
    println!(
        "{what}: window {} KiB, messages of {} KiB; provider VmRSS before {} KiB, at the window {} KiB, \
         highest over {HOLD:?} {} KiB (growth {} KiB from before, {} KiB after the window); \
         {} messages produced, {} at the end; slowest unary call {:?}",
        window >> 10,
        MESSAGE >> 10,
        held.before >> 10,
        held.at_window >> 10,
        held.highest >> 10,
        held.highest.saturating_sub(held.before) >> 10,
        held.highest.saturating_sub(held.at_window) >> 10,
        held.produced,
        held.produced_after,
        held.slowest_ping,
    );
}

// ANCHOR: rss
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_stream_holds_the_providers_memory_to_the_window() {
    let config = support::local_config();
    let window = config.limits.stream_window_bytes as u64;
    let (held, mut provider) = hold_a_stream(&config).await;
    report("unread stream", window, &held);
    let bound = window + FRAME + SLACK;
    assert!(
        held.highest.saturating_sub(held.before) < bound,
        "the provider grew by {} KiB holding an unread stream (bound {} KiB)",
        held.highest.saturating_sub(held.before) >> 10,
        bound >> 10
    );
    // Flow control is what held it: the handler produced about one
    // window's worth (the message read, the window, one in flight) and
    // then nothing.
    assert!(held.produced <= window / u64::from(MESSAGE) + 2, "{held:?}");
    assert_eq!(held.produced, held.produced_after, "{held:?}");
    assert!(held.slowest_ping < Duration::from_secs(2), "{held:?}");
    assert!(provider.alive(), "provider died:\n{}", provider.output());
}
// ANCHOR_END: rss

/// The control: the same measurement, on a provider allowed to hold a
/// 32 MiB window in its connection's buffer (budget raised to 128 MiB) and
/// a caller that announces such a window and reads nothing, sees the
/// memory grow by more than the first test's bound — and a stream read
/// normally for as long gets far more messages than one window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_measurement_sees_a_provider_that_buffers_a_big_window() {
    let config = support::local_config();
    let tables = format!(
        "[limits]\nmax_buffered_per_connection = {}\nmax_buffered_total = {}\n",
        128 << 20,
        128 << 20
    );
    let mut provider = feed_server(&tables).await;
    // Pings on a connection of their own: the raw caller's is unread.
    let stub = FeedStub::new(MprpcChannel::direct_with(&config, &provider.addr));
    let _ = produced(&stub).await;
    let before = rss(&provider);
    let raw = raw_unread_stream(&provider.addr).await;
    let held = measure_held(&provider, &stub, before).await;
    drop(raw);
    report("control, 32 MiB window, socket unread", 32 << 20, &held);
    let default_bound = (256 << 10) + FRAME + SLACK;
    assert!(
        held.highest.saturating_sub(held.before) > 4 * default_bound,
        "the control grew by only {} KiB: the measurement cannot see a buffered window",
        held.highest.saturating_sub(held.before) >> 10
    );
    // Read normally, the same stream goes on far beyond one window.
    let mut events = endless(&stub).await;
    let started = Instant::now();
    let mut read = 0u64;
    while started.elapsed() < HOLD {
        match events.message().await {
            Ok(Some(_)) => read += 1,
            other => panic!("after {read}: {other:?}"),
        }
    }
    println!("read normally for {HOLD:?}: {read} messages");
    assert!(read > 4 * ((256 << 10) / u64::from(MESSAGE) + 2), "{read}");
    assert!(provider.alive(), "provider died:\n{}", provider.output());
}
