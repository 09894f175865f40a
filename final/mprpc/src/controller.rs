//! [`MprpcController`]: per-call options in, per-call outcome out.
//!
//! In the course the controller (a `google::protobuf::RpcController`) was
//! how the channel told the caller that `CallMethod` failed — `Failed()`,
//! `ErrorText()` — because the stub's methods returned `void`. Our stubs
//! return `Result`, so the controller's main jobs become the ones the course
//! left as stubs: a deadline (`set_timeout`) and cancellation
//! (`start_cancel`). It still records the outcome, so course-style code
//! (`if controller.failed() { ... }`) reads the same.
//!
//! A controller is cheap to clone and clones share state: hand a clone to
//! another task and call [`MprpcController::start_cancel`] there.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::error::{ErrorCode, Status};
use crate::metadata::Metadata;

// ANCHOR: controller
/// Options and outcome of one call (or of consecutive calls, after
/// [`MprpcController::reset`]).
#[derive(Debug, Clone, Default)]
pub struct MprpcController {
    /// State shared by all clones.
    inner: Arc<Inner>,
}

/// Shared state behind a controller.
#[derive(Debug, Default)]
struct Inner {
    /// Deadline of the call, relative to its start; `None` = channel default.
    timeout: Mutex<Option<Duration>>,
    /// The last call's error, if it failed.
    error: Mutex<Option<Status>>,
    /// Set by `start_cancel`.
    cancelled: AtomicBool,
    /// Wakes calls waiting on this controller when it is cancelled.
    notify: Notify,
    /// Metadata sent with every call made under this controller.
    metadata: Mutex<Metadata>,
    /// Metadata of the last call's response.
    response_metadata: Mutex<Metadata>,
}
// ANCHOR_END: controller

/// Locks a mutex even if a panicking thread poisoned it: the data here (an
/// option) is always in a valid state.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MprpcController {
    /// A controller with no deadline of its own and nothing recorded.
    pub fn new() -> MprpcController {
        MprpcController::default()
    }

    /// A controller whose calls time out after `timeout`.
    pub fn with_timeout(timeout: Duration) -> MprpcController {
        let c = MprpcController::new();
        c.set_timeout(timeout);
        c
    }

    /// Sets the deadline for subsequent calls (relative to each call's start).
    pub fn set_timeout(&self, timeout: Duration) {
        *lock(&self.inner.timeout) = Some(timeout);
    }

    /// The deadline set with [`set_timeout`](Self::set_timeout), if any.
    pub fn timeout(&self) -> Option<Duration> {
        *lock(&self.inner.timeout)
    }

    /// Adds `key: value` to the metadata sent with calls made under this
    /// controller (replacing an earlier value of `key`). Fails when the key
    /// is not a valid name (lowercase letters, digits, `-`, `_`, `.`) or a
    /// part is too long for the wire.
    pub fn set_metadata(
        &self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<(), Status> {
        lock(&self.inner.metadata).insert(key, value)
    }

    /// The metadata sent with calls made under this controller.
    pub fn metadata(&self) -> Metadata {
        lock(&self.inner.metadata).clone()
    }

    /// The metadata the provider sent with the last call's response (empty
    /// if it sent none, or the call failed before an answer arrived).
    pub fn response_metadata(&self) -> Metadata {
        lock(&self.inner.response_metadata).clone()
    }

    /// Records the response metadata of a call; the channel calls this.
    pub(crate) fn set_response_metadata(&self, md: Metadata) {
        *lock(&self.inner.response_metadata) = md;
    }

    /// True when calls under this controller carry metadata (saves a clone
    /// on the hot path when they do not).
    pub(crate) fn has_metadata(&self) -> bool {
        !lock(&self.inner.metadata).is_empty()
    }

    /// Clears the recorded outcome and the cancel flag so the controller can
    /// be reused (the course's `Reset()`). The timeout and the request
    /// metadata are kept; the response metadata is cleared.
    pub fn reset(&self) {
        *lock(&self.inner.error) = None;
        *lock(&self.inner.response_metadata) = Metadata::new();
        self.inner.cancelled.store(false, Ordering::SeqCst);
    }

    /// True if the last call failed.
    pub fn failed(&self) -> bool {
        lock(&self.inner.error).is_some()
    }

    /// Code of the last failure ([`ErrorCode::Ok`] if it did not fail).
    pub fn error_code(&self) -> ErrorCode {
        lock(&self.inner.error)
            .as_ref()
            .map_or(ErrorCode::Ok, |e| e.code)
    }

    /// Text of the last failure, empty if it did not fail.
    pub fn error_text(&self) -> String {
        lock(&self.inner.error)
            .as_ref()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    /// Records a failure (the course's `SetFailed`); the channel calls this.
    pub fn set_failed(&self, error: Status) {
        *lock(&self.inner.error) = Some(error);
    }

    /// Records the outcome of a call.
    pub(crate) fn record<T>(&self, result: &Result<T, Status>) {
        *lock(&self.inner.error) = result.as_ref().err().cloned();
    }

    /// Cancels calls running under this controller (and future ones until
    /// [`reset`](Self::reset)): they return [`ErrorCode::Cancelled`] at once,
    /// and the provider is told to drop the work.
    pub fn start_cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    /// True once [`start_cancel`](Self::start_cancel) was called.
    pub fn is_canceled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Completes when the controller is cancelled.
    pub async fn cancelled(&self) {
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            // Register interest before checking the flag, so a cancel landing
            // between the check and the await is not lost.
            notified.as_mut().enable();
            if self.is_canceled() {
                return;
            }
            notified.await;
        }
    }
}
