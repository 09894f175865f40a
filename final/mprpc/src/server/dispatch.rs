//! One frame at a time: requests dispatched to handlers (inline or on a task
//! of their own, by adaptive fairness), cancels, pings, and the replies.

use super::*;

impl ConnState<'_> {
    // ANCHOR: handle_frames
    /// Handles the complete frames in `inbuf` while the responses waiting
    /// to be written stay within half the connection's allowance (and
    /// while no loan is awaited, and not too many calls run on tasks of
    /// their own). A frame larger than that half first borrows from the
    /// provider-wide pool into `loan`, or starts waiting for it in
    /// `borrowing` and stops. Returns whether a frame was completed, or
    /// the decoding error that ends the connection.
    pub(super) fn handle_frames(
        &mut self,
        inbuf: &mut BytesMut,
        loan: &mut Option<OwnedSemaphorePermit>,
        borrowing: &mut Option<Borrowing>,
        cx: &mut Context<'_>,
    ) -> Result<bool, frame::FrameError> {
        let shared = self.shared;
        let half = shared.per_conn / 2;
        let mut completed = false;
        while self.out.len() < half
            && borrowing.is_none()
            && self.spawned < MAX_SPAWNED_PER_CONNECTION
        {
            if loan.is_none() {
                // A frame above the allowance borrows before its bytes are
                // reserved, or waits (reading nothing meanwhile).
                if let Some(len) = frame::peek_len(inbuf) {
                    let need = len.saturating_add(4);
                    if need > half && len <= shared.max_frame_size {
                        let permits = u32::try_from(need).unwrap_or(u32::MAX);
                        match Arc::clone(&shared.pool).try_acquire_many_owned(permits) {
                            Ok(p) => *loan = Some(p),
                            Err(_) => {
                                let pool = Arc::clone(&shared.pool);
                                *borrowing = Some(Box::pin(async move {
                                    pool.acquire_many_owned(permits).await.ok()
                                }));
                                break;
                            }
                        }
                    }
                }
            }
            match frame::try_decode(inbuf, shared.max_frame_size)? {
                Some(f) => {
                    completed = true;
                    self.on_frame(f, loan.take(), cx);
                }
                None => break,
            }
        }
        Ok(completed)
    }
    // ANCHOR_END: handle_frames

    /// Handles one frame from the caller. `loan` is pool memory borrowed
    /// for this frame, held until its call completes; `cx` is the
    /// connection task's, for polling a handler inline.
    pub(super) fn on_frame(
        &mut self,
        f: Frame,
        loan: Option<OwnedSemaphorePermit>,
        cx: &mut Context<'_>,
    ) {
        match f {
            Frame::Request {
                id,
                timeout_ms,
                service,
                method,
                metadata,
                payload,
            } => self.on_request(
                id, timeout_ms, &service, &method, &metadata, payload, loan, cx,
            ),
            Frame::Cancel { id } => {
                if let Some(handle) = self.aborts.remove(&id) {
                    handle.abort();
                }
            }
            Frame::StreamOpen {
                id,
                timeout_ms,
                window,
                service,
                method,
                metadata,
                payload,
            } => self.open_stream(
                id, timeout_ms, window, &service, &method, &metadata, payload,
            ),
            Frame::Credit { id, bytes } => self.on_credit(id, bytes),
            Frame::StreamEnd { id, code, .. } => self.on_stream_end(id, code),
            Frame::StreamMessage { id, payload } => self.on_stream_message(id, payload),
            Frame::Response { .. } | Frame::GoAway | Frame::ConnectionError { .. } => {
                log::warn!(
                    "{}: ignoring a provider-side frame sent by a caller",
                    self.peer
                );
            }
        }
    }

    // ANCHOR: on_request
    /// Looks up the method, then either polls the handler once inline or
    /// starts it on a task of its own.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_request(
        &mut self,
        id: u64,
        timeout_ms: u32,
        service: &[u8],
        method: &[u8],
        metadata: &[u8],
        payload: Bytes,
        loan: Option<OwnedSemaphorePermit>,
        cx: &mut Context<'_>,
    ) {
        let found = match self.last_service {
            Some((name, published)) if name == service => Some(published),
            _ => {
                let hit = self.shared.published.get_key_value(service);
                self.last_service = hit.map(|(name, published)| (name.as_slice(), published));
                hit.map(|(_, published)| published)
            }
        };
        let Some((svc, stats, metrics)) = found else {
            // A caller that sent the course's short name gets told the name
            // it should have used.
            let hint = match self.shared.legacy_services.get(service) {
                Some((svc, _)) => format!(
                    "; names are package-qualified: did you mean {}?",
                    svc.descriptor().full_name
                ),
                None => String::new(),
            };
            let msg = format!(
                "no service {:?} here (this provider has: {}){hint}",
                String::from_utf8_lossy(service),
                self.shared.names
            );
            return self.refuse(id, Status::new(ErrorCode::UnknownService, msg));
        };
        let desc = svc.descriptor();
        let Some(index) = desc.method_index(method) else {
            let msg = format!(
                "service {} has no method {:?} (it has: {})",
                desc.full_name,
                String::from_utf8_lossy(method),
                desc.methods.join(", ")
            );
            return self.refuse(id, Status::new(ErrorCode::UnknownMethod, msg));
        };
        if self.aborts.contains_key(&id) {
            // Two calls under one id: a cancel or a response could not say
            // which one it means. The first keeps running.
            let msg = format!(
                "call id {id} is already in flight on this connection; ids must be unique among calls in flight"
            );
            return self.refuse(id, Status::new(ErrorCode::BadRequest, msg));
        }
        if self.in_flight.len() >= self.shared.max_in_flight {
            let msg = format!(
                "{} calls already in flight on this connection (max_in_flight_per_connection)",
                self.in_flight.len()
            );
            return self.refuse(id, Status::new(ErrorCode::Overloaded, msg));
        }
        // One clock read serves the deadline, the call's clock and the
        // timing of the first poll.
        let now = Instant::now();
        let deadline = (timeout_ms > 0).then(|| now + Duration::from_millis(u64::from(timeout_ms)));
        // ANCHOR: on_request_hooks
        let hooks = &self.shared.hooks;
        let who = Who {
            desc,
            index,
            peer: self.peer,
            call_id: id,
            legacy: false,
        };
        let mut end = hooks.begin(&who, &metrics[index], now);
        let md = if metadata.is_empty() {
            Metadata::new()
        } else {
            match Metadata::decode(metadata, hooks.metadata_limits) {
                Ok(md) => md,
                Err(why) => {
                    let status =
                        Status::new(ErrorCode::BadRequest, format!("request metadata: {why}"));
                    return self.finish_call(id, Err(status), end);
                }
            }
        };
        end.trace_from(&md);
        let md = match hooks.intercept(&mut end, &who, md) {
            Ok(md) => md,
            Err(status) => return self.finish_call(id, Err(status), end),
        };
        // The handler's response-metadata cell, shared with its context:
        // a spare one of this connection's when there is one.
        let cell = self.spare_cells.pop().unwrap_or_default();
        end.handler = Some(Arc::clone(&cell));
        let ctx = CallContext::for_call(self.peer, deadline, id, false, md, cell);
        // ANCHOR_END: on_request_hooks
        let stats = &stats[index];
        let (learning, spawn) = match self.shared.mode {
            HandlerMode::Inline => (false, false),
            HandlerMode::Spawn => (false, true),
            _ => (true, !stats.quick.load(Ordering::Relaxed)),
        };
        let (name, mname) = (desc.full_name, desc.methods[index]);
        let handler = end.in_span(svc.call(index, ctx, payload));
        let mut fut = Timed {
            fut: AssertUnwindSafe(handler).catch_unwind(),
            stats: learning.then(|| Arc::clone(stats)),
            budget: self.shared.budget,
            longest: Duration::ZERO,
            // Inline, the first poll starts now; a spawned call's first
            // poll starts whenever its task runs, and times itself.
            first_poll: (!spawn).then_some(now),
        };
        let outcome: Outcome = if spawn {
            // Not known to be quick: a task of its own, so that a handler
            // computing for a while holds up no other call.
            let (fut, handle) = futures_util::future::abortable(fut);
            self.aborts.insert(id, handle);
            let task = AbortOnDrop(tokio::spawn(fut));
            self.spawned += 1;
            Box::pin(async move {
                match task.await {
                    Ok(r) => outcome(r, name, mname),
                    Err(e) if e.is_panic() => Some(Err(panicked(name, mname))),
                    Err(_) => None,
                }
            })
        } else {
            // First poll right here, on the connection task: no spawn,
            // no channel, no wake-up.
            match Pin::new(&mut fut).poll(cx) {
                Poll::Ready(Ok(result)) => return self.finish_call(id, result, end),
                Poll::Ready(Err(_panic)) => {
                    return self.finish_call(id, Err(panicked(name, mname)), end);
                }
                Poll::Pending => {}
            }
            let (fut, handle): (Guarded, _) = futures_util::future::abortable(fut);
            self.aborts.insert(id, handle);
            Box::pin(async move { outcome(fut.await, name, mname) })
        };
        self.in_flight.push(Box::pin(async move {
            // Pool memory borrowed for a large request is returned when the
            // call is over, not when its frame was parsed: the handler holds
            // the payload until then.
            let _loan = loan;
            let result = match deadline {
                Some(d) => tokio::time::timeout_at(d.into(), outcome)
                    .await
                    .unwrap_or_else(|_| {
                        Some(Err(Status::new(
                            ErrorCode::DeadlineExceeded,
                            format!("{name}.{mname} did not finish within {timeout_ms} ms"),
                        )))
                    }),
                None => outcome.await,
            };
            (id, spawn, result, end)
        }));
    }
    // ANCHOR_END: on_request

    /// Answers a call refused before its method was known (or before it
    /// could start), counting it.
    pub(super) fn refuse(&mut self, id: u64, status: Status) {
        if let Some(m) = &self.shared.hooks.metrics {
            m.refused(status.code);
        }
        self.respond(id, Err(status), Metadata::new());
    }

    /// Answers a call that started, and records how it ended.
    pub(super) fn finish_call(
        &mut self,
        id: u64,
        mut result: Result<Vec<u8>, Status>,
        mut end: CallEnd,
    ) {
        let (mut md, spare) = end.take_response_metadata();
        // Spares save an allocation per call.
        if let Some(cell) = spare.filter(|_| self.spare_cells.len() < MAX_SPARE_CELLS) {
            self.spare_cells.push(cell);
        }
        if let Err(status) = &mut result {
            // A status may carry metadata of its own (a handler's or an
            // interceptor's).
            md.extend_from(std::mem::take(&mut status.metadata));
        }
        let code = self.respond(id, result, md);
        end.finish(Some(code));
    }

    // ANCHOR: respond
    /// Appends the response frame for call `id`, with `md` if the caller
    /// can receive metadata; returns the code sent.
    pub(super) fn respond(
        &mut self,
        id: u64,
        result: Result<Vec<u8>, Status>,
        md: Metadata,
    ) -> ErrorCode {
        // Metadata goes only to callers that can read it, and only within
        // our own limits (a handler over them has failed its call).
        let (result, md) = if self.metadata_ok && !md.is_empty() {
            match md.check(self.shared.hooks.metadata_limits) {
                Ok(()) => (result, Some(md)),
                Err(why) => {
                    let status = Status::handler(format!("response metadata: {why}"));
                    (result.and(Err(status)), None)
                }
            }
        } else {
            (result, None)
        };
        let md_len = md.as_ref().map_or(0, |m| 2 + m.encoded_len());
        match result {
            Ok(body) if frame::response_fits(md_len + body.len(), self.shared.max_frame_size) => {
                frame::encode_response_with_metadata(
                    &mut self.out,
                    id,
                    ErrorCode::Ok,
                    md.as_ref(),
                    &body,
                );
                ErrorCode::Ok
            }
            Ok(body) => {
                let msg = format!(
                    "response of {} bytes exceeds max_frame_size {}",
                    md_len + body.len(),
                    self.shared.max_frame_size
                );
                log::warn!("{}: call {id}: {msg}", self.peer);
                frame::encode_response(&mut self.out, id, ErrorCode::FrameTooLarge, msg.as_bytes());
                ErrorCode::FrameTooLarge
            }
            Err(status) => {
                // An error's text is ours or the handler's: keep it within
                // the frame limit too.
                let mut text = status.message.as_bytes();
                let room = self.shared.max_frame_size.saturating_sub(64 + md_len);
                if text.len() > room {
                    text = &text[..room];
                }
                frame::encode_response_with_metadata(
                    &mut self.out,
                    id,
                    status.code,
                    md.as_ref(),
                    text,
                );
                status.code
            }
        }
    }
    // ANCHOR_END: respond
}

/// A guarded handler's result: `None` if cancelled.
pub(super) fn outcome(
    r: Result<std::thread::Result<Result<Vec<u8>, Status>>, futures_util::future::Aborted>,
    name: &str,
    mname: &str,
) -> Option<Result<Vec<u8>, Status>> {
    match r {
        Ok(Ok(result)) => Some(result),
        Ok(Err(_panic)) => Some(Err(panicked(name, mname))),
        Err(_aborted) => None,
    }
}

/// The status reported for a handler that panicked.
pub(super) fn panicked(service: &str, method: &str) -> Status {
    log::error!("handler {service}.{method} panicked");
    Status::handler(format!("handler {service}.{method} panicked"))
}
