//! Driving async code from plain `#[test]` functions, and timing checks.

use std::future::Future;
use std::io;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

/// Runs `future` to completion on a current-thread runtime of its own.
pub fn block_on<T>(future: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}

/// A runtime with one worker thread, for tests that block between
/// `block_on` calls (sleeping, stopping and restarting ZooKeeper), which
/// the body of a `#[tokio::test]` must not do.
pub fn runtime() -> io::Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
}

/// Asserts that less than `limit` has passed since `started`.
pub fn assert_within(started: Instant, limit: Duration) {
    let took = started.elapsed();
    assert!(took < limit, "took {took:?}, limit {limit:?}");
}
