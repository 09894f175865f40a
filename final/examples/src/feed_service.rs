//! `feed.Feed`, the test service of the chapter "Streams": `Watch` is a
//! server stream of numbered events, `Ping` a unary call to make beside it.
//! The handler counts the events its streams produce and can report when
//! a stream is dropped, so tests can watch flow control, cancellation and
//! deadlines from the provider's side.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use mprpc::{CallContext, Status};
use tokio::sync::mpsc;

use crate::feed::{Event, PingReply, PingRequest, WatchRequest};

/// The `Feed` handler.
#[derive(Debug, Clone, Default)]
pub struct FeedService {
    /// Events produced by all streams so far.
    produced: Arc<AtomicU64>,
    /// Told the number of events a stream had produced when it is dropped.
    dropped: Option<mpsc::UnboundedSender<u64>>,
}

impl FeedService {
    /// A handler whose streams report their drop on `dropped`.
    pub fn reporting_drops(dropped: mpsc::UnboundedSender<u64>) -> FeedService {
        FeedService {
            produced: Arc::default(),
            dropped: Some(dropped),
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
}
// ANCHOR_END: feed_impl
