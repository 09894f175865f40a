//! A log recorder: collects the lines a provider (or anything with a log
//! sink) writes, so a test can wait for one instead of sleeping.

use std::fmt::Debug;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long [`Recorder::wait_until`] waits before it fails the test.
pub const WAIT: Duration = Duration::from_secs(10);

/// The lines logged so far and a condition variable notified on every new
/// one.
type Shared<L> = Arc<(Mutex<Vec<(L, String)>>, Condvar)>;

/// A log sink over levels `L`: the shape of a step's `provider::LogSink`.
pub type Sink<L> = Arc<dyn Fn(L, &str) + Send + Sync>;

/// The lines logged so far, each with its level `L` (the step's own
/// `Level` type: testkit knows nothing of the code under test).
#[derive(Debug)]
pub struct Recorder<L> {
    /// The lines, and a condition variable notified on every new one.
    lines: Shared<L>,
}

impl<L> Clone for Recorder<L> {
    fn clone(&self) -> Self {
        Recorder {
            lines: Arc::clone(&self.lines),
        }
    }
}

impl<L> Default for Recorder<L> {
    fn default() -> Self {
        Recorder {
            lines: Arc::new((Mutex::new(Vec::new()), Condvar::new())),
        }
    }
}

impl<L: Clone + Debug + Send + 'static> Recorder<L> {
    /// A log sink that appends to this recorder: the type of a step's
    /// `provider::LogSink`, for `RpcProvider::set_log_sink`.
    pub fn sink(&self) -> Sink<L> {
        let recorder = self.clone();
        Arc::new(move |level, line: &str| recorder.push(level, line))
    }

    /// Records one line.
    pub fn push(&self, level: L, line: &str) {
        let (list, changed) = &*self.lines;
        list.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((level, line.to_string()));
        changed.notify_all();
    }

    /// Waits (at most [`WAIT`]) until `done` holds for the lines logged so
    /// far; fails the test with the whole log otherwise.
    pub fn wait_until(&self, what: &str, done: impl Fn(&[(L, String)]) -> bool) {
        let deadline = Instant::now() + WAIT;
        let (list, changed) = &*self.lines;
        let mut lines = list.lock().unwrap_or_else(PoisonError::into_inner);
        while !done(&lines) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {what}; log: {lines:#?}"
            );
            lines = changed
                .wait_timeout(lines, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Waits for a line containing `text`.
    pub fn wait_for(&self, text: &str) {
        self.wait_until(text, |lines| lines.iter().any(|(_, l)| l.contains(text)));
    }

    /// A copy of the lines logged so far.
    pub fn snapshot(&self) -> Vec<(L, String)> {
        self.lines
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
