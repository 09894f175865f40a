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
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Status::new(
                ErrorCode::Internal,
                "blocking stub used inside an async runtime; use the async stub there",
            ));
        }
        let stream = self.runtime.block_on(
            self.channel
                .server_stream(controller, service, method, request),
        )?;
        Ok(super::BlockingStreaming::new(
            stream,
            Arc::clone(&self.runtime),
        ))
    }
}
