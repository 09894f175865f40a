//! [`Streaming`]: the messages of a server stream as the caller receives
//! them, and [`BlockingStreaming`], the same as an iterator.
//!
//! A stub's server-streaming method (`rpc Watch(Req) returns (stream
//! Event)`) returns a `Streaming<Event>`. Read it with
//! [`message`](Streaming::message) or as a [`futures_util::Stream`]. Each
//! message read grants the provider credit to send more, so a reader that
//! stops reading stops the provider after `limits.stream_window_bytes`.
//! Dropping it before the end cancels the stream: the provider drops the
//! handler's stream. The call's deadline (the controller's timeout, else
//! `timeouts.call_ms`) covers the whole stream.

use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;

use crate::error::{ErrorCode, Status};

/// Where a [`Streaming`]'s encoded messages come from: a caller's stream
/// on its connection (`client`) or a handler's input (`server`). A trait,
/// so that this module — used by both sides and by the service trait —
/// depends on neither.
pub(crate) trait RawSource: std::fmt::Debug + Send + Unpin {
    /// The next encoded message, the status that ended the stream, or
    /// `None` after a successful end.
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Status>>>;
}

/// A stream of encoded messages: what a [`Streaming`] decodes, and what a
/// client-streaming or bidirectional handler's adapter receives (generated
/// code names it `::mprpc::codegen::RawRequests`).
#[derive(Debug)]
pub struct RawMessages {
    /// Where they come from.
    source: Box<dyn RawSource>,
    /// The code of a message that does not decode: `BadResponse` for a
    /// caller, `BadRequest` for a handler.
    bad: ErrorCode,
}

impl RawMessages {
    /// The provider's responses of a stream, as its caller reads them.
    pub(crate) fn responses(source: impl RawSource + 'static) -> RawMessages {
        RawMessages {
            source: Box::new(source),
            bad: ErrorCode::BadResponse,
        }
    }

    /// The caller's requests of a stream, as its handler reads them.
    pub(crate) fn requests(source: impl RawSource + 'static) -> RawMessages {
        RawMessages {
            source: Box::new(source),
            bad: ErrorCode::BadRequest,
        }
    }
}

// ANCHOR: streaming
/// The messages of one stream, decoded as `T`: the responses of a server
/// or bidirectional stream as the caller reads them, or the requests of a
/// client or bidirectional stream as the handler reads them.
#[derive(Debug)]
pub struct Streaming<T> {
    /// The encoded messages.
    raw: RawMessages,
    /// The message type.
    _message: PhantomData<fn() -> T>,
}

impl<T: prost::Message + Default> Streaming<T> {
    /// Decodes `raw` (a caller's stream, or a handler's input).
    pub(crate) fn new(raw: RawMessages) -> Streaming<T> {
        Streaming {
            raw,
            _message: PhantomData,
        }
    }

    /// The next message; `Ok(None)` once the provider ended the stream
    /// successfully (for a handler: once the caller half-closed); `Err`
    /// with the status that ended it otherwise (the handler's error, the
    /// deadline, the connection). After the end, always `Ok(None)`.
    pub async fn message(&mut self) -> Result<Option<T>, Status> {
        std::future::poll_fn(|cx| self.poll_message(cx))
            .await
            .transpose()
    }

    /// Polls for the next message (see [`message`](Self::message)).
    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, Status>>> {
        let code = self.raw.bad;
        self.raw.source.poll_next(cx).map(|item| {
            item.map(|r| {
                r.and_then(|payload| {
                    T::decode(payload).map_err(|e| {
                        Status::new(code, format!("a stream message is not valid protobuf: {e}"))
                    })
                })
            })
        })
    }
}

impl<T: prost::Message + Default> futures_util::Stream for Streaming<T> {
    type Item = Result<T, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // `Streaming` is `Unpin`: every field is.
        self.get_mut().poll_message(cx)
    }
}
// ANCHOR_END: streaming

/// A [`Streaming`] for synchronous code, from a blocking stub: an
/// iterator of messages, ending after the last one or after the error
/// that ended the stream.
#[derive(Debug)]
pub struct BlockingStreaming<T> {
    /// The async stream.
    inner: Streaming<T>,
    /// The blocking channel's runtime, which drives it.
    runtime: Arc<tokio::runtime::Runtime>,
}

impl<T: prost::Message + Default> BlockingStreaming<T> {
    /// Wraps a stream opened on `runtime`.
    pub(crate) fn new(
        inner: Streaming<T>,
        runtime: Arc<tokio::runtime::Runtime>,
    ) -> BlockingStreaming<T> {
        BlockingStreaming { inner, runtime }
    }
}

impl<T: prost::Message + Default> Iterator for BlockingStreaming<T> {
    type Item = Result<T, Status>;

    /// Blocks until the next message or the end. Must not be called from
    /// inside an async runtime (the blocking stub refuses to open a stream
    /// there).
    fn next(&mut self) -> Option<Self::Item> {
        let runtime = Arc::clone(&self.runtime);
        runtime.block_on(self.inner.message()).transpose()
    }
}
