//! Helpers shared by this step's integration tests: a log recorder, a
//! config, and a provider started on 127.0.0.1 with a port the system picks.

// Each test file compiles this module separately and uses only part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};
use step::config::MprpcConfig;
use step::provider::{Level, LogSink, ProviderHandle, RpcProvider};

/// The provider's log so far: level and text of each line.
pub type Lines = Vec<(Level, String)>;

/// Collects the provider's log lines so a test can wait for one.
#[derive(Clone, Default)]
pub struct Recorder {
    /// The lines, and a condition variable notified on every new one.
    pub lines: Arc<(Mutex<Lines>, Condvar)>,
}

impl Recorder {
    /// A sink that appends to this recorder.
    pub fn sink(&self) -> LogSink {
        let lines = Arc::clone(&self.lines);
        Arc::new(move |level, line: &str| {
            let (list, changed) = &*lines;
            list.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((level, line.to_string()));
            changed.notify_all();
        })
    }

    /// Waits (at most 10 s) until `done` holds for the lines logged so far.
    pub fn wait_until(&self, what: &str, done: impl Fn(&[(Level, String)]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
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

    /// The bytes `on_message` reported for `peer`, in order, joined.
    pub fn received_hex(lines: &[(Level, String)], peer: SocketAddr) -> String {
        let prefix = format!("on_message: {peer} sent ");
        lines
            .iter()
            .filter_map(|(_, line)| line.strip_prefix(&prefix))
            .filter_map(|rest| rest.split(": ").nth(1))
            .collect()
    }
}

/// A config for 127.0.0.1:`port`.
pub fn config(port: u16) -> MprpcConfig {
    MprpcConfig {
        rpcserverip: [127, 0, 0, 1].into(),
        rpcserverport: port,
        zookeeperip: "127.0.0.1".to_string(),
        zookeeperport: 2181,
    }
}

/// A provider on 127.0.0.1 with a port the system picks.
pub fn start_provider() -> (ProviderHandle, Recorder) {
    let recorder = Recorder::default();
    let mut provider = RpcProvider::new(&config(0));
    provider.set_thread_num(4);
    provider.set_log_sink(recorder.sink());
    let handle = provider
        .start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("start the provider");
    recorder.wait_for("RpcProvider listening on 127.0.0.1:");
    (handle, recorder)
}

impl Recorder {
    /// A copy of the lines logged so far.
    pub fn snapshot(&self) -> Lines {
        self.lines
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
