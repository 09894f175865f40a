//! The process-wide logger: `init`, the macros and the guard. One test only,
//! because the global can be set once per process (this file is its own
//! test binary, so its own process).

mod support;

use step::logger::Logger;
use step::{log_error, log_info};

/// `init` sets the global once, the macros log through it with their own
/// levels, and dropping the guard drains the queue.
#[test]
fn init_macros_and_guard() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("logs");
    let guard = Logger::init(&dir).expect("first init succeeds");
    assert!(Logger::init(&dir).is_err(), "second init is refused");

    log_info!("hello {}", 1);
    let peer = "127.0.0.1:9";
    log_error!("lost {peer}");
    drop(guard);

    let lines = support::log_file::read_all(&dir);
    let got: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| (l.level.as_str(), l.message.as_str()))
        .collect();
    assert_eq!(got, [("INFO", "hello 1"), ("ERROR", "lost 127.0.0.1:9")]);
}
