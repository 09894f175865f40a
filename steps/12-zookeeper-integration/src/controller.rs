//! `MprpcController`: how a caller learns that a call failed.
//!
//! A stub method returns nothing, and a failed call leaves a default
//! response that looks like a valid "no". The course's answer, from
//! protobuf's C++ RPC interface: the caller passes a controller with each
//! call, the channel marks it failed with a reason, and the caller checks
//! [`failed`](RpcController::failed) before it trusts the response.

use crate::rpc::RpcController;

// ANCHOR: controller
/// The outcome of the last call made with this controller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MprpcController {
    /// Whether the call failed.
    failed: bool,
    /// Why it failed; empty when it did not.
    error_text: String,
}

impl MprpcController {
    /// A controller in its initial state: not failed.
    pub fn new() -> Self {
        Self::default()
    }
}

impl RpcController for MprpcController {
    fn reset(&mut self) {
        self.failed = false;
        self.error_text.clear();
    }

    fn failed(&self) -> bool {
        self.failed
    }

    fn error_text(&self) -> &str {
        &self.error_text
    }

    fn set_failed(&mut self, reason: String) {
        self.failed = true;
        self.error_text = reason;
    }
}
// ANCHOR_END: controller
