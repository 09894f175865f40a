//! The `callee` example as a child process with a config written by the
//! test, for measurements that must be the provider's own: its resident
//! memory (`/proc/<pid>/status`), its descriptors (`/proc/<pid>/fd`). The
//! test's client sockets and buffers do not count. Killed on drop.

// Every test binary uses a different part of this helper.
#![allow(dead_code)]

use std::fs;
use std::time::{Duration, Instant};

use testkit::ChildProcess;

use super::provider_process::example_binary;
use super::zk_server::free_port;

/// A `callee` child serving `UserServiceRpc` on 127.0.0.1, with no
/// discovery. The process itself is the shared harness's [`ChildProcess`]
/// (its directory, captured output and logs, kill on drop); this adds the
/// config, the fd limit and the `/proc` readings.
pub struct Callee {
    /// The child, in its own directory (config, `logs/`, `output.txt`).
    child: ChildProcess,
    /// "127.0.0.1:port".
    pub addr: String,
}

impl Callee {
    /// Starts the provider with `tables` (TOML: `[limits]`, `[timeouts]`…)
    /// appended to a config that sets the address and log directory. With
    /// `max_fds`, it runs under `ulimit -n max_fds` (set by `sh`, which then
    /// `exec`s it: same pid).
    pub fn start(log_level: &str, tables: &str, max_fds: Option<u32>) -> Callee {
        Callee::start_example("callee", log_level, tables, max_fds)
    }

    /// [`Callee::start`] with another example that serves from `-i
    /// mprpc.toml` (`feed_server`, say) in place of `callee`.
    pub fn start_example(
        example: &str,
        log_level: &str,
        tables: &str,
        max_fds: Option<u32>,
    ) -> Callee {
        let binary = match example_binary(example) {
            Ok(b) => b,
            Err(e) => panic!("building the {example} example: {e}"),
        };
        let dir = match ChildProcess::workdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        };
        let port = match free_port() {
            Ok(p) => p,
            Err(e) => panic!("free port: {e}"),
        };
        let config = format!(
            "# Written by a test of final/examples/tests.\n\
             rpcserverip = \"127.0.0.1\"\n\
             rpcserverport = {port}\n\
             log_dir = \"logs\"\n\
             log_level = \"{log_level}\"\n\
             {tables}\n",
        );
        if let Err(e) = fs::write(dir.path().join("mprpc.toml"), config) {
            panic!("writing the config: {e}");
        }
        let binary = binary.display().to_string();
        let child = match max_fds {
            Some(n) => {
                let script = format!("ulimit -n {n} && exec \"$0\" -i mprpc.toml");
                ChildProcess::spawn("sh".as_ref(), &["-c", &script, &binary], dir, |_| {})
            }
            None => ChildProcess::spawn(binary.as_ref(), &["-i", "mprpc.toml"], dir, |_| {}),
        };
        let child = match child {
            Ok(c) => c,
            Err(e) => panic!("starting the callee: {e}"),
        };
        Callee {
            child,
            addr: format!("127.0.0.1:{port}"),
        }
    }

    /// Waits (bounded) until the provider accepts connections.
    pub async fn wait_ready(&mut self) {
        let started = Instant::now();
        while tokio::net::TcpStream::connect(&self.addr).await.is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("provider exited with {status}:\n{}", self.output());
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "provider not listening after 30 s:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The child's pid (the test fails if it has exited).
    pub fn pid(&self) -> u32 {
        match self.child.pid() {
            Some(pid) => pid,
            None => panic!("the callee has exited:\n{}", self.output()),
        }
    }

    /// Whether the child is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None)) && self.child.pid().is_some()
    }

    /// (VmRSS, VmHWM) in KiB.
    pub fn memory_kib(&self) -> (u64, u64) {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Open descriptors.
    pub fn open_fds(&self) -> usize {
        fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// What the child printed, then its log files.
    pub fn output(&self) -> String {
        self.child.output()
    }

    /// Waits until the provider holds no more than `baseline` descriptors,
    /// at most 5 s, and returns the last count for the caller to judge.
    pub async fn fds_back_to(&self, baseline: usize) -> usize {
        let wait = Instant::now();
        let mut fds = self.open_fds();
        while fds > baseline && wait.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            fds = self.open_fds();
        }
        fds
    }
}
