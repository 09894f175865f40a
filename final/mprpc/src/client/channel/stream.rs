//! [`MprpcChannel::server_stream`]: opening a server stream, the way
//! [`MprpcChannel::call`] makes a call.

use std::time::Instant;

use super::*;
use futures_util::future::Either;

use crate::client::{RawStream, StreamSender, Streaming};

impl MprpcChannel {
    // ANCHOR: server_stream
    /// Opens server-streaming method number `method` of `service` with
    /// `request`; generated stubs call this. The deadline (the controller's
    /// timeout, else `timeouts.call_ms`) covers the whole stream; the
    /// controller's metadata and the channel's interceptors apply to the
    /// opening. Errors of the provider (unknown method, refused by an
    /// interceptor, the handler's error) arrive as the stream's first item.
    /// Course-format providers cannot stream and are skipped.
    pub async fn server_stream<Req, Resp>(
        &self,
        controller: Option<&MprpcController>,
        service: &'static ServiceDescriptor,
        method: usize,
        request: &Req,
    ) -> Result<Streaming<Resp>, Status>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let raw = self.open_raw(controller, service, method, request).await?;
        Ok(Streaming::new(crate::streaming::RawMessages::responses(
            raw,
        )))
    }
    // ANCHOR_END: server_stream

    // ANCHOR: client_stream
    /// Calls client-streaming method number `method` of `service` with the
    /// messages of `requests`, then returns its one response; generated
    /// stubs call this. Each message goes out only under the provider's
    /// credit, so a handler that reads slowly slows `requests` down; the
    /// end of `requests` is the half-close. The deadline covers the whole
    /// call; the handler's error (also one returned before all requests
    /// were sent) is the result. Dropping the future cancels the stream.
    pub async fn client_stream<Req, Resp, S>(
        &self,
        controller: Option<&MprpcController>,
        service: &'static ServiceDescriptor,
        method: usize,
        requests: S,
    ) -> Result<Resp, Status>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
        S: futures_util::Stream<Item = Req>,
    {
        let result = async {
            let raw = self.open_raw(controller, service, method, &()).await?;
            let sender = raw.sender();
            let mut responses =
                Streaming::<Resp>::new(crate::streaming::RawMessages::responses(raw));
            let receive = async {
                let Some(response) = responses.message().await? else {
                    return Err(Status::new(
                        ErrorCode::BadResponse,
                        "the provider ended a client stream without a response",
                    ));
                };
                match responses.message().await? {
                    None => Ok(response),
                    Some(_) => Err(Status::new(
                        ErrorCode::BadResponse,
                        "the provider sent more than one response on a client stream",
                    )),
                }
            };
            let send = async {
                if let Some(sender) = sender {
                    send_all(&sender, requests).await;
                }
            };
            // The response, or the stream's end, stops the sending: a
            // handler may answer before it has read every request.
            let receive = std::pin::pin!(receive);
            match futures_util::future::select(receive, std::pin::pin!(send)).await {
                Either::Left((response, _)) => response,
                Either::Right(((), receive)) => receive.await,
            }
        }
        .await;
        record_failure(controller, &result);
        result
    }
    // ANCHOR_END: client_stream

    // ANCHOR: bidi_stream
    /// Opens bidirectional method number `method` of `service`: the
    /// messages of `requests` are sent on a task of their own, under the
    /// provider's credit, and their end is the half-close; the responses
    /// are the returned stream. Generated stubs call this. Dropping the
    /// returned stream cancels the stream and stops sending `requests`.
    pub async fn bidi_stream<Req, Resp, S>(
        &self,
        controller: Option<&MprpcController>,
        service: &'static ServiceDescriptor,
        method: usize,
        requests: S,
    ) -> Result<Streaming<Resp>, Status>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
        S: futures_util::Stream<Item = Req> + Send + 'static,
    {
        let mut raw = self.open_raw(controller, service, method, &()).await?;
        if let Some(sender) = raw.sender() {
            let task = tokio::spawn(async move { send_all(&sender, requests).await });
            raw.set_pump(task.abort_handle());
        }
        Ok(Streaming::new(crate::streaming::RawMessages::responses(
            raw,
        )))
    }
    // ANCHOR_END: bidi_stream

    /// Opens a stream of method number `method` of `service` with
    /// `request` as its opening payload (`()` when the requests are a
    /// stream): discovery, load balancing, metadata and interceptors as for
    /// a call; the deadline covers the opening here and the rest of the
    /// stream in the [`RawStream`].
    async fn open_raw<Req: prost::Message>(
        &self,
        controller: Option<&MprpcController>,
        service: &'static ServiceDescriptor,
        method: usize,
        request: &Req,
    ) -> Result<RawStream, Status> {
        let Some(method_name) = service.methods.get(method) else {
            return Err(Status::new(
                ErrorCode::UnknownMethod,
                format!(
                    "service {} has no method number {method}",
                    service.full_name
                ),
            ));
        };
        let timeout = controller
            .and_then(|c| c.timeout())
            .or(self.inner.default_timeout);
        let deadline_at = timeout.map(|t| Instant::now() + t);
        let timeout_ms = timeout.map_or(0, |t| t.as_millis().clamp(1, u32::MAX as u128) as u32);
        let metadata = self.request_metadata(controller, service, method, None)?;
        let open = async {
            let list = self.providers(service, method).await?;
            let mut tried = 0u64;
            let mut last_err = None;
            for _ in 0..list.len().clamp(1, MAX_ATTEMPTS) {
                let Some(idx) = self.pick(&list, tried) else {
                    break;
                };
                tried |= 1 << (idx % 64);
                let addr = &list[idx];
                if addr.starts_with(COURSE_SCHEME) {
                    last_err = Some(Status::new(
                        ErrorCode::Unsupported,
                        format!(
                            "{addr} speaks the course's format, which cannot stream                              ({}.{method_name})",
                            service.full_name
                        ),
                    ));
                    continue;
                }
                let conn = match self.connection(addr).await {
                    Ok(c) => c,
                    Err(e) => {
                        self.inner.eject(addr);
                        last_err = Some(e);
                        continue;
                    }
                };
                match conn
                    .open_stream(
                        (service.full_name, method_name),
                        timeout_ms,
                        deadline_at,
                        self.inner.settings.stream_window,
                        metadata.as_ref(),
                        request,
                    )
                    .await
                {
                    Ok(raw) => return Ok(raw),
                    Err(CallError::NotSent(e)) if e.code == ErrorCode::Transport => {
                        last_err = Some(e);
                    }
                    Err(CallError::NotSent(e) | CallError::Failed(e)) => return Err(e),
                    Err(CallError::DeadlinePassed) => {
                        return Err(deadline_error(service, method, timeout));
                    }
                }
            }
            Err(last_err.unwrap_or_else(|| {
                Status::new(
                    ErrorCode::NoProvider,
                    format!("no provider of {} is available", service.full_name),
                )
            }))
        };
        let result = match deadline_at {
            Some(at) => tokio::time::timeout_at(at.into(), open)
                .await
                .unwrap_or_else(|_| Err(deadline_error(service, method, timeout))),
            None => open.await,
        };
        record_failure(controller, &result);
        result
    }
}

/// Records a failed stream on its controller, if any.
fn record_failure<T>(controller: Option<&MprpcController>, result: &Result<T, Status>) {
    if let (Some(c), Err(e)) = (controller, result) {
        c.set_failed(e.clone());
    }
}

/// Sends every message of `requests` under the provider's credit, then
/// half-closes; stops early, without a half-close, once the stream has
/// ended (its end tells the caller why) or a message cannot be sent.
async fn send_all<Req, S>(sender: &StreamSender, requests: S)
where
    Req: prost::Message,
    S: futures_util::Stream<Item = Req>,
{
    use futures_util::StreamExt;
    let mut requests = std::pin::pin!(requests);
    while let Some(request) = requests.next().await {
        if let Err(e) = sender.send(&request.encode_to_vec()).await {
            log::debug!("{e}");
            sender.cancel(e);
            return;
        }
    }
    sender.half_close();
}
