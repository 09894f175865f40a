//! Programs under test as real child processes: built by cargo, started in
//! a temporary directory with their output captured, waited for until they
//! say they are ready, and killed (`SIGKILL`), paused (`SIGSTOP`) or resumed
//! (`SIGCONT`) like a crashed, hung or recovered server.
//!
//! A server in the test's own process cannot be killed like a crashed one:
//! its sockets belong to the test. A child process can: the kernel closes its
//! sockets, and its ZooKeeper session lingers until it times out.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// What [`cargo_build`] builds.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Target<'a> {
    /// A `[[bin]]` (or `src/bin/*.rs`) target. Integration tests of the same
    /// package have it as `env!("CARGO_BIN_EXE_<name>")` already.
    Bin(&'a str),
    /// An example (`examples/*.rs`): cargo gives tests no path for these.
    Example(&'a str),
}

/// Executables already built by this test binary, by package and target.
static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);

/// Builds `target` of `package` with the `cargo` that runs the tests
/// (`$CARGO`, else `cargo` on `PATH`), once per test binary, and returns the
/// path of its executable. When it is up to date that takes a fraction of a
/// second; cargo does not hold its build lock while tests run, so this
/// cannot deadlock. Built in release mode when the tests are.
pub fn cargo_build(package: &str, target: Target<'_>) -> io::Result<PathBuf> {
    let (kind, name) = match target {
        Target::Bin(name) => ("--bin", name),
        Target::Example(name) => ("--example", name),
    };
    let key = format!("{package} {kind} {name}");
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(path) = built.get_or_insert_with(HashMap::new).get(&key) {
        return Ok(path.clone());
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "-p", package, kind, name])
        .arg("--message-format=json-render-diagnostics")
        .stderr(Stdio::inherit());
    if !cfg!(debug_assertions) {
        command.arg("--release");
    }
    let output = command.output()?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "cargo build -p {package} {kind} {name} failed with {}",
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
/// system's `kill` command (no libc dependency needed).
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

/// A program running as a child process in a temporary directory of its
/// own, its stdout and stderr going to `output.txt` there. Killed on drop;
/// a failing test prints what it wrote.
#[derive(Debug)]
pub struct ChildProcess {
    /// The running child, until killed.
    child: Option<Child>,
    /// The working directory: config files, logs, captured output.
    dir: TempDir,
}

impl ChildProcess {
    /// A fresh temporary directory for a child, to write its config into
    /// before [`ChildProcess::spawn`].
    pub fn workdir() -> io::Result<TempDir> {
        tempfile::Builder::new().prefix("child-").tempdir()
    }

    /// Spawns `program` with `args` in `dir` (see [`ChildProcess::workdir`]).
    /// Relative paths in `args` are relative to `dir`.
    pub fn spawn(
        program: &Path,
        args: &[&str],
        dir: TempDir,
        env: impl FnOnce(&mut Command),
    ) -> io::Result<ChildProcess> {
        let output = File::create(dir.path().join("output.txt"))?;
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output);
        env(&mut command);
        let child = command.spawn()?;
        Ok(ChildProcess {
            child: Some(child),
            dir,
        })
    }

    /// Waits until [`output`](Self::output) contains `text`. Fails (an
    /// error with the child's output) when the child exits first or
    /// `timeout` passes; on a timeout the child is killed.
    pub fn wait_for(&mut self, text: &str, timeout: Duration) -> io::Result<()> {
        let started = Instant::now();
        loop {
            if self.output().contains(text) {
                return Ok(());
            }
            if let Some(status) = self.try_wait()? {
                return Err(io::Error::other(format!(
                    "the child exited with {status} before writing {text:?}; its output:\n{}",
                    self.output()
                )));
            }
            if started.elapsed() > timeout {
                let _ = self.kill();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the child did not write {text:?} within {timeout:?}; its output:\n{}",
                        self.output()
                    ),
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// `Some(status)` once the child has exited (and is reaped).
    pub fn try_wait(&mut self) -> io::Result<Option<std::process::ExitStatus>> {
        match self.child.as_mut() {
            Some(child) => {
                let status = child.try_wait()?;
                if status.is_some() {
                    self.child = None;
                }
                Ok(status)
            }
            None => Ok(None),
        }
    }

    /// The child's process id, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The child's working directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `kill -9`, then waits until the process is gone. Twice is harmless.
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
            None => Err(io::Error::other("the child is not running")),
        }
    }

    /// `SIGCONT`: the process runs on where it stopped.
    pub fn resume(&self) -> io::Result<()> {
        match self.pid() {
            Some(pid) => send_signal(pid, "CONT"),
            None => Err(io::Error::other("the child is not running")),
        }
    }

    /// What the child printed (stdout and stderr), followed by the files
    /// in its `logs/` folder, oldest name first.
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
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        // SIGKILL ends a stopped process too; no SIGCONT needed.
        let _ = self.kill();
        if thread::panicking() {
            eprintln!(
                "---- child process in {} ----\n{}",
                self.dir.path().display(),
                self.output()
            );
        }
    }
}
