//! The streaming section (issue 28): messages per second of one server
//! stream, `feed.Feed/Watch` (the chapter "Streams"' test service: endless
//! `Event { seq, data }` messages of a fixed size), for three designs:
//!
//! | variant | server | client |
//! |---|---|---|
//! | `final` | `RpcProvider` with `mprpc_examples::FeedService` | `FeedStub::watch_with`, default window (256 KiB) |
//! | `tonic` | tonic's generated `Feed` server, an equivalent handler stream | `FeedClient::watch`, one HTTP/2 connection |
//! | `floor` | raw TCP: `[u32 length][Event]` frames, encoded into one 256 KiB buffer per write, one `Event` reused | one 256 KiB read buffer, one `Event` decoded in place |
//!
//! The floor is the fastest design we could write: no flow control, no
//! per-message allocation on either side, as many messages per system call
//! as fit in the buffer. `final`'s and tonic's handlers build an owned
//! message per item, as their APIs ask.
//!
//! `bench stream --variant V --size S` is one run: after a warm-up it counts
//! the messages that arrive in the window (checking their order) and the
//! CPU time both processes spent, and prints one JSON line. The driver runs
//! it for every size in [`SIZES`], every round, on one `bench stream-server`
//! per variant.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, BytesMut};
use prost::Message;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::BoxError;
use crate::load::meter_cpu;
use crate::pb::feed as pb;
use crate::report::{Stat, thousands};
use crate::variant::Variant;

/// Message sizes (bytes of `data` per event) the full run measures.
pub const SIZES: [usize; 2] = [64, 1024];
/// The variants that have a streaming side, in report order.
pub const VARIANTS: [Variant; 3] = [Variant::Final, Variant::Tonic, Variant::Floor];
/// The floor's write and read buffers.
const FLOOR_BUFFER: usize = 256 << 10;
/// Largest message the floor accepts (a bigger length is a protocol error).
const FLOOR_MAX: usize = 1 << 20;
/// How many messages pass between two looks at the clock.
const CLOCK_EVERY: u64 = 64;

/// What one streaming run asks for.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    /// Which client.
    pub variant: Variant,
    /// Where the stream server listens.
    pub addr: SocketAddr,
    /// Bytes of filler per message.
    pub size: usize,
    /// Time before counting starts.
    pub warmup: Duration,
    /// Counted window.
    pub window: Duration,
    /// The server's pid, for its CPU time.
    pub server_pid: Option<u32>,
}

/// What one streaming run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamResult {
    /// Variant measured.
    pub variant: Variant,
    /// Bytes of filler per message.
    pub message_bytes: usize,
    /// The counted window as measured, seconds.
    pub window_s: f64,
    /// Messages received in it, in order.
    pub messages: u64,
    /// `messages / window_s`.
    pub messages_per_sec: f64,
    /// Filler bytes received per second, MiB/s.
    pub mib_per_sec: f64,
    /// CPU (user + sys) of the client over the window, seconds.
    pub load_cpu_s: Option<f64>,
    /// CPU of the server over the window, seconds.
    pub server_cpu_s: Option<f64>,
    /// Both processes' CPU per message, nanoseconds.
    pub cpu_ns_per_message: Option<f64>,
}

/// The report's streaming section.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Streams {
    /// Every run, as measured.
    pub results: Vec<StreamResult>,
    /// Runs that failed, described.
    pub failures: Vec<String>,
}

/// Serves `variant`'s streaming side on `bind` until the process ends,
/// announcing the address as `bench server` does.
pub async fn serve(variant: Variant, bind: SocketAddr) -> Result<(), BoxError> {
    match variant {
        Variant::Final => {
            let mut config = mprpc::MprpcConfig::default();
            config.rpcserverip = bind.ip().to_string();
            config.rpcserverport = bind.port();
            let mut provider = mprpc::RpcProvider::new(config)
                .with_registry(Arc::new(mprpc::StaticRegistry::default()));
            provider.notify_service(mprpc_examples::feed::FeedServer::new(
                mprpc_examples::FeedService::default(),
            ));
            let running = provider.start().await?;
            crate::server::announce(running.local_addr())?;
            std::future::pending::<()>().await;
            drop(running);
            Ok(())
        }
        Variant::Tonic => {
            let listener = TcpListener::bind(bind).await?;
            crate::server::announce(listener.local_addr()?)?;
            let incoming =
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            tonic::transport::Server::builder()
                .add_service(pb::feed_server::FeedServer::new(TonicFeed))
                .serve_with_incoming(incoming)
                .await?;
            Ok(())
        }
        Variant::Floor => {
            let listener = TcpListener::bind(bind).await?;
            crate::server::announce(listener.local_addr()?)?;
            loop {
                let (stream, _) = listener.accept().await?;
                tokio::spawn(async move {
                    // A client that goes away ends its stream: not an error.
                    let _ = floor_serve(stream).await;
                });
            }
        }
        other => Err(format!(
            "{other} has no streaming side (stream variants: final, tonic, floor)"
        )
        .into()),
    }
}

/// tonic's `Feed`: `Watch` streams [`TonicEvents`]; the rest is not measured.
#[derive(Debug, Clone, Copy)]
struct TonicFeed;

#[tonic::async_trait]
impl pb::feed_server::Feed for TonicFeed {
    type WatchStream = TonicEvents;

    async fn watch(
        &self,
        request: tonic::Request<pb::WatchRequest>,
    ) -> Result<tonic::Response<TonicEvents>, tonic::Status> {
        let request = request.into_inner();
        if request.size > 1 << 20 {
            return Err(tonic::Status::invalid_argument("size above 1 MiB"));
        }
        Ok(tonic::Response::new(TonicEvents {
            seq: 0,
            count: request.count,
            size: request.size as usize,
        }))
    }

    async fn ping(
        &self,
        _request: tonic::Request<pb::PingRequest>,
    ) -> Result<tonic::Response<pb::PingReply>, tonic::Status> {
        Ok(tonic::Response::new(pb::PingReply { produced: 0 }))
    }

    async fn upload(
        &self,
        _request: tonic::Request<tonic::Streaming<pb::Chunk>>,
    ) -> Result<tonic::Response<pb::UploadSummary>, tonic::Status> {
        Err(tonic::Status::unimplemented(
            "the benchmark only streams Watch",
        ))
    }

    /// Never produced: `chat` only refuses.
    type ChatStream = futures_util::stream::Empty<Result<pb::Msg, tonic::Status>>;

    async fn chat(
        &self,
        _request: tonic::Request<tonic::Streaming<pb::Msg>>,
    ) -> Result<tonic::Response<Self::ChatStream>, tonic::Status> {
        Err(tonic::Status::unimplemented(
            "the benchmark only streams Watch",
        ))
    }
}

/// The tonic handler's stream: what `FeedService`'s `EventStream` does for
/// `final` (an owned message per item), in tonic's types.
#[derive(Debug)]
struct TonicEvents {
    /// The next event's number.
    seq: u64,
    /// Events to produce; 0 = no end.
    count: u64,
    /// Filler bytes per event.
    size: usize,
}

impl futures_util::Stream for TonicEvents {
    type Item = Result<pb::Event, tonic::Status>;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.count != 0 && self.seq >= self.count {
            return Poll::Ready(None);
        }
        let event = pb::Event {
            seq: self.seq,
            data: vec![b'x'; self.size],
        };
        self.seq += 1;
        Poll::Ready(Some(Ok(event)))
    }
}

// ANCHOR: floor_serve
/// The floor's server side of one connection: reads `[u64 count][u32 size]`
/// (big-endian; count 0 = no end), then writes `[u32 length][Event]` frames,
/// as many as fit into one buffer per `write_all`, the same `Event` and
/// the same buffer every time.
async fn floor_serve(mut stream: TcpStream) -> Result<(), BoxError> {
    stream.set_nodelay(true)?;
    let count = stream.read_u64().await?;
    let size = stream.read_u32().await? as usize;
    if size > FLOOR_MAX - 32 {
        return Err(format!("floor: size {size} too large").into());
    }
    let mut event = pb::Event {
        seq: 0,
        data: vec![b'x'; size],
    };
    let mut out = Vec::with_capacity(FLOOR_BUFFER + FLOOR_MAX);
    loop {
        out.clear();
        while out.len() < FLOOR_BUFFER && (count == 0 || event.seq < count) {
            // `encoded_len` is below FLOOR_MAX, checked above.
            out.put_u32(event.encoded_len() as u32);
            // Cannot fail: a Vec grows.
            let _ = event.encode(&mut out);
            event.seq += 1;
        }
        if out.is_empty() {
            return Ok(());
        }
        stream.write_all(&out).await?;
    }
}
// ANCHOR_END: floor_serve

/// The floor's client side: one read buffer, one `Event` decoded in place.
struct FloorReader {
    /// The connection.
    stream: TcpStream,
    /// Bytes read and not yet decoded.
    buf: BytesMut,
    /// The last event decoded (its `data` reused).
    event: pb::Event,
}

impl FloorReader {
    /// Connects and asks for an endless stream of `size`-byte events.
    async fn open(addr: SocketAddr, size: usize) -> Result<FloorReader, BoxError> {
        let mut stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut request = [0u8; 12];
        request[8..].copy_from_slice(&u32::try_from(size)?.to_be_bytes());
        stream.write_all(&request).await?;
        Ok(FloorReader {
            stream,
            buf: BytesMut::with_capacity(FLOOR_BUFFER),
            event: pb::Event::default(),
        })
    }

    /// The next event's `seq`.
    async fn next(&mut self) -> Result<Option<u64>, BoxError> {
        loop {
            if self.buf.len() >= 4 {
                let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]])
                    as usize;
                if len > FLOOR_MAX {
                    return Err(format!("floor: bad length {len}").into());
                }
                if self.buf.len() >= 4 + len {
                    self.event.clear();
                    self.event.merge(&self.buf[4..4 + len])?;
                    self.buf.advance(4 + len);
                    return Ok(Some(self.event.seq));
                }
                self.buf.reserve(4 + len);
            }
            if self.buf.capacity() - self.buf.len() < FLOOR_BUFFER / 4 {
                self.buf.reserve(FLOOR_BUFFER);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }
}

/// One open stream of any variant.
enum Reader {
    /// mprpc's `Streaming`.
    Final(mprpc::Streaming<mprpc_examples::feed::Event>),
    /// tonic's `Streaming`.
    Tonic(tonic::Streaming<pb::Event>),
    /// The floor.
    Floor(FloorReader),
}

impl Reader {
    /// Opens an endless stream of `size`-byte events from `spec`'s server.
    async fn open(spec: &StreamSpec) -> Result<Reader, BoxError> {
        let size = u32::try_from(spec.size)?;
        Ok(match spec.variant {
            Variant::Final => {
                let channel = mprpc::MprpcChannel::direct_with(
                    &mprpc::MprpcConfig::default(),
                    &spec.addr.to_string(),
                );
                // The deadline covers the whole stream: longer than the run.
                let controller = mprpc::MprpcController::with_timeout(
                    spec.warmup + spec.window + Duration::from_secs(60),
                );
                let stub = mprpc_examples::feed::FeedStub::new(channel);
                let request = mprpc_examples::feed::WatchRequest { count: 0, size };
                Reader::Final(stub.watch_with(&controller, &request).await?)
            }
            Variant::Tonic => {
                let channel =
                    tonic::transport::Endpoint::from_shared(format!("http://{}", spec.addr))?
                        .tcp_nodelay(true)
                        .connect()
                        .await?;
                let mut client = pb::feed_client::FeedClient::new(channel);
                let request = pb::WatchRequest { count: 0, size };
                Reader::Tonic(client.watch(request).await?.into_inner())
            }
            Variant::Floor => Reader::Floor(FloorReader::open(spec.addr, spec.size).await?),
            other => return Err(format!("{other} has no streaming side").into()),
        })
    }

    /// The next message's `seq`; `None` at the stream's end.
    async fn next(&mut self) -> Result<Option<u64>, BoxError> {
        Ok(match self {
            Reader::Final(s) => s.message().await?.map(|e| e.seq),
            Reader::Tonic(s) => s.message().await?.map(|e| e.seq),
            Reader::Floor(s) => s.next().await?,
        })
    }
}

/// One streaming run as `spec` says.
pub async fn run(spec: &StreamSpec) -> Result<StreamResult, BoxError> {
    let mut reader = Reader::open(spec).await?;
    let started = Instant::now();
    let (from, until) = (started + spec.warmup, started + spec.warmup + spec.window);
    let cpu = meter_cpu(spec.server_pid, from, until);
    let mut next = 0u64;
    // (messages so far, when) at the first look at the clock in the window.
    let mut first: Option<(u64, Instant)> = None;
    let last = loop {
        match reader.next().await? {
            Some(seq) if seq == next => next += 1,
            Some(seq) => return Err(format!("message {seq} where {next} was due").into()),
            None => return Err(format!("the stream ended after {next} messages").into()),
        }
        if next % CLOCK_EVERY == 0 {
            let now = Instant::now();
            if now >= until {
                break (next, now);
            }
            if now >= from && first.is_none() {
                first = Some((next, now));
            }
        }
    };
    drop(reader);
    let cpu = cpu.join().map_err(|_| "the CPU meter thread panicked")?;
    let (first_n, first_at) = first.ok_or("no message arrived inside the window")?;
    let messages = last.0 - first_n;
    let window_s = (last.1 - first_at).as_secs_f64();
    let messages_per_sec = messages as f64 / window_s;
    let cpu_ns_per_message = match (cpu.load, cpu.server) {
        (Some(l), Some(s)) if messages_per_sec > 0.0 => {
            Some((l + s) * 1e9 / (messages_per_sec * spec.window.as_secs_f64()))
        }
        _ => None,
    };
    Ok(StreamResult {
        variant: spec.variant,
        message_bytes: spec.size,
        window_s,
        messages,
        messages_per_sec,
        mib_per_sec: messages_per_sec * spec.size as f64 / f64::from(1 << 20),
        load_cpu_s: cpu.load,
        server_cpu_s: cpu.server,
        cpu_ns_per_message,
    })
}

/// The streaming section of the markdown report: per variant and size, the
/// median over rounds with min–max.
pub fn markdown(out: &mut String, streams: &Streams) {
    if !streams.results.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "One server stream, `feed.Feed/Watch`, read as fast as it comes (median over rounds, min–max):"
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "| variant | message bytes | messages/s | MiB/s | CPU ns/message |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|");
        let mut cells: Vec<(usize, Variant)> = streams
            .results
            .iter()
            .map(|r| (r.message_bytes, r.variant))
            .collect();
        cells.sort();
        cells.dedup();
        for (size, variant) in cells {
            let runs: Vec<&StreamResult> = streams
                .results
                .iter()
                .filter(|r| r.message_bytes == size && r.variant == variant)
                .collect();
            let stat = |f: fn(&StreamResult) -> Option<f64>| {
                Stat::of(&runs.iter().filter_map(|r| f(r)).collect::<Vec<_>>())
            };
            let rate = stat(|r| Some(r.messages_per_sec)).map_or_else(
                || "n/a".to_owned(),
                |s| {
                    format!(
                        "{} ({}–{})",
                        thousands(s.median),
                        thousands(s.min),
                        thousands(s.max)
                    )
                },
            );
            let mib = stat(|r| Some(r.mib_per_sec))
                .map_or_else(|| "n/a".to_owned(), |s| format!("{:.0}", s.median));
            let cpu = stat(|r| r.cpu_ns_per_message)
                .map_or_else(|| "n/a".to_owned(), |s| format!("{:.0}", s.median));
            let _ = writeln!(out, "| {variant} | {size} | {rate} | {mib} | {cpu} |");
        }
    }
    for f in &streams.failures {
        let _ = writeln!(out, "- Streaming run failed: {f}");
    }
}
