//! Logging behind the `log` facade (placeholder: stderr, replaced by the
//! asynchronous file logger in a later milestone).

use log::{LevelFilter, Log, Metadata, Record};

/// Writes records to stderr.
#[derive(Debug)]
struct StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, _metadata: &Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &Record<'_>) {
        eprintln!("{} {}", record.level(), record.args());
    }

    fn flush(&self) {}
}

/// Installs the logger once; later calls do nothing.
pub fn init() {
    if log::set_logger(&StderrLogger).is_ok() {
        log::set_max_level(LevelFilter::Info);
    }
}

/// Writes out queued log lines (nothing to do for stderr).
pub fn flush() {
    log::logger().flush();
}
