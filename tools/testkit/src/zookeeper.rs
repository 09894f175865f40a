//! A real, throw-away ZooKeeper server, for tests and demos.
//!
//! Each [`ZkServer`] runs its own standalone ZooKeeper (the Debian package
//! `zookeeper`, a Java program) on a free loopback port with a data directory
//! in a temporary folder, and kills it again when dropped. Tests therefore
//! talk to the real thing, never to a mock, and never to a ZooKeeper someone
//! else runs on the machine; the demos of steps 11 and 12 start one when none
//! answers at the configured address.
//!
//! When Java or ZooKeeper is missing, [`ZkServer::start`] returns an error
//! that names the package to install, so tests fail loudly instead of
//! silently skipping what they are meant to prove.
//!
//! A real deployment runs ZooKeeper as a service of its own, as an ensemble
//! of three or five servers on separate machines, with `forceSync` on.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, ToSocketAddrs};

use crate::net::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The ZooKeeper server jar installed by the Debian package `zookeeper`
/// (through its dependency `libzookeeper-java`). Its manifest lists the other
/// jars it needs (netty, jute, slf4j-api, ...), all under `/usr/share/java`.
const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";

/// The logging backend we put on the class path (package `libslf4j-java`, a
/// dependency of `zookeeper`).
///
/// `/usr/share/java/*` holds several slf4j backends (nop, simple, log4j12,
/// jdk14, ...); with all of them on the class path slf4j picks one at random
/// and complains. Naming exactly one makes the output predictable: the
/// simple backend writes plain lines to stderr, which goes to a log file.
const SLF4J_SIMPLE_JAR: &str = "/usr/share/java/slf4j-simple.jar";

/// The class that runs a ZooKeeper server from a `zoo.cfg`; with no quorum in
/// the file it runs a single standalone server.
const MAIN_CLASS: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";

/// How long [`ZkServer::start`] waits for the server to serve requests.
///
/// Here a JVM ZooKeeper is ready in well under a second; the generous limit
/// covers a 2-core machine busy compiling and running other tests.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How often to start over on a new port if the one we picked was taken
/// between choosing it and the server binding it.
const PORT_ATTEMPTS: usize = 3;

/// A running standalone ZooKeeper, stopped and cleaned up on drop.
#[derive(Debug)]
pub struct ZkServer {
    /// The JVM, while it runs.
    child: Option<Child>,
    /// Holds `zoo.cfg`, the data directory and the server log; deleted on drop.
    dir: TempDir,
    /// The loopback port the server listens on.
    port: u16,
}

impl ZkServer {
    /// Starts a fresh ZooKeeper on a free loopback port and waits until it
    /// serves requests.
    pub fn start() -> io::Result<ZkServer> {
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let dir = tempfile::Builder::new().prefix("zookeeper-").tempdir()?;
            let port = free_port()?;
            let mut server = ZkServer {
                child: None,
                dir,
                port,
            };
            server.write_config()?;
            match server.launch() {
                Ok(()) => return Ok(server),
                // Someone took the port first: try another one.
                Err(err) if server.log().contains("Address already in use") => {
                    last_error = Some(err);
                }
                Err(err) => return Err(err),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("ZooKeeper did not start")))
    }

    /// The address to give a client: `"127.0.0.1:PORT"`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (like a crash: no goodbye to clients) and waits for the
    /// process to exit. Doing it twice is harmless.
    pub fn stop(&mut self) -> io::Result<()> {
        if let Some(mut child) = self.child.take() {
            // The JVM may have exited on its own; then kill fails, wait does not.
            let _ = child.kill();
            child.wait()?;
        }
        Ok(())
    }

    /// Starts the server again on the same port with the same data, as after a
    /// crash and restart. Sessions and their ephemeral znodes survive a
    /// restart, if clients reconnect within their session timeout.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop()?;
        self.launch()
    }

    /// Everything the server has logged so far (empty if there is no log yet).
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The file the server's output goes to.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("zookeeper.log")
    }

    /// Writes `zoo.cfg` for a small, fast, private test server.
    fn write_config(&self) -> io::Result<()> {
        let data_dir = self.dir.path().join("data");
        fs::create_dir_all(&data_dir)?;
        let config = format!(
            "# Written by testkit (tools/testkit/src/zookeeper.rs) for one throw-away server.\n\
             dataDir={data}\n\
             clientPort={port}\n\
             # Loopback only: nothing outside this machine can reach it.\n\
             clientPortAddress=127.0.0.1\n\
             # A short tick lets tests use short session timeouts; the\n\
             # explicit bounds allow 1 s up to the course's 30 s and beyond.\n\
             tickTime=500\n\
             minSessionTimeout=1000\n\
             maxSessionTimeout=60000\n\
             # The admin HTTP server would want port 8080; tests do not need it.\n\
             admin.enableServer=false\n\
             # The four-letter words (srvr, ruok, ...) tell us when it is ready.\n\
             4lw.commands.whitelist=*\n\
             # Throw-away data: skip fsync and the 64 MB log preallocation.\n\
             forceSync=no\n\
             preAllocSize=1024\n",
            data = data_dir.display(),
            port = self.port,
        );
        fs::write(self.dir.path().join("zoo.cfg"), config)
    }

    /// Starts the JVM and waits until it serves requests.
    fn launch(&mut self) -> io::Result<()> {
        let mut command = zookeeper_command(&self.dir.path().join("zoo.cfg"))?;
        // Append, so a restart keeps the earlier run's lines for diagnosis.
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        self.child = Some(command.spawn()?);
        let ready = self.wait_until_ready();
        if ready.is_err() {
            // Leave no JVM behind on the error path either.
            let _ = self.stop();
        }
        ready
    }

    /// Polls the `srvr` four-letter word until the server reports it is
    /// serving, the JVM exits, or [`READY_TIMEOUT`] passes.
    ///
    /// `ruok` is not enough: it answers `imok` as soon as the port is open,
    /// while `srvr` still says "not currently serving requests".
    fn wait_until_ready(&mut self) -> io::Result<()> {
        let started = Instant::now();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        loop {
            let exited = match self.child.as_mut() {
                Some(child) => child.try_wait()?,
                None => None,
            };
            if let Some(status) = exited {
                return Err(io::Error::other(format!(
                    "ZooKeeper exited with {status} before serving on {addr}; its log:\n{}",
                    self.log()
                )));
            }
            if four_letter_word(addr, "srvr").is_ok_and(|reply| reply.contains("Mode: standalone"))
            {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "ZooKeeper did not serve on {addr} within {} s; its log:\n{}",
                        READY_TIMEOUT.as_secs(),
                        self.log()
                    ),
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        let _ = self.stop();
        // A failing test shows the server's side of the story; a passing one
        // stays quiet (cargo test only prints captured output of failures).
        if thread::panicking() {
            eprintln!(
                "---- ZooKeeper log ({}) ----\n{}",
                self.log_path().display(),
                self.log()
            );
        }
    }
}

/// Builds the `java ... QuorumPeerMain zoo.cfg` command, or explains which
/// package is missing (an error, never a skip: a test that needs ZooKeeper
/// fails when it cannot have one).
pub fn zookeeper_command(config: &Path) -> io::Result<Command> {
    let java = find_java()?;
    for jar in [ZOOKEEPER_JAR, SLF4J_SIMPLE_JAR] {
        if !Path::new(jar).is_file() {
            return Err(missing(&format!("{jar} not found")));
        }
    }
    let mut command = Command::new(java);
    command
        // A small heap and one GC thread: a test server holds a few znodes,
        // and the machine has only two cores.
        .args(["-Xms16m", "-Xmx128m", "-XX:+UseSerialGC"])
        // The fast tier of the JIT only: the server starts sooner, and tests
        // never run long enough to profit from the slow tier.
        .arg("-XX:TieredStopAtLevel=1")
        .arg("-Dorg.slf4j.simpleLogger.showDateTime=true")
        .arg("-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS")
        .arg("-cp")
        .arg(format!("{ZOOKEEPER_JAR}:{SLF4J_SIMPLE_JAR}"))
        .arg(MAIN_CLASS)
        .arg(config);
    Ok(command)
}

/// Finds the `java` binary: `$JAVA_HOME/bin/java`, else the first on `PATH`.
fn find_java() -> io::Result<PathBuf> {
    let from_home = std::env::var_os("JAVA_HOME").map(|home| PathBuf::from(home).join("bin/java"));
    let from_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("java"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    from_home
        .into_iter()
        .chain(from_path)
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| missing("no `java` in $JAVA_HOME/bin or on PATH"))
}

/// The error for a missing prerequisite, with the fix in it.
fn missing(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!(
            "cannot run a test ZooKeeper: {what}. Install the Debian package \
             `zookeeper` (it brings Java too): apt-get install -y zookeeper"
        ),
    )
}

/// How to run a ZooKeeper by hand on the default port 2181, with the
/// configuration the Debian package installs (data in `/tmp/zookeeper`).
pub const START_BY_HAND: &str = "java -cp '/usr/share/java/zookeeper.jar:/usr/share/java/*' \
     org.apache.zookeeper.server.quorum.QuorumPeerMain /etc/zookeeper/conf/zoo.cfg";

// ANCHOR: find_or_start
/// The ZooKeeper a demo should use: the configured one (`"host:port"`) if it
/// answers, else a throw-away one started here (returned, so the caller
/// decides when it stops). Says on stderr which; explains how to get a
/// ZooKeeper when neither works.
pub fn find_or_start(configured: &str) -> Result<(String, Option<ZkServer>), String> {
    if answers(configured) {
        eprintln!("using the ZooKeeper that answers at {configured} (from the config)");
        return Ok((configured.to_string(), None));
    }
    eprintln!("no ZooKeeper answers at {configured}; starting a throw-away one");
    match ZkServer::start() {
        Ok(server) => {
            eprintln!(
                "started ZooKeeper at {} (its files are in a temporary directory, deleted at exit)",
                server.addr()
            );
            Ok((server.addr(), Some(server)))
        }
        Err(error) => Err(format!(
            "{error}\nOr run a ZooKeeper yourself on the default port 2181 (the one in \
             mprpc.toml):\n    {START_BY_HAND}"
        )),
    }
}
// ANCHOR_END: find_or_start

/// Whether a ZooKeeper answers at `addr` (`"host:port"`): it replies to the
/// `srvr` four-letter word. A server that does not allow `srvr` still
/// replies, with a sentence saying so, which is as good an answer.
pub fn answers(addr: &str) -> bool {
    let Ok(addrs) = addr.to_socket_addrs() else {
        return false;
    };
    addrs.into_iter().any(|addr| {
        four_letter_word(addr, "srvr")
            .is_ok_and(|reply| reply.contains("Zookeeper version") || reply.contains("srvr"))
    })
}

/// Sends a four-letter word (`srvr`, `ruok`, `stat`, ...) and returns the
/// reply, which the server ends by closing the connection.
pub fn four_letter_word(addr: SocketAddr, word: &str) -> io::Result<String> {
    let timeout = Duration::from_secs(1);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(word.as_bytes())?;
    let mut reply = String::new();
    // Replies are a few hundred bytes; cap it anyway.
    stream.take(64 * 1024).read_to_string(&mut reply)?;
    Ok(reply)
}

/// Runs a step's program (steps 11 and 12: `env!("CARGO_BIN_EXE_step-NN")`)
/// in a temporary directory, so its log goes there, with a config naming
/// ZooKeeper at 127.0.0.1:`zk_port`; `env` adjusts the command first (for
/// example to take `java` off the `PATH`).
///
/// # Panics
///
/// If the temporary directory, the config file or the process cannot be
/// made: the test cannot run at all then.
pub fn run_program(program: &str, zk_port: u16, env: impl FnOnce(&mut Command)) -> Output {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("mprpc.toml");
    let config = format!(
        "rpcserverip = \"127.0.0.1\"\nrpcserverport = 8000\n\
         zookeeperip = \"127.0.0.1\"\nzookeeperport = {zk_port}\n\
         zk_session_timeout_ms = 10000\n"
    );
    fs::write(&file, config).expect("write the config file");
    let mut command = Command::new(program);
    command.arg("-i").arg(&file).current_dir(dir.path());
    env(&mut command);
    command.output().expect("run the program")
}

/// Waits (at most 10 s) until the znode `path` exists in the ZooKeeper at
/// `addr` (`"host:port"`), with a session of its own (closed at the end).
///
/// # Panics
///
/// If no session can be opened, ZooKeeper fails the check, or 10 s pass.
pub fn wait_for_znode(addr: &str, path: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let connecting = zookeeper_client::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(addr);
        let zk = tokio::time::timeout(Duration::from_secs(10), connecting)
            .await
            .expect("a ZooKeeper session within 10 s")
            .expect("a ZooKeeper session");
        let deadline = Instant::now() + Duration::from_secs(10);
        while zk.check_stat(path).await.expect("exists").is_none() {
            assert!(Instant::now() < deadline, "no znode {path} after 10 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_starts_serves_restarts_and_stops() {
        let mut server = ZkServer::start().expect("a test ZooKeeper (apt-get install zookeeper)");
        assert!(answers(&server.addr()), "{}", server.log());
        server.restart().expect("restart");
        assert!(answers(&server.addr()));
        server.stop().expect("stop");
        assert!(!answers(&server.addr()));
    }

    #[test]
    fn nothing_listening_does_not_answer() {
        let port = free_port().expect("a free port");
        assert!(!answers(&format!("127.0.0.1:{port}")));
    }
}
