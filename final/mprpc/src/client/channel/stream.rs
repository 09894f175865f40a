//! [`MprpcChannel::server_stream`]: opening a server stream, the way
//! [`MprpcChannel::call`] makes a call.

use std::time::Instant;

use super::*;
use crate::client::Streaming;

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
                    Ok(raw) => return Ok(Streaming::new(raw)),
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
        if let Some(c) = controller {
            if let Err(e) = &result {
                c.set_failed(e.clone());
            }
        }
        result
    }
    // ANCHOR_END: server_stream
}
