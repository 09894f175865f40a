//! Server streams over real TCP (chapter "Streams"): order, flow control,
//! cancellation and deadlines seen from the handler's side, refusals of
//! callers and providers that cannot stream, drain, and the blocking
//! iterator.

mod support;

use std::time::Duration;

use bytes::BytesMut;
use futures_util::StreamExt;
use mprpc::frame::{self, Frame};
use mprpc::{BlockingChannel, ErrorCode, MprpcChannel, MprpcConfig, MprpcController};
use mprpc_examples::FeedService;
use mprpc_examples::feed::{
    BlockingFeedStub, Chunk, FEED_DESCRIPTOR, FeedServer, FeedStub, Msg, PingRequest, WatchRequest,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Starts a provider of `feed` with `config`.
async fn feed_provider(config: MprpcConfig, feed: FeedService) -> mprpc::RunningProvider {
    let mut provider = support::provider(config);
    provider.notify_service(FeedServer::new(feed));
    support::start(provider).await
}

/// A stub on a channel with `config` to `p`.
fn stub(config: &MprpcConfig, p: &mprpc::RunningProvider) -> FeedStub {
    FeedStub::new(MprpcChannel::direct_with(
        config,
        &p.local_addr().to_string(),
    ))
}

/// A controller with a generous deadline: the default `call_ms` (5 s)
/// covers a whole stream, and a debug build on a shared machine is slow.
fn long() -> MprpcController {
    MprpcController::with_timeout(Duration::from_secs(60))
}

/// `count` events of `size` bytes.
fn watch(count: u64, size: u32) -> WatchRequest {
    WatchRequest { count, size }
}

// ANCHOR: in_order
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_messages_arrive_in_order() {
    let config = support::local_config();
    let p = feed_provider(config.clone(), FeedService::default()).await;
    let stub = stub(&config, &p);
    let mut events = match stub.watch_with(&long(), &watch(100_000, 8)).await {
        Ok(s) => s,
        Err(e) => panic!("open: {e}"),
    };
    // Unary calls on the same connection while the stream flows: none of
    // them waits behind it.
    let pinger = {
        let stub = stub.clone();
        tokio::spawn(async move {
            let mut slowest = Duration::ZERO;
            for _ in 0..20 {
                let started = std::time::Instant::now();
                if stub.ping(&PingRequest {}).await.is_err() {
                    return None;
                }
                slowest = slowest.max(started.elapsed());
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Some(slowest)
        })
    };
    let mut next = 0u64;
    loop {
        match events.message().await {
            Ok(Some(event)) => {
                assert_eq!(event.seq, next, "out of order");
                assert_eq!(event.data.len(), 8);
                next += 1;
            }
            Ok(None) => break,
            Err(e) => panic!("after {next} events: {e}"),
        }
    }
    assert_eq!(next, 100_000);
    let slowest = pinger.await.ok().flatten();
    assert!(
        slowest.is_some_and(|d| d < Duration::from_secs(2)),
        "pings beside the stream: {slowest:?}"
    );
    // After the end, the end again.
    assert!(matches!(events.message().await, Ok(None)));
    // The same through `impl Stream`.
    let events = match stub.watch_with(&long(), &watch(10, 1)).await {
        Ok(s) => s,
        Err(e) => panic!("open: {e}"),
    };
    let seqs: Vec<u64> = events
        .map(|r| r.map(|e| e.seq).unwrap_or(u64::MAX))
        .collect()
        .await;
    assert_eq!(seqs, (0..10).collect::<Vec<_>>());
    p.shutdown().await.ok();
}
// ANCHOR_END: in_order

// ANCHOR: window
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_holds_the_provider_to_the_window() {
    let mut config = support::local_config();
    config.limits.stream_window_bytes = 16 << 10;
    let feed = FeedService::default();
    let p = feed_provider(config.clone(), feed.clone()).await;
    let stub = stub(&config, &p);
    // 1 KiB events, endless; read one, then stop reading.
    let mut events = match stub.watch_with(&long(), &watch(0, 1024)).await {
        Ok(s) => s,
        Err(e) => panic!("open: {e}"),
    };
    assert!(matches!(events.message().await, Ok(Some(e)) if e.seq == 0));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held = feed.produced();
    // An event is 1,024 bytes of filler plus 5 of protobuf: the window
    // lets 16 go out (the 16th while 949 bytes of credit are left).
    assert!(
        held <= 16,
        "the provider produced {held} events for a 16 KiB window"
    );
    // A unary call on the same connection still answers meanwhile…
    let ping = stub.ping(&PingRequest {}).await;
    assert!(matches!(&ping, Ok(r) if r.produced == held), "{ping:?}");
    // …and the provider stays held.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(feed.produced(), held);
    // Reading again grants credit: the stream goes on, in order.
    for want in 1..=200 {
        match events.message().await {
            Ok(Some(e)) => assert_eq!(e.seq, want),
            other => panic!("event {want}: {other:?}"),
        }
    }
    drop(events);
    p.shutdown().await.ok();
}
// ANCHOR_END: window

// ANCHOR: cancel
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_stream_drops_the_handlers_stream() {
    let config = support::local_config();
    let (tx, mut dropped) = mpsc::unbounded_channel();
    let p = feed_provider(config.clone(), FeedService::reporting_drops(tx)).await;
    let stub = stub(&config, &p);
    let mut events = match stub.watch_with(&long(), &watch(0, 16)).await {
        Ok(s) => s,
        Err(e) => panic!("open: {e}"),
    };
    for want in 0..3 {
        assert!(matches!(events.message().await, Ok(Some(e)) if e.seq == want));
    }
    assert!(dropped.try_recv().is_err(), "dropped while still read");
    drop(events);
    let seen = tokio::time::timeout(Duration::from_secs(5), dropped.recv()).await;
    assert!(matches!(seen, Ok(Some(n)) if n >= 3), "{seen:?}");
    // The connection is fine for the next call.
    assert!(stub.ping(&PingRequest {}).await.is_ok());
    p.shutdown().await.ok();
}
// ANCHOR_END: cancel

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_ends_the_handlers_stream() {
    let config = support::local_config();
    let (tx, mut dropped) = mpsc::unbounded_channel();
    let p = feed_provider(config.clone(), FeedService::reporting_drops(tx)).await;
    let stub = stub(&config, &p);
    let controller = MprpcController::with_timeout(Duration::from_millis(300));
    let mut events = match stub.watch_with(&controller, &watch(0, 16)).await {
        Ok(s) => s,
        Err(e) => panic!("open: {e}"),
    };
    let started = std::time::Instant::now();
    let end = loop {
        match events.message().await {
            Ok(Some(_)) => continue,
            other => break other,
        }
    };
    assert!(
        matches!(&end, Err(s) if s.code == ErrorCode::DeadlineExceeded),
        "{end:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    let seen = tokio::time::timeout(Duration::from_secs(5), dropped.recv()).await;
    assert!(
        matches!(seen, Ok(Some(_))),
        "handler's stream not dropped: {seen:?}"
    );
    p.shutdown().await.ok();
}

/// The deadline is the provider's to enforce too: a caller that keeps the
/// stream (and its connection) but reads nothing still sees the handler's
/// stream dropped when the deadline passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_enforces_the_deadline_on_its_own() {
    let config = support::local_config();
    let (tx, mut dropped) = mpsc::unbounded_channel();
    let p = feed_provider(config.clone(), FeedService::reporting_drops(tx)).await;
    let stub = stub(&config, &p);
    let controller = MprpcController::with_timeout(Duration::from_millis(300));
    let events = match stub.watch_with(&controller, &watch(0, 16)).await {
        Ok(s) => s,
        Err(e) => panic!("open: {e}"),
    };
    let seen = tokio::time::timeout(Duration::from_secs(5), dropped.recv()).await;
    assert!(
        matches!(seen, Ok(Some(_))),
        "handler's stream not dropped: {seen:?}"
    );
    drop(events);
    p.shutdown().await.ok();
}

/// A caller that neither reads its stream nor sets a deadline cannot hold
/// the connection (and the handler's stream) for ever: with its credit
/// spent, the stream is no work, and `idle_ms` without progress closes the
/// connection. A quiet stream with credit left is work, like a handler
/// running, and stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_without_credit_does_not_hold_the_connection_for_ever() {
    let mut config = support::local_config();
    config.timeouts.idle_ms = 300;
    config.timeouts.call_ms = 0;
    config.limits.stream_window_bytes = 4096;
    let (tx, mut dropped) = mpsc::unbounded_channel();
    let p = feed_provider(config.clone(), FeedService::reporting_drops(tx)).await;
    let stub = stub(&config, &p);
    let mut events = match stub.watch(&watch(0, 1024)).await {
        Ok(s) => s,
        Err(e) => panic!("open: {e}"),
    };
    assert!(matches!(events.message().await, Ok(Some(_))));
    let seen = tokio::time::timeout(Duration::from_secs(5), dropped.recv()).await;
    assert!(
        matches!(seen, Ok(Some(_))),
        "handler's stream still held: {seen:?}"
    );
    // The caller reads what was sent, then learns the connection closed.
    let end = loop {
        match events.message().await {
            Ok(Some(_)) => continue,
            other => break other,
        }
    };
    assert!(
        matches!(&end, Err(s) if s.code == ErrorCode::Transport),
        "{end:?}"
    );
    p.shutdown().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_beyond_max_streams_per_connection_are_refused() {
    let mut config = support::local_config();
    config.limits.max_streams_per_connection = 2;
    let p = feed_provider(config.clone(), FeedService::default()).await;
    let stub = stub(&config, &p);
    let mut open = Vec::new();
    for _ in 0..2 {
        match stub.watch_with(&long(), &watch(0, 1)).await {
            Ok(mut s) => {
                assert!(matches!(s.message().await, Ok(Some(_))));
                open.push(s);
            }
            Err(e) => panic!("open: {e}"),
        }
    }
    let third = match stub.watch_with(&long(), &watch(0, 1)).await {
        Ok(mut s) => s.message().await,
        Err(e) => Err(e),
    };
    assert!(
        matches!(&third, Err(s) if s.code == ErrorCode::Overloaded
            && s.message.contains("max_streams_per_connection")),
        "{third:?}"
    );
    // Ending one makes room.
    open.pop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let again = match stub.watch_with(&long(), &watch(3, 1)).await {
        Ok(mut s) => s.message().await,
        Err(e) => Err(e),
    };
    assert!(matches!(again, Ok(Some(_))), "{again:?}");
    drop(open);
    p.shutdown().await.ok();
}

/// Reads the provider's preamble, then frames, until one is complete.
async fn next_frame(s: &mut TcpStream, buf: &mut BytesMut) -> Option<Frame> {
    loop {
        match frame::try_decode(buf, 1 << 20) {
            Ok(Some(f)) => return Some(f),
            Ok(None) => {}
            Err(e) => panic!("bad frame: {e}"),
        }
        match tokio::time::timeout(Duration::from_secs(5), s.read_buf(buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return None,
        }
    }
}

/// Sends `Ping` as call `id` on a raw connection and checks it answers.
async fn raw_ping(s: &mut TcpStream, buf: &mut BytesMut, id: u64) {
    let mut out = BytesMut::new();
    let sent = frame::encode_request(
        &mut out,
        id,
        5000,
        "feed.Feed",
        "Ping",
        &PingRequest {},
        1 << 20,
    );
    assert!(sent.is_ok(), "{sent:?}");
    assert!(s.write_all(&out).await.is_ok());
    let reply = next_frame(s, buf).await;
    assert!(
        matches!(&reply, Some(Frame::Response { id: i, code: ErrorCode::Ok, .. }) if *i == id),
        "{reply:?}"
    );
}

/// A raw caller whose preamble sets `flags`, opening a stream of `method`.
async fn raw_open(addr: std::net::SocketAddr, flags: u8, method: &str) -> Option<Frame> {
    raw_stream(addr, flags, method, &watch(3, 1)).await.2
}

/// A raw caller whose preamble sets `flags`, opening stream 1 of `method`
/// with `payload`: the connection, what is buffered of it, and the first
/// frame the provider sent.
async fn raw_stream<M: prost::Message>(
    addr: std::net::SocketAddr,
    flags: u8,
    method: &str,
    payload: &M,
) -> (TcpStream, BytesMut, Option<Frame>) {
    let mut s = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => panic!("connect: {e}"),
    };
    let mut out = BytesMut::new();
    let mut preamble = frame::PREAMBLE;
    preamble[5] = flags;
    out.extend_from_slice(&preamble);
    let opened = frame::encode_stream_open(
        &mut out,
        1,
        5000,
        1 << 16,
        ("feed.Feed", method),
        None,
        payload,
        1 << 20,
    );
    assert!(opened.is_ok());
    assert!(s.write_all(&out).await.is_ok());
    let mut buf = BytesMut::new();
    let mut theirs = [0u8; 8];
    assert!(s.read_exact(&mut theirs).await.is_ok());
    assert_eq!(
        frame::check_preamble(&theirs).map(|f| f & frame::FLAG_STREAMS),
        Ok(frame::FLAG_STREAMS)
    );
    let first = next_frame(&mut s, &mut buf).await;
    (s, buf, first)
}

// ANCHOR: refusals
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_and_providers_that_cannot_stream_are_refused() {
    let config = support::local_config();
    let p = feed_provider(config.clone(), FeedService::default()).await;
    let addr = p.local_addr();
    // A caller whose preamble lacks flag bit 1.
    let f = raw_open(addr, frame::FLAG_METADATA, "Watch").await;
    assert!(
        matches!(&f, Some(Frame::StreamEnd { id: 1, code: ErrorCode::Unsupported, message })
            if String::from_utf8_lossy(message).contains("flag bit 1")),
        "{f:?}"
    );
    // The same caller with the flag gets its three events and the end.
    let f = raw_open(addr, frame::FLAG_METADATA | frame::FLAG_STREAMS, "Watch").await;
    assert!(
        matches!(f, Some(Frame::StreamMessage { id: 1, .. })),
        "{f:?}"
    );
    // A stream opened on a unary method, and on a client-streaming one.
    let f = raw_open(addr, 0x03, "Ping").await;
    assert!(
        matches!(&f, Some(Frame::StreamEnd { code: ErrorCode::Unsupported, message, .. })
            if String::from_utf8_lossy(message).contains("unary")),
        "{f:?}"
    );
    // A client stream's opening carries no payload.
    let f = raw_open(addr, 0x03, "Upload").await;
    assert!(
        matches!(&f, Some(Frame::StreamEnd { code: ErrorCode::BadRequest, message, .. })
            if String::from_utf8_lossy(message).contains("no payload")),
        "{f:?}"
    );
    // The handler's own error ends the stream with its status.
    let stub = FeedStub::new(MprpcChannel::direct_with(&config, &addr.to_string()));
    let r = match stub.watch(&watch(1, 2 << 20)).await {
        Ok(mut s) => s.message().await,
        Err(e) => Err(e),
    };
    assert!(
        matches!(&r, Err(s) if s.code == ErrorCode::HandlerError && s.message.contains("1 MiB")),
        "{r:?}"
    );
    // A unary call of the streaming method.
    let channel = MprpcChannel::direct_with(&config, &addr.to_string());
    let r: Result<mprpc_examples::feed::Event, _> =
        channel.call(None, &FEED_DESCRIPTOR, 0, &watch(1, 1)).await;
    assert!(
        matches!(&r, Err(s) if s.code == ErrorCode::Unsupported),
        "{r:?}"
    );
    // A course-format caller: the course's format cannot stream, so it is
    // not served (the format has no error channel: the provider closes,
    // and logs why), while a unary method is.
    let r: Result<mprpc_examples::feed::Event, _> =
        mprpc::legacy::call(&addr.to_string(), "Feed", "Watch", &watch(1, 1), 1 << 20).await;
    assert!(r.is_err(), "{r:?}");
    let r: Result<mprpc_examples::feed::PingReply, _> =
        mprpc::legacy::call(&addr.to_string(), "Feed", "Ping", &PingRequest {}, 1 << 20).await;
    assert!(r.is_ok(), "{r:?}");
    p.shutdown().await.ok();

    // A provider whose preamble lacks the flag (an older mprpc): the stub
    // refuses locally and sends nothing.
    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("bind: {e}"),
    };
    let old = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let server = tokio::spawn(async move {
        let Ok((mut s, _)) = listener.accept().await else {
            return Vec::new();
        };
        let mut preamble = frame::PREAMBLE;
        preamble[5] = frame::FLAG_METADATA;
        let _ = s.write_all(&preamble).await;
        let mut got = Vec::new();
        let _ = tokio::time::timeout(Duration::from_millis(500), s.read_to_end(&mut got)).await;
        got
    });
    let stub = FeedStub::new(MprpcChannel::direct_with(&config, &old));
    let r = stub.watch(&watch(1, 1)).await;
    assert!(
        matches!(&r, Err(s) if s.code == ErrorCode::Unsupported && s.message.contains("cannot stream")),
        "{:?}",
        r.as_ref().err()
    );
    // So are a client stream and a bidirectional one.
    let r = stub.upload(futures_util::stream::iter(chunks(1, 1))).await;
    assert!(
        matches!(&r, Err(s) if s.code == ErrorCode::Unsupported && s.message.contains("cannot stream")),
        "{r:?}"
    );
    let r = stub
        .chat(futures_util::stream::iter([Msg::default()]))
        .await;
    assert!(
        matches!(&r, Err(s) if s.code == ErrorCode::Unsupported && s.message.contains("cannot stream")),
        "{:?}",
        r.as_ref().err()
    );
    drop(stub);
    let got = server.await.unwrap_or_default();
    // Only our preamble reached it: no stream frame.
    assert_eq!(got.len(), 8, "{got:02x?}");
}
// ANCHOR_END: refusals

/// With metrics on, a stream counts as one call of its method, and its
/// messages are counted too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_a_streams_messages() {
    let mut config = support::local_config();
    config.admin.address = Some("127.0.0.1:0".into());
    let p = feed_provider(config.clone(), FeedService::default()).await;
    let stub = stub(&config, &p);
    let mut events = match stub.watch_with(&long(), &watch(25, 1)).await {
        Ok(s) => s,
        Err(e) => panic!("open: {e}"),
    };
    let mut n = 0;
    while let Ok(Some(_)) = events.message().await {
        n += 1;
    }
    assert_eq!(n, 25);
    let Some(admin) = p.admin_addr() else {
        panic!("no admin endpoint")
    };
    let labels = "{service=\"feed.Feed\",method=\"Watch\"}";
    let mut body = String::new();
    // The provider counts the call when its end has been sent: give it a moment.
    for _ in 0..50 {
        body = support::http_get(admin, "/metrics").await.1;
        if support::sample(&body, &format!("mprpc_server_calls_total{labels}")) == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        support::sample(
            &body,
            &format!("mprpc_server_stream_messages_total{labels}")
        ),
        Some(25.0),
        "{body}"
    );
    assert_eq!(
        support::sample(&body, &format!("mprpc_server_calls_total{labels}")),
        Some(1.0)
    );
    p.shutdown().await.ok();
}

/// The provider's interceptors see a stream's opening with the caller's
/// metadata, and may refuse it; the channel's interceptors add to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interceptors_and_metadata_apply_to_streams() {
    let config = support::local_config();
    let mut provider = support::provider(config.clone());
    provider.notify_service(FeedServer::new(FeedService::default()));
    provider.add_interceptor(|call: &mut mprpc::ServerCall| {
        match call.metadata.get("authorization") {
            Some("Bearer t0k3n") => Ok(()),
            _ => Err(mprpc::Status::new(
                ErrorCode::Unauthenticated,
                format!("{}.{}: no token", call.service, call.method),
            )),
        }
    });
    let p = support::start(provider).await;
    let channel = MprpcChannel::direct_with(&config, &p.local_addr().to_string());
    // Without the token: refused, as the stream's first item.
    let r = match FeedStub::new(channel.clone()).watch(&watch(2, 1)).await {
        Ok(mut s) => s.message().await,
        Err(e) => Err(e),
    };
    assert!(
        matches!(&r, Err(s) if s.code == ErrorCode::Unauthenticated && s.message.contains("feed.Feed.Watch")),
        "{r:?}"
    );
    // With it, from a client interceptor: served.
    let with_token = channel.with_interceptor(|call: &mut mprpc::ClientCall| {
        call.metadata.insert("authorization", "Bearer t0k3n")
    });
    let r = match FeedStub::new(with_token).watch(&watch(2, 1)).await {
        Ok(mut s) => s.message().await,
        Err(e) => Err(e),
    };
    assert!(matches!(&r, Ok(Some(e)) if e.seq == 0), "{r:?}");
    p.shutdown().await.ok();
}

// ANCHOR: drain
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_provider_lets_an_open_stream_finish() {
    let config = support::local_config();
    let p = feed_provider(config.clone(), FeedService::default()).await;
    let stub = stub(&config, &p);
    let mut events = match stub.watch_with(&long(), &watch(5_000, 64)).await {
        Ok(s) => s,
        Err(e) => panic!("open: {e}"),
    };
    for want in 0..10 {
        assert!(matches!(events.message().await, Ok(Some(e)) if e.seq == want));
    }
    let shutdown = tokio::spawn(p.shutdown());
    // Reading slowly for a moment: the goaway has come meanwhile.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut next = 10;
    loop {
        match events.message().await {
            Ok(Some(e)) => {
                assert_eq!(e.seq, next);
                next += 1;
            }
            Ok(None) => break,
            Err(e) => panic!("after {next}: {e}"),
        }
    }
    assert_eq!(next, 5_000);
    drop(events);
    let done = tokio::time::timeout(Duration::from_secs(5), shutdown).await;
    assert!(matches!(done, Ok(Ok(Ok(())))), "{done:?}");
}
// ANCHOR_END: drain

// ANCHOR: blocking
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blocking_stub_streams_as_an_iterator() {
    let config = support::local_config();
    let p = feed_provider(config.clone(), FeedService::default()).await;
    let addr = p.local_addr().to_string();
    let seqs = tokio::task::spawn_blocking(move || {
        // A blocking channel runs its own runtime: made on a thread of
        // its own, not inside this test's.
        std::thread::spawn(move || {
            let channel = match BlockingChannel::direct(&addr) {
                Ok(c) => c,
                Err(e) => panic!("{e}"),
            };
            let stub = BlockingFeedStub::new(channel);
            match stub.watch_with(&long(), &watch(1_000, 4)) {
                Ok(events) => events
                    .map(|r| r.map(|e| e.seq).unwrap_or(u64::MAX))
                    .collect::<Vec<_>>(),
                Err(e) => panic!("open: {e}"),
            }
        })
        .join()
        .unwrap_or_default()
    })
    .await
    .unwrap_or_default();
    assert_eq!(seqs, (0..1_000).collect::<Vec<_>>());
    p.shutdown().await.ok();
}
// ANCHOR_END: blocking

// Client streams and bidirectional streams.

/// `n` chunks of `size` bytes, chunk `i` with value `i`.
fn chunks(n: u64, size: usize) -> impl Iterator<Item = Chunk> + Send + 'static {
    (0..n).map(move |i| Chunk {
        data: vec![b'c'; size],
        value: i,
    })
}

/// A chunk whose data is `data`.
fn chunk(data: &[u8]) -> Chunk {
    Chunk {
        data: data.to_vec(),
        value: 0,
    }
}

/// The next report of the handler, within 5 s.
async fn next_seen(seen: &mut mpsc::UnboundedReceiver<String>) -> String {
    match tokio::time::timeout(Duration::from_secs(5), seen.recv()).await {
        Ok(Some(s)) => s,
        other => panic!("no report from the handler: {other:?}"),
    }
}

// ANCHOR: upload_round_trip
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_chunks_are_summed_and_the_half_close_is_seen() {
    let config = support::local_config();
    let (tx, mut seen) = mpsc::unbounded_channel();
    let p = feed_provider(config.clone(), FeedService::reporting_input(tx)).await;
    let stub = stub(&config, &p);
    let requests = futures_util::stream::iter(chunks(10_000, 16));
    let summary = match stub.upload_with(&long(), requests).await {
        Ok(s) => s,
        Err(e) => panic!("upload: {e}"),
    };
    assert_eq!(summary.chunks, 10_000);
    assert_eq!(summary.bytes, 160_000);
    assert_eq!(summary.sum, (0..10_000u64).sum::<u64>());
    // The end of the caller's stream reached the handler as `Ok(None)`.
    assert_eq!(next_seen(&mut seen).await, "upload half-closed after 10000");
    assert_eq!(next_seen(&mut seen).await, "upload dropped");
    p.shutdown().await.ok();
}
// ANCHOR_END: upload_round_trip

// ANCHOR: chat_round_trip
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_echoes_in_order_with_reads_and_writes_interleaved() {
    let config = support::local_config();
    let p = feed_provider(config.clone(), FeedService::default()).await;
    let stub = stub(&config, &p);
    let (tx, rx) = mpsc::unbounded_channel();
    let requests =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    let mut replies = match stub.chat_with(&long(), requests).await {
        Ok(s) => s,
        Err(e) => panic!("open: {e}"),
    };
    // One message out, its echo back, a thousand times: each reply comes
    // before the next request is written.
    for seq in 0..1000u64 {
        let text = format!("m{seq}");
        assert!(
            tx.send(Msg {
                seq,
                text: text.clone()
            })
            .is_ok()
        );
        match replies.message().await {
            Ok(Some(m)) => assert_eq!((m.seq, m.text), (seq, text)),
            other => panic!("reply {seq}: {other:?}"),
        }
    }
    // Then a burst, read back through `impl Stream`.
    for seq in 1000..1100u64 {
        assert!(
            tx.send(Msg {
                seq,
                text: String::new()
            })
            .is_ok()
        );
    }
    // The end of the requests is the half-close, which ends the echo.
    drop(tx);
    let rest: Vec<_> = replies.collect().await;
    assert_eq!(rest.len(), 100);
    for (i, r) in rest.iter().enumerate() {
        assert!(matches!(r, Ok(m) if m.seq == 1000 + i as u64), "{r:?}");
    }
    p.shutdown().await.ok();
}
// ANCHOR_END: chat_round_trip

// ANCHOR: upload_window
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_stops_reading_stops_the_callers_producer() {
    let mut config = support::local_config();
    config.limits.stream_window_bytes = 16 << 10;
    let (tx, mut seen) = mpsc::unbounded_channel();
    let p = feed_provider(config.clone(), FeedService::reporting_input(tx)).await;
    let stub = stub(&config, &p);
    // "stall", then 1 KiB chunks without end, counting those produced.
    let produced = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = std::sync::Arc::clone(&produced);
    let requests = futures_util::stream::iter(std::iter::once(chunk(b"stall"))).chain(
        futures_util::stream::iter(chunks(u64::MAX, 1024)).inspect(move |_| {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }),
    );
    let upload = {
        let stub = stub.clone();
        tokio::spawn(async move { stub.upload_with(&long(), requests).await })
    };
    assert_eq!(next_seen(&mut seen).await, "upload stalled");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held = produced.load(std::sync::atomic::Ordering::Relaxed);
    // A 16 KiB window holds 15 such chunks and one beyond it; the sender
    // has pulled one more that waits for credit.
    assert!(
        held <= 18,
        "the producer was not held to the window: {held}"
    );
    // A unary call on the same connection still answers.
    let ping = tokio::time::timeout(Duration::from_secs(5), stub.ping(&PingRequest {})).await;
    assert!(matches!(ping, Ok(Ok(_))), "{ping:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        produced.load(std::sync::atomic::Ordering::Relaxed),
        held,
        "the producer went on"
    );
    assert!(!upload.is_finished());
    // Dropping the caller's call drops the handler.
    upload.abort();
    assert_eq!(next_seen(&mut seen).await, "upload dropped");
    assert!(stub.ping(&PingRequest {}).await.is_ok());
    p.shutdown().await.ok();
}
// ANCHOR_END: upload_window

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_chat_drops_the_handlers_streams() {
    let config = support::local_config();
    let (tx, mut seen) = mpsc::unbounded_channel();
    let p = feed_provider(config.clone(), FeedService::reporting_input(tx)).await;
    let stub = stub(&config, &p);
    let requests = futures_util::stream::iter((0..3).map(|seq| Msg {
        seq,
        text: String::new(),
    }))
    .chain(futures_util::stream::pending());
    let mut replies = match stub.chat_with(&long(), requests).await {
        Ok(s) => s,
        Err(e) => panic!("open: {e}"),
    };
    for want in 0..3 {
        assert!(matches!(replies.message().await, Ok(Some(m)) if m.seq == want));
    }
    assert!(seen.try_recv().is_err(), "dropped while still read");
    drop(replies);
    assert_eq!(next_seen(&mut seen).await, "chat dropped");
    assert!(stub.ping(&PingRequest {}).await.is_ok());
    p.shutdown().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_covers_a_whole_client_stream() {
    let config = support::local_config();
    let (tx, mut seen) = mpsc::unbounded_channel();
    let p = feed_provider(config.clone(), FeedService::reporting_input(tx)).await;
    let stub = stub(&config, &p);
    // One chunk, then nothing, and no half-close.
    let requests = futures_util::stream::iter(chunks(1, 8)).chain(futures_util::stream::pending());
    let controller = MprpcController::with_timeout(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let r = stub.upload_with(&controller, requests).await;
    assert!(
        matches!(&r, Err(s) if s.code == ErrorCode::DeadlineExceeded),
        "{r:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(controller.failed());
    assert_eq!(next_seen(&mut seen).await, "upload dropped");
    p.shutdown().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_error_mid_stream_ends_it_with_that_status() {
    let config = support::local_config();
    let p = feed_provider(config.clone(), FeedService::default()).await;
    let stub = stub(&config, &p);
    // The handler fails at the third chunk; the caller would send forever.
    let requests = futures_util::stream::iter(chunks(2, 4))
        .chain(futures_util::stream::iter([chunk(b"fail")]))
        .chain(futures_util::stream::iter(chunks(u64::MAX, 4)));
    let r =
        tokio::time::timeout(Duration::from_secs(10), stub.upload_with(&long(), requests)).await;
    assert!(
        matches!(&r, Ok(Err(s)) if s.code == ErrorCode::HandlerError && s.message.contains("chunk 2 says fail")),
        "{r:?}"
    );
    // A bidirectional stream: the echoes before the error, then the error.
    let requests = futures_util::stream::iter(["a", "b", "fail", "c"].into_iter().zip(0..).map(
        |(text, seq)| Msg {
            seq,
            text: text.into(),
        },
    ));
    let replies = match stub.chat_with(&long(), requests).await {
        Ok(s) => s,
        Err(e) => panic!("open: {e}"),
    };
    let got: Vec<_> = replies.collect().await;
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(matches!(&got[1], Ok(m) if m.text == "b"));
    assert!(
        matches!(&got[2], Err(s) if s.code == ErrorCode::HandlerError && s.message.contains("message 2")),
        "{got:?}"
    );
    p.shutdown().await.ok();
}

// ANCHOR: beyond_credit
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_sending_beyond_its_credit_is_refused_with_protocol() {
    let mut config = support::local_config();
    config.limits.stream_window_bytes = 8 << 10;
    let (tx, mut seen) = mpsc::unbounded_channel();
    let p = feed_provider(config.clone(), FeedService::reporting_input(tx)).await;
    let addr = p.local_addr();
    let (mut s, mut buf, first) = raw_stream(addr, 0x03, "Upload", &()).await;
    // The provider grants the caller its window once it accepts the opening.
    let granted = match first {
        Some(Frame::Credit { id: 1, bytes }) => bytes,
        other => panic!("no credit: {other:?}"),
    };
    assert_eq!(granted, 8 << 10);
    // The handler stops reading after the first message; then three
    // windows' worth of 1 KiB messages, ignoring the credit.
    let mut out = BytesMut::new();
    frame::encode_stream_message(
        &mut out,
        1,
        &prost::Message::encode_to_vec(&chunk(b"stall")),
    );
    let big = prost::Message::encode_to_vec(&chunk(&[b'x'; 1024]));
    for _ in 0..24 {
        frame::encode_stream_message(&mut out, 1, &big);
    }
    assert!(s.write_all(&out).await.is_ok());
    let end = next_frame(&mut s, &mut buf).await;
    assert!(
        matches!(&end, Some(Frame::StreamEnd { id: 1, code: ErrorCode::Protocol, message })
            if String::from_utf8_lossy(message).contains("credit spent")),
        "{end:?}"
    );
    // The handler is dropped (whether or not it read the first message
    // before the loop saw the excess).
    let mut report = next_seen(&mut seen).await;
    if report == "upload stalled" {
        report = next_seen(&mut seen).await;
    }
    assert_eq!(report, "upload dropped");
    // The connection lives on: messages for the ended stream are dropped,
    // and a unary call on it answers.
    let mut out = BytesMut::new();
    frame::encode_stream_message(&mut out, 1, &big);
    assert!(s.write_all(&out).await.is_ok());
    raw_ping(&mut s, &mut buf, 7).await;
    p.shutdown().await.ok();
}
// ANCHOR_END: beyond_credit

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_that_cannot_stream_are_refused_for_client_streams() {
    let config = support::local_config();
    let p = feed_provider(config.clone(), FeedService::default()).await;
    let addr = p.local_addr();
    for method in ["Upload", "Chat"] {
        // A caller whose preamble lacks flag bit 1.
        let (_, _, f) = raw_stream(addr, frame::FLAG_METADATA, method, &()).await;
        assert!(
            matches!(&f, Some(Frame::StreamEnd { id: 1, code: ErrorCode::Unsupported, message })
                if String::from_utf8_lossy(message).contains("flag bit 1")),
            "{method}: {f:?}"
        );
        // A course-format caller: not served, while the connection of a
        // unary method is.
        let r: Result<mprpc_examples::feed::UploadSummary, _> =
            mprpc::legacy::call(&addr.to_string(), "Feed", method, &chunk(b"x"), 1 << 20).await;
        assert!(r.is_err(), "{method}: {r:?}");
    }
    // A unary call of a client-streaming method.
    let channel = MprpcChannel::direct_with(&config, &addr.to_string());
    let r: Result<mprpc_examples::feed::UploadSummary, _> =
        channel.call(None, &FEED_DESCRIPTOR, 2, &chunk(b"x")).await;
    assert!(
        matches!(&r, Err(s) if s.code == ErrorCode::Unsupported),
        "{r:?}"
    );
    p.shutdown().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_streams_per_connection_counts_every_kind() {
    let mut config = support::local_config();
    config.limits.max_streams_per_connection = 2;
    let p = feed_provider(config.clone(), FeedService::default()).await;
    let stub = stub(&config, &p);
    let watch_one = stub.watch_with(&long(), &watch(0, 1)).await;
    let idle = || {
        futures_util::stream::iter(std::iter::once(Msg::default()))
            .chain(futures_util::stream::pending())
    };
    let chat_one = stub.chat_with(&long(), idle()).await;
    let (Ok(mut watch_one), Ok(mut chat_one)) = (watch_one, chat_one) else {
        panic!("open failed");
    };
    assert!(matches!(watch_one.message().await, Ok(Some(_))));
    assert!(matches!(chat_one.message().await, Ok(Some(_))));
    let third = stub
        .upload_with(&long(), futures_util::stream::iter(chunks(1, 1)))
        .await;
    assert!(
        matches!(&third, Err(s) if s.code == ErrorCode::Overloaded
            && s.message.contains("max_streams_per_connection")),
        "{third:?}"
    );
    drop((watch_one, chat_one));
    p.shutdown().await.ok();
}

// ANCHOR: blocking_client_streams
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_stubs_upload_and_chat() {
    let p = feed_provider(support::local_config(), FeedService::default()).await;
    let addr = p.local_addr().to_string();
    let worker = std::thread::spawn(move || {
        let stub = match BlockingChannel::direct(&addr) {
            Ok(c) => BlockingFeedStub::new(c),
            Err(e) => panic!("channel: {e}"),
        };
        let summary = stub.upload_with(&long(), chunks(1000, 3));
        let replies: Vec<_> = match stub.chat((0..500).map(|seq| Msg {
            seq,
            text: "x".into(),
        })) {
            Ok(r) => r.collect(),
            Err(e) => panic!("chat: {e}"),
        };
        (summary, replies)
    });
    let (summary, replies) = match tokio::task::spawn_blocking(move || worker.join()).await {
        Ok(Ok(r)) => r,
        _ => panic!("the blocking caller failed"),
    };
    assert!(
        matches!(&summary, Ok(s) if s.chunks == 1000 && s.sum == (0..1000u64).sum::<u64>()),
        "{summary:?}"
    );
    assert_eq!(replies.len(), 500);
    for (i, r) in replies.iter().enumerate() {
        assert!(matches!(r, Ok(m) if m.seq == i as u64), "{r:?}");
    }
    p.shutdown().await.ok();
}
// ANCHOR_END: blocking_client_streams

/// Property: whatever the sizes of a raw caller's messages, the provider
/// accepts every message sent while the caller's credit (counted as the
/// wire-formats chapter says) is above zero, and ends the stream with
/// `Protocol` at the first one sent after it is spent — never earlier,
/// never a panic, and the connection stays usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_enforces_exactly_the_callers_credit() {
    let mut config = support::local_config();
    config.limits.stream_window_bytes = 8 << 10;
    let p = feed_provider(config.clone(), FeedService::default()).await;
    let addr = p.local_addr();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(std::process::id());
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for case in 0..12 {
        let (mut s, mut buf, first) = raw_stream(addr, 0x03, "Upload", &()).await;
        let Some(Frame::Credit { id: 1, bytes }) = first else {
            panic!("case {case}: no credit: {first:?}");
        };
        // The handler reads this and stops: no more credit comes.
        let stall = prost::Message::encode_to_vec(&chunk(b"stall"));
        let mut credit = i64::from(bytes) - stall.len() as i64;
        let mut out = BytesMut::new();
        frame::encode_stream_message(&mut out, 1, &stall);
        while credit > 0 {
            let size = 1 + (next() % 3000) as usize;
            let msg = prost::Message::encode_to_vec(&chunk(&vec![b'y'; size]));
            credit -= msg.len() as i64;
            frame::encode_stream_message(&mut out, 1, &msg);
        }
        let overstep = next() % 2 == 0;
        if overstep {
            frame::encode_stream_message(&mut out, 1, b"");
        }
        assert!(s.write_all(&out).await.is_ok());
        let seen =
            tokio::time::timeout(Duration::from_millis(300), next_frame(&mut s, &mut buf)).await;
        if overstep {
            assert!(
                matches!(
                    &seen,
                    Ok(Some(Frame::StreamEnd {
                        id: 1,
                        code: ErrorCode::Protocol,
                        ..
                    }))
                ),
                "case {case}: beyond the credit, {seen:?}"
            );
        } else {
            assert!(seen.is_err(), "case {case}: within the credit, {seen:?}");
        }
        // Either way the connection serves a unary call.
        raw_ping(&mut s, &mut buf, 9).await;
    }
    p.shutdown().await.ok();
}

/// Drain lets an open bidirectional stream finish too: after goaway the
/// caller goes on sending and reading until its half-close ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_provider_lets_an_open_chat_finish() {
    let config = support::local_config();
    let p = feed_provider(config.clone(), FeedService::default()).await;
    let stub = stub(&config, &p);
    let (tx, rx) = mpsc::unbounded_channel();
    let requests =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    let mut replies = match stub.chat_with(&long(), requests).await {
        Ok(s) => s,
        Err(e) => panic!("open: {e}"),
    };
    let mut echo = async |seq: u64| {
        assert!(
            tx.send(Msg {
                seq,
                text: String::new()
            })
            .is_ok()
        );
        match replies.message().await {
            Ok(Some(m)) => assert_eq!(m.seq, seq),
            other => panic!("reply {seq}: {other:?}"),
        }
    };
    echo(0).await;
    let shutdown = tokio::spawn(p.shutdown());
    // The goaway comes meanwhile; the stream goes on both ways.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for seq in 1..50 {
        echo(seq).await;
    }
    drop(tx);
    let end = replies.message().await;
    assert!(matches!(end, Ok(None)), "{end:?}");
    drop(replies);
    let done = tokio::time::timeout(Duration::from_secs(5), shutdown).await;
    assert!(matches!(done, Ok(Ok(Ok(())))), "{done:?}");
}

/// A provider that grants credit without end while it reads nothing cannot
/// make the caller queue the application's messages without bound: the
/// sender waits for the connection's writer, and the producer with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_granting_without_reading_does_not_grow_the_callers_buffer() {
    let config = support::local_config();
    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("bind: {e}"),
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let server = tokio::spawn(async move {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        let _ = s.write_all(&frame::PREAMBLE).await;
        // Read the preamble and the opening, then grant 4 GiB and never
        // read again.
        let mut got = [0u8; 8 + 4 + 36];
        let _ = s.read_exact(&mut got).await;
        let mut out = BytesMut::new();
        frame::encode_credit(&mut out, 1, u32::MAX);
        let _ = s.write_all(&out).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
    });
    let stub = FeedStub::new(MprpcChannel::direct_with(&config, &addr));
    let produced = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = std::sync::Arc::clone(&produced);
    let requests = futures_util::stream::iter(chunks(u64::MAX, 1024)).inspect(move |_| {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    let upload = tokio::spawn(async move { stub.upload_with(&long(), requests).await });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let held = produced.load(std::sync::atomic::Ordering::Relaxed);
    // The socket's buffers take some megabytes; without the bound the
    // producer would run on to gigabytes.
    assert!(held < 40_000, "the caller queued {held} KiB");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        produced.load(std::sync::atomic::Ordering::Relaxed),
        held,
        "the producer went on"
    );
    upload.abort();
    server.abort();
}

/// Handlers that stop reading share one input budget per connection (half
/// of `max_buffered_per_connection`): with a 64 KiB allowance and 16 KiB
/// windows, two stalled uploads hold it all, and a third gets no credit
/// until one of them ends — while unary calls go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_handlers_share_the_connections_input_budget() {
    let mut config = support::local_config();
    config.limits.max_buffered_per_connection = 64 << 10;
    config.limits.stream_window_bytes = 16 << 10;
    let (tx, mut seen) = mpsc::unbounded_channel();
    let p = feed_provider(config.clone(), FeedService::reporting_input(tx)).await;
    let stub = stub(&config, &p);
    let produced: Vec<_> = (0..3)
        .map(|_| std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0)))
        .collect();
    let mut uploads = Vec::new();
    for counter in &produced {
        let counter = std::sync::Arc::clone(counter);
        let requests = futures_util::stream::iter(std::iter::once(chunk(b"stall"))).chain(
            futures_util::stream::iter(chunks(u64::MAX, 1024)).inspect(move |_| {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }),
        );
        let stub = stub.clone();
        uploads.push(tokio::spawn(async move {
            stub.upload_with(&long(), requests).await
        }));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let count = |i: usize| produced[i].load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(next_seen(&mut seen).await, "upload stalled");
    assert_eq!(next_seen(&mut seen).await, "upload stalled");
    assert!(
        count(0) <= 18 && count(1) <= 18,
        "{} {}",
        count(0),
        count(1)
    );
    // The third has not been granted anything: its sender holds the one
    // chunk it pulled.
    assert!(count(2) <= 1, "{}", count(2));
    assert!(stub.ping(&PingRequest {}).await.is_ok());
    // Ending the first frees its share: the third gets its window.
    uploads[0].abort();
    assert_eq!(next_seen(&mut seen).await, "upload dropped");
    assert_eq!(next_seen(&mut seen).await, "upload stalled");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!((10..=18).contains(&count(2)), "{}", count(2));
    for u in &uploads {
        u.abort();
    }
    p.shutdown().await.ok();
}
