//! Providers as real child processes, for fault tests that kill, pause and
//! resume them.
//!
//! A provider in the test's own process cannot be killed like a crashed
//! server: its sockets belong to the test and close only when the test says
//! so. A child process can get `SIGKILL` (the kernel closes its sockets, as
//! after a crash), or `SIGSTOP` (it stops answering anything, ZooKeeper pings
//! included, while its sockets stay open — a hung or partitioned server).
//!
//! The child is the crate's own `callee` example, configured by a TOML file
//! written here; this helper builds it once per test binary with the same
//! `cargo` that runs the tests. [`ProviderProcess`] kills its child on drop.

// Every test binary uses a different part of this helper.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::zk_server::free_port;

/// How long [`ProviderProcess::start`] waits for the child to register.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How often to try a new port if the chosen one was taken meanwhile.
const PORT_ATTEMPTS: usize = 3;

/// The line the provider logs once it listens and has registered.
const READY_LINE: &str = "provider serving";

/// Binaries already built by this test binary, by cargo arguments and name.
static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);

/// Builds example `name` of this crate (once per test binary) and returns
/// the path of its executable.
///
/// Cargo gives integration tests `CARGO_BIN_EXE_<name>` only for `[[bin]]`
/// targets, not examples, so we ask the same cargo (`$CARGO` at compile
/// time) to build it; when it is up to date that takes a fraction of a
/// second. Cargo does not hold its build lock while tests run, so this
/// cannot deadlock.
pub fn example_binary(name: &str) -> io::Result<PathBuf> {
    cargo_binary(&["-p", "mprpc-examples", "--example", name], name)
}

/// Runs `cargo build <args>` (once per test binary and `args`) with the
/// cargo running the tests, in the same profile, and returns the path of the
/// executable called `name` it built: an example of this crate, or a `bin`
/// of another package of the workspace (`["-p", "step-12", "--bins"]`).
pub fn cargo_binary(args: &[&str], name: &str) -> io::Result<PathBuf> {
    let key = format!("{} {name}", args.join(" "));
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(path) = built.get_or_insert_with(HashMap::new).get(&key) {
        return Ok(path.clone());
    }
    let mut command = Command::new(env!("CARGO"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("build")
        .args(args)
        .arg("--message-format=json-render-diagnostics")
        .stderr(Stdio::inherit());
    if !cfg!(debug_assertions) {
        // The tests were built in release mode: build the child alike.
        command.arg("--release");
    }
    let output = command.output()?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "cargo build {} failed with {}",
            args.join(" "),
            output.status
        )));
    }
    // One JSON message per line; ours names the target and its executable.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let path = stdout
        .lines()
        .filter(|line| line.contains(&format!("\"name\":\"{name}\"")))
        .find_map(|line| {
            let start = line.find("\"executable\":\"")? + "\"executable\":\"".len();
            let end = line[start..].find('"')? + start;
            Some(PathBuf::from(&line[start..end]))
        })
        .ok_or_else(|| io::Error::other(format!("cargo did not name the {name} executable")))?;
    if let Some(map) = built.as_mut() {
        map.insert(key, path.clone());
    }
    Ok(path)
}

/// Sends `signal` ("KILL", "STOP", "CONT", ...) to process `pid` with the
/// system's `kill` command (the crate has no libc dependency to call it).
pub fn send_signal(pid: u32, signal: &str) -> io::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("kill -{signal} {pid}: {status}")))
    }
}

/// A provider (`callee` example: `UserServiceRpc`) running as a child
/// process on 127.0.0.1, registered in ZooKeeper. Killed on drop.
#[derive(Debug)]
pub struct ProviderProcess {
    /// The running child, until killed.
    child: Option<Child>,
    /// Config file, log directory and captured output; deleted on drop.
    dir: TempDir,
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
            let dir = tempfile::Builder::new().prefix("provider-").tempdir()?;
            let port = free_port()?;
            let mut provider = ProviderProcess {
                child: None,
                dir,
                addr: format!("127.0.0.1:{port}"),
            };
            provider.write_config(port, zookeeper, root, session_timeout)?;
            match provider.launch(&binary) {
                Ok(()) => return Ok(provider),
                Err(e) if provider.output().contains("Address already in use") => {
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
        self.child.as_ref().map(Child::id)
    }

    /// `kill -9`: the kernel closes its sockets, its ZooKeeper session
    /// lingers until it times out. Waits until the process is gone.
    pub fn kill(&mut self) -> io::Result<()> {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            child.wait()?;
        }
        Ok(())
    }

    /// `SIGSTOP`: the process freezes with its sockets open, answering
    /// neither calls nor ZooKeeper's pings.
    pub fn pause(&self) -> io::Result<()> {
        match self.pid() {
            Some(pid) => send_signal(pid, "STOP"),
            None => Err(io::Error::other("provider already killed")),
        }
    }

    /// `SIGCONT`: the process runs on where it stopped.
    pub fn resume(&self) -> io::Result<()> {
        match self.pid() {
            Some(pid) => send_signal(pid, "CONT"),
            None => Err(io::Error::other("provider already killed")),
        }
    }

    /// What the child printed (stdout and stderr) followed by its log files.
    pub fn output(&self) -> String {
        let mut out = fs::read_to_string(self.dir.path().join("output.txt")).unwrap_or_default();
        let mut logs: Vec<PathBuf> = fs::read_dir(self.dir.path().join("logs"))
            .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        logs.sort();
        for log in logs {
            out.push_str(&fs::read_to_string(&log).unwrap_or_default());
        }
        out
    }

    /// Writes the provider's `mprpc.toml`.
    fn write_config(
        &self,
        port: u16,
        zookeeper: &str,
        root: &str,
        session_timeout: Duration,
    ) -> io::Result<()> {
        let config = format!(
            "# Written by tests/support/provider_process.rs for one test.\n\
             rpcserverip = \"127.0.0.1\"\n\
             rpcserverport = {port}\n\
             zookeeperip = \"{zookeeper}\"\n\
             zk_session_timeout_ms = {session}\n\
             zk_root = \"{root}\"\n\
             log_dir = \"{logs}\"\n\
             log_level = \"info\"\n\
             [timeouts]\n\
             zk_connect_ms = 20000\n",
            session = session_timeout.as_millis(),
            logs = self.dir.path().join("logs").display(),
        );
        fs::write(self.config_path(), config)
    }

    /// The config file.
    fn config_path(&self) -> PathBuf {
        self.dir.path().join("mprpc.toml")
    }

    /// Spawns the child and waits until it logs that it serves (it logs
    /// that after registering), or exits, or [`READY_TIMEOUT`] passes.
    fn launch(&mut self, binary: &Path) -> io::Result<()> {
        let output = File::create(self.dir.path().join("output.txt"))?;
        let child = Command::new(binary)
            .arg("-i")
            .arg(self.config_path())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output)
            .spawn()?;
        self.child = Some(child);
        let started = Instant::now();
        loop {
            if self.output().contains(READY_LINE) {
                return Ok(());
            }
            let exited = match self.child.as_mut() {
                Some(child) => child.try_wait()?,
                None => None,
            };
            if let Some(status) = exited {
                self.child = None;
                return Err(io::Error::other(format!(
                    "provider exited with {status} before serving; its output:\n{}",
                    self.output()
                )));
            }
            if started.elapsed() > READY_TIMEOUT {
                let _ = self.kill();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "provider did not serve within {READY_TIMEOUT:?}; its output:\n{}",
                        self.output()
                    ),
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ProviderProcess {
    fn drop(&mut self) {
        // SIGKILL ends a stopped process too; no SIGCONT needed.
        let _ = self.kill();
        if thread::panicking() {
            eprintln!("---- provider {} ----\n{}", self.addr, self.output());
        }
    }
}
