//! `feed.Feed`, the test service of the chapter "Streams": `Watch` is a
//! server stream of numbered events, `Ping` a unary call to make beside it,
//! `Upload` a client stream that sums its chunks and `Chat` a bidirectional
//! stream that echoes its messages. The handler counts the events its
//! streams produce and can report when a stream is dropped, and what its
//! client-stream handlers see, so tests can watch flow control,
//! cancellation and deadlines from the provider's side.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use mprpc::{CallContext, Status};
use tokio::sync::mpsc;

use crate::feed::{Chunk, Event, Msg, PingReply, PingRequest, UploadSummary, WatchRequest};

/// The `Feed` handler.
#[derive(Debug, Clone, Default)]
pub struct FeedService {
    /// Events produced by all streams so far.
    produced: Arc<AtomicU64>,
    /// Told the number of events a stream had produced when it is dropped.
    dropped: Option<mpsc::UnboundedSender<u64>>,
    /// Told what `Upload` and `Chat` handlers see ("upload half-closed
    /// after 3", "upload stalled", "upload dropped", …).
    seen: Option<mpsc::UnboundedSender<String>>,
}

impl FeedService {
    /// A handler whose streams report their drop on `dropped`.
    pub fn reporting_drops(dropped: mpsc::UnboundedSender<u64>) -> FeedService {
        FeedService {
            produced: Arc::default(),
            dropped: Some(dropped),
            seen: None,
        }
    }

    /// A handler whose `Upload` and `Chat` handlers report what they see
    /// on `seen`.
    pub fn reporting_input(seen: mpsc::UnboundedSender<String>) -> FeedService {
        FeedService {
            seen: Some(seen),
            ..FeedService::default()
        }
    }

    /// Reports `what` on `seen`, if set.
    fn report(&self, what: String) {
        if let Some(tx) = &self.seen {
            let _ = tx.send(what);
        }
    }

    /// A guard reporting "`what` dropped" when the handler's state is
    /// dropped — when it finishes, or when the provider drops it.
    fn drop_report(&self, what: &'static str) -> DropReport {
        DropReport {
            tx: self.seen.clone(),
            what,
        }
    }

    /// Events produced by all streams so far.
    pub fn produced(&self) -> u64 {
        self.produced.load(Ordering::Relaxed)
    }
}

// ANCHOR: event_stream
/// The stream `Watch` returns: events 0, 1, 2 … up to `count` (forever if
/// 0), each with `size` bytes of filler. It produces an event only when
/// the provider polls it, which the provider does only while the caller's
/// credit lasts.
#[derive(Debug)]
pub struct EventStream {
    /// The next event's number.
    seq: u64,
    /// Events to produce; 0 = no end.
    count: u64,
    /// Filler bytes per event.
    size: usize,
    /// The service's counter.
    produced: Arc<AtomicU64>,
    /// Where to report the drop.
    dropped: Option<mpsc::UnboundedSender<u64>>,
}

impl mprpc::codegen::Stream for EventStream {
    type Item = Result<Event, Status>;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.count != 0 && self.seq >= self.count {
            return Poll::Ready(None);
        }
        let event = Event {
            seq: self.seq,
            data: vec![b'x'; self.size],
        };
        self.seq += 1;
        self.produced.fetch_add(1, Ordering::Relaxed);
        Poll::Ready(Some(Ok(event)))
    }
}

impl Drop for EventStream {
    /// Tells the test the stream is gone: the provider drops it when the
    /// stream ends, is cancelled or runs out of time.
    fn drop(&mut self) {
        if let Some(tx) = &self.dropped {
            let _ = tx.send(self.seq);
        }
    }
}
// ANCHOR_END: event_stream

// ANCHOR: feed_impl
impl crate::feed::Feed for FeedService {
    type WatchStream = EventStream;

    async fn watch(&self, _ctx: CallContext, request: WatchRequest) -> Result<EventStream, Status> {
        if request.size > 1 << 20 {
            return Err(Status::handler("size above 1 MiB"));
        }
        Ok(EventStream {
            seq: 0,
            count: request.count,
            size: request.size as usize,
            produced: Arc::clone(&self.produced),
            dropped: self.dropped.clone(),
        })
    }

    async fn ping(&self, _ctx: CallContext, _request: PingRequest) -> Result<PingReply, Status> {
        Ok(PingReply {
            produced: self.produced(),
        })
    }

    // ANCHOR: upload
    async fn upload(
        &self,
        _ctx: CallContext,
        mut requests: mprpc::Streaming<Chunk>,
    ) -> Result<UploadSummary, Status> {
        let _dropped = self.drop_report("upload");
        let mut summary = UploadSummary::default();
        while let Some(chunk) = requests.message().await? {
            match &chunk.data[..] {
                b"fail" => {
                    let n = summary.chunks;
                    return Err(Status::handler(format!("chunk {n} says fail")));
                }
                b"stall" => {
                    // Stop reading: the caller must be held to its window.
                    self.report("upload stalled".into());
                    std::future::pending::<()>().await;
                }
                data => {
                    summary.bytes += data.len() as u64;
                    summary.chunks += 1;
                    summary.sum += chunk.value;
                }
            }
        }
        self.report(format!("upload half-closed after {}", summary.chunks));
        Ok(summary)
    }
    // ANCHOR_END: upload

    // ANCHOR: chat
    type ChatStream = Echo;

    async fn chat(
        &self,
        _ctx: CallContext,
        requests: mprpc::Streaming<Msg>,
    ) -> Result<Echo, Status> {
        Ok(Echo {
            requests,
            _dropped: self.drop_report("chat"),
        })
    }
    // ANCHOR_END: chat
}
// ANCHOR_END: feed_impl

/// Reports "`what` dropped" on `tx` when dropped.
#[derive(Debug)]
struct DropReport {
    /// Where to report.
    tx: Option<mpsc::UnboundedSender<String>>,
    /// Which handler.
    what: &'static str,
}

impl Drop for DropReport {
    fn drop(&mut self) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(format!("{} dropped", self.what));
        }
    }
}

/// The stream `Chat` returns: each of the caller's messages back, in
/// order, as it is read; "fail" ends the stream with a handler error.
#[derive(Debug)]
pub struct Echo {
    /// The caller's messages.
    requests: mprpc::Streaming<Msg>,
    /// Reports the drop.
    _dropped: DropReport,
}

impl mprpc::codegen::Stream for Echo {
    type Item = Result<Msg, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // `Streaming` is `Unpin`.
        match Pin::new(&mut self.requests).poll_next(cx) {
            Poll::Ready(Some(Ok(msg))) if msg.text == "fail" => Poll::Ready(Some(Err(
                Status::handler(format!("message {} says fail", msg.seq)),
            ))),
            other => other,
        }
    }
}
