//! [`Credit`]: the bytes of stream messages a peer still lets us send.
//! Both sides use it: the provider for a stream's responses (granted by the
//! caller), the caller for a client or bidirectional stream's requests
//! (granted by the provider).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use tokio::sync::Notify;

// ANCHOR: credit
/// A stream's credit: bytes of messages the peer still lets us send.
/// It starts at the window granted, grows with every credit frame and
/// shrinks by each message sent. A message may go out while the credit is
/// above zero, so the credit goes negative by at most one message.
#[derive(Debug)]
pub(crate) struct Credit {
    /// Bytes left (negative after a message larger than what was left).
    avail: AtomicI64,
    /// The stream has ended: waiting for credit is over.
    closed: AtomicBool,
    /// Wakes the stream's sender when credit arrives.
    wake: Notify,
}

impl Credit {
    /// A credit of `window` bytes.
    pub(crate) fn new(window: u32) -> Credit {
        Credit {
            avail: AtomicI64::new(i64::from(window)),
            closed: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    /// Waits until some credit is left; `false` if the stream ended first.
    pub(crate) async fn wait(&self) -> bool {
        // `notify_one` keeps a permit when nobody waits, so a grant between
        // the load and the wait is not lost.
        loop {
            if self.closed.load(Ordering::Acquire) {
                return false;
            }
            if self.avail.load(Ordering::Acquire) > 0 {
                return true;
            }
            self.wake.notified().await;
        }
    }

    /// Whether some credit is left now.
    pub(crate) fn has_some(&self) -> bool {
        self.avail.load(Ordering::Acquire) > 0
    }

    /// Whether the stream has ended.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// A message of `len` bytes went out.
    pub(crate) fn spend(&self, len: usize) {
        let len = i64::try_from(len).unwrap_or(i64::MAX);
        self.avail.fetch_sub(len, Ordering::AcqRel);
    }

    /// The peer granted `bytes` more. Saturates: a peer granting without
    /// end only lifts its own limit (the connection's buffer budget still
    /// holds).
    pub(crate) fn grant(&self, bytes: u32) {
        let add = i64::from(bytes);
        let _ = self
            .avail
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                Some(v.saturating_add(add))
            });
        self.wake.notify_one();
    }

    /// The stream ended: a sender waiting for credit gives up.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}
// ANCHOR_END: credit
