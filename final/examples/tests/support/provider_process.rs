//! Providers as real child processes, for fault tests that kill, pause and
//! resume them.
//!
//! A provider in the test's own process cannot be killed like a crashed
//! server: its sockets belong to the test and close only when the test says
//! so. A child process can get `SIGKILL` (the kernel closes its sockets, as
//! after a crash), or `SIGSTOP` (it stops answering anything, ZooKeeper pings
//! included, while its sockets stay open — a hung or partitioned server).
//!
//! The child is the `callee` example, configured by a TOML file written
//! here, run by the shared harness's [`ChildProcess`] (`tools/testkit`),
//! which kills it on drop.

// Every test binary uses a different part of this helper.
#![allow(dead_code)]

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use testkit::{ChildProcess, Target};

#[allow(unused_imports)]
pub use testkit::send_signal;

use super::zk_server::free_port;

/// How long [`ProviderProcess::start`] waits for the child to register.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How often to try a new port if the chosen one was taken meanwhile.
const PORT_ATTEMPTS: usize = 3;

/// The line the provider logs once it listens and has registered.
const READY_LINE: &str = "provider serving";

/// Builds example `name` of `mprpc-examples` (once per test binary) with the
/// cargo that runs the tests, and returns its executable. Cargo gives
/// integration tests `CARGO_BIN_EXE_<name>` only for `[[bin]]` targets.
pub fn example_binary(name: &str) -> io::Result<PathBuf> {
    testkit::cargo_build("mprpc-examples", Target::Example(name))
}

/// Builds binary `name` of another package of the workspace (step 12's
/// `callee`, say) and returns its executable.
pub fn package_binary(package: &str, name: &str) -> io::Result<PathBuf> {
    testkit::cargo_build(package, Target::Bin(name))
}

/// A provider (`callee` example: `fixbug.UserServiceRpc`) running as a child
/// process on 127.0.0.1, registered in ZooKeeper. Killed on drop.
#[derive(Debug)]
pub struct ProviderProcess {
    /// The child, its directory (config, logs, captured output).
    child: ChildProcess,
    /// "127.0.0.1:port" it listens on and registers.
    addr: String,
}

impl ProviderProcess {
    /// Starts a provider registering under `root` in the ZooKeeper at
    /// `zookeeper` (a connect string: one server or an ensemble) with the
    /// given session timeout, and waits until it has registered.
    pub fn start(
        zookeeper: &str,
        root: &str,
        session_timeout: Duration,
    ) -> io::Result<ProviderProcess> {
        let binary = example_binary("callee")?;
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let dir = ChildProcess::workdir()?;
            let port = free_port()?;
            let config = format!(
                "# Written by tests/support/provider_process.rs for one test.\n\
                 rpcserverip = \"127.0.0.1\"\n\
                 rpcserverport = {port}\n\
                 zookeeperip = \"{zookeeper}\"\n\
                 zk_session_timeout_ms = {session}\n\
                 zk_root = \"{root}\"\n\
                 log_dir = \"logs\"\n\
                 log_level = \"info\"\n\
                 [timeouts]\n\
                 zk_connect_ms = 20000\n",
                session = session_timeout.as_millis(),
            );
            std::fs::write(dir.path().join("mprpc.toml"), config)?;
            let mut child = ChildProcess::spawn(&binary, &["-i", "mprpc.toml"], dir, |_| {})?;
            match child.wait_for(READY_LINE, READY_TIMEOUT) {
                Ok(()) => {
                    return Ok(ProviderProcess {
                        child,
                        addr: format!("127.0.0.1:{port}"),
                    });
                }
                Err(e) if child.output().contains("Address already in use") => {
                    last_error = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("provider did not start")))
    }

    /// "127.0.0.1:port": where it listens, and the name of its znode.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The child's process id, if it has not been killed.
    pub fn pid(&self) -> Option<u32> {
        self.child.pid()
    }

    /// `kill -9`: the kernel closes its sockets, its ZooKeeper session
    /// lingers until it times out. Waits until the process is gone.
    pub fn kill(&mut self) -> io::Result<()> {
        self.child.kill()
    }

    /// `SIGSTOP`: the process freezes with its sockets open.
    pub fn pause(&self) -> io::Result<()> {
        self.child.pause()
    }

    /// `SIGCONT`: the process runs on where it stopped.
    pub fn resume(&self) -> io::Result<()> {
        self.child.resume()
    }

    /// What the child printed (stdout and stderr) followed by its log files.
    pub fn output(&self) -> String {
        self.child.output()
    }
}
