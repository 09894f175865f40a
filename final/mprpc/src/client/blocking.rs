//! [`BlockingChannel`]: a channel plus the runtime that drives it, for
//! synchronous callers.

use crate::error::ErrorCode;
use std::sync::Arc;

use crate::config::MprpcConfig;
use crate::controller::MprpcController;
use crate::error::{Error, Status};
use crate::interceptor::ClientInterceptor;
use crate::service::ServiceDescriptor;

use super::channel::MprpcChannel;

// ANCHOR: blocking
/// A channel plus the runtime that drives it, for synchronous callers such as
/// the course's `main`-function consumers. Used by the generated
/// `Blocking*Stub` types.
#[derive(Clone, Debug)]
pub struct BlockingChannel {
    /// Runs the channel's connection tasks and each blocked-on call.
    runtime: Arc<tokio::runtime::Runtime>,
    /// The async channel doing the work.
    channel: MprpcChannel,
}
// ANCHOR_END: blocking

impl BlockingChannel {
    /// Builds a one-worker runtime and a channel configured by `config`.
    pub fn from_config(config: &MprpcConfig) -> Result<BlockingChannel, Error> {
        let runtime = Self::runtime()?;
        let channel = runtime.block_on(MprpcChannel::from_config(config))?;
        Ok(BlockingChannel {
            runtime: Arc::new(runtime),
            channel,
        })
    }

    /// Like [`MprpcChannel::direct`].
    pub fn direct(addr: &str) -> Result<BlockingChannel, Error> {
        let runtime = Self::runtime()?;
        // The channel spawns its connection tasks lazily, inside block_on,
        // so they land on this runtime.
        let channel = MprpcChannel::direct(addr);
        Ok(BlockingChannel {
            runtime: Arc::new(runtime),
            channel,
        })
    }

    /// A runtime with one worker thread: connection tasks keep running
    /// between calls (a current-thread runtime would only run them inside
    /// `block_on`).
    fn runtime() -> Result<tokio::runtime::Runtime, Error> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("mprpc-blocking")
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting the blocking channel's runtime", e))
    }

    /// The underlying async channel.
    pub fn channel(&self) -> &MprpcChannel {
        &self.channel
    }

    /// Like [`MprpcChannel::with_interceptor`].
    pub fn with_interceptor(&self, interceptor: impl ClientInterceptor) -> BlockingChannel {
        BlockingChannel {
            runtime: Arc::clone(&self.runtime),
            channel: self.channel.with_interceptor(interceptor),
        }
    }

    /// Blocking form of [`MprpcChannel::call`]. Returns an
    /// [`ErrorCode::Internal`] error instead of panicking when called from
    /// inside an async runtime (where blocking would stall its workers).
    pub fn call<Req, Resp>(
        &self,
        controller: Option<&MprpcController>,
        service: &'static ServiceDescriptor,
        method: usize,
        request: &Req,
    ) -> Result<Resp, Status>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Status::new(
                ErrorCode::Internal,
                "blocking stub used inside an async runtime; use the async stub there",
            ));
        }
        self.runtime
            .block_on(self.channel.call(controller, service, method, request))
    }

    /// Blocking form of [`MprpcChannel::server_stream`]: the stream as an
    /// iterator. Refused with [`ErrorCode::Internal`] inside an async
    /// runtime, like [`call`](Self::call).
    pub fn server_stream<Req, Resp>(
        &self,
        controller: Option<&MprpcController>,
        service: &'static ServiceDescriptor,
        method: usize,
        request: &Req,
    ) -> Result<super::BlockingStreaming<Resp>, Status>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        Self::outside_runtime()?;
        let stream = self.runtime.block_on(
            self.channel
                .server_stream(controller, service, method, request),
        )?;
        Ok(super::BlockingStreaming::new(
            stream,
            Arc::clone(&self.runtime),
        ))
    }

    /// Refuses a blocking stream inside an async runtime, which
    /// `block_on` would panic in.
    fn outside_runtime() -> Result<(), Status> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Status::new(
                ErrorCode::Internal,
                "blocking stub used inside an async runtime; use the async stub there",
            ));
        }
        Ok(())
    }

    /// Blocking form of [`MprpcChannel::client_stream`]: sends the items of
    /// `requests` (pulled on this thread, as credit allows) and returns the
    /// response. Refused with [`ErrorCode::Internal`] inside an async
    /// runtime.
    pub fn client_stream<Req, Resp, I>(
        &self,
        controller: Option<&MprpcController>,
        service: &'static ServiceDescriptor,
        method: usize,
        requests: I,
    ) -> Result<Resp, Status>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
        I: IntoIterator<Item = Req>,
    {
        Self::outside_runtime()?;
        let requests = futures_util::stream::iter(requests);
        self.runtime.block_on(
            self.channel
                .client_stream(controller, service, method, requests),
        )
    }

    /// Blocking form of [`MprpcChannel::bidi_stream`]: the items of
    /// `requests` are pulled on a thread of the runtime's blocking pool (so
    /// an iterator may block, e.g. on input) and sent as credit allows; the
    /// responses are an iterator. Refused with [`ErrorCode::Internal`]
    /// inside an async runtime.
    pub fn bidi_stream<Req, Resp, I>(
        &self,
        controller: Option<&MprpcController>,
        service: &'static ServiceDescriptor,
        method: usize,
        requests: I,
    ) -> Result<super::BlockingStreaming<Resp>, Status>
    where
        Req: prost::Message + Send + 'static,
        Resp: prost::Message + Default,
        I: IntoIterator<Item = Req>,
        I::IntoIter: Send + 'static,
    {
        Self::outside_runtime()?;
        // One message at a time between the iterator's thread and the
        // sender: the iterator runs only as fast as credit allows.
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let iter = requests.into_iter();
        let requests =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|m| (m, rx)) },
            );
        let stream = self.runtime.block_on(async {
            let stream = self
                .channel
                .bidi_stream(controller, service, method, requests)
                .await?;
            tokio::task::spawn_blocking(move || {
                for m in iter {
                    if tx.blocking_send(m).is_err() {
                        break;
                    }
                }
            });
            Ok::<_, Status>(stream)
        })?;
        Ok(super::BlockingStreaming::new(
            stream,
            Arc::clone(&self.runtime),
        ))
    }
}
