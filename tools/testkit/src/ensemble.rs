//! A real, throw-away ZooKeeper *ensemble* for tests: several servers on
//! loopback that elect a leader and replicate every write.
//!
//! [`crate::ZkServer`] runs one standalone server; this helper
//! reuses its pieces (the `java ... QuorumPeerMain` command, free ports, the
//! four-letter words) and adds what a quorum needs: one data directory and
//! `myid` file per server, a `server.N=127.0.0.1:peer:election` line per
//! member in every `zoo.cfg`, and a way to ask who leads (`srvr` answers
//! `Mode: leader` or `Mode: follower`).
//!
//! Everything binds to 127.0.0.1 only, and every JVM is killed when the
//! [`ZkEnsemble`] is dropped, also when a test panics.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::net::free_port;
use crate::zookeeper::{four_letter_word, zookeeper_command};

/// How long [`ZkEnsemble::start`] waits for a quorum with a leader. Three
/// JVMs starting at once on a busy 2-core machine are slow; on an idle one
/// the ensemble serves within a few seconds.
const READY_TIMEOUT: Duration = Duration::from_secs(40);

/// How often to start over on new ports if one was taken between choosing
/// and binding it.
const PORT_ATTEMPTS: usize = 3;

/// One member of the ensemble.
#[derive(Debug)]
struct Member {
    /// The server id (`myid`, the N of `server.N`), from 1.
    id: usize,
    /// Port for clients.
    client_port: u16,
    /// Port followers use to talk to the leader.
    peer_port: u16,
    /// Port for leader election.
    election_port: u16,
    /// The JVM, while it runs.
    child: Option<Child>,
}

/// A running ensemble of ZooKeeper servers, all killed on drop.
#[derive(Debug)]
pub struct ZkEnsemble {
    /// Holds one directory per member (config, data, log); deleted on drop.
    dir: TempDir,
    /// The servers, index `i` has id `i + 1`.
    members: Vec<Member>,
}

/// What `srvr` says a server is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// It leads the quorum: every write goes through it.
    Leader,
    /// It follows the leader and serves reads and sessions.
    Follower,
    /// It runs but is not serving (electing a leader, or no quorum).
    NotServing,
    /// It does not answer at all (killed, or not started yet).
    Down,
}

impl ZkEnsemble {
    /// Starts `size` servers (3 or 5 make sense: a majority must survive)
    /// and waits until they have elected a leader and all serve.
    pub fn start(size: usize) -> io::Result<ZkEnsemble> {
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let mut ensemble = ZkEnsemble::prepare(size)?;
            match ensemble.launch_all() {
                Ok(()) => return Ok(ensemble),
                Err(err)
                    if (0..size).any(|i| ensemble.log(i).contains("Address already in use")) =>
                {
                    last_error = Some(err);
                }
                Err(err) => return Err(err),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("ZooKeeper ensemble did not start")))
    }

    /// Chooses ports and writes every member's `zoo.cfg` and `myid`.
    fn prepare(size: usize) -> io::Result<ZkEnsemble> {
        let dir = tempfile::Builder::new().prefix("zk-ensemble-").tempdir()?;
        let mut members = Vec::with_capacity(size);
        for id in 1..=size {
            members.push(Member {
                id,
                client_port: free_port()?,
                peer_port: free_port()?,
                election_port: free_port()?,
                child: None,
            });
        }
        let ensemble = ZkEnsemble { dir, members };
        for member in &ensemble.members {
            ensemble.write_config(member)?;
        }
        Ok(ensemble)
    }

    /// The connect string for clients: every member, comma-separated.
    pub fn connect_string(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Number of members (running or not).
    pub fn size(&self) -> usize {
        self.members.len()
    }

    /// The client port of member `i`.
    pub fn client_port(&self, i: usize) -> u16 {
        self.members[i].client_port
    }

    /// What member `i` says it is doing right now.
    pub fn mode(&self, i: usize) -> Mode {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.members[i].client_port));
        match four_letter_word(addr, "srvr") {
            Err(_) => Mode::Down,
            Ok(reply) if reply.contains("Mode: leader") => Mode::Leader,
            Ok(reply) if reply.contains("Mode: follower") => Mode::Follower,
            Ok(_) => Mode::NotServing,
        }
    }

    /// The index of the current leader, if some member says it leads.
    pub fn leader(&self) -> Option<usize> {
        (0..self.members.len()).find(|&i| self.mode(i) == Mode::Leader)
    }

    /// Waits until every *running* member serves and one of them leads;
    /// returns the leader's index.
    pub fn wait_for_quorum(&self, timeout: Duration) -> io::Result<usize> {
        let started = Instant::now();
        loop {
            let modes: Vec<Mode> = (0..self.members.len())
                .filter(|&i| self.members[i].child.is_some())
                .map(|i| self.mode(i))
                .collect();
            let serving = modes
                .iter()
                .all(|m| matches!(m, Mode::Leader | Mode::Follower));
            if let Some(leader) = self.leader().filter(|_| serving) {
                return Ok(leader);
            }
            if started.elapsed() > timeout {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no ZooKeeper quorum within {timeout:?} (modes of running members: {modes:?}); logs:\n{}",
                        self.all_logs()
                    ),
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills member `i` like a crash (SIGKILL, no goodbye) and reaps it.
    pub fn kill(&mut self, i: usize) -> io::Result<()> {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            child.wait()?;
        }
        Ok(())
    }

    /// Starts member `i` again with its data (it rejoins as a follower).
    pub fn restart(&mut self, i: usize) -> io::Result<()> {
        self.kill(i)?;
        self.launch(i)
    }

    /// Everything member `i` has logged so far.
    pub fn log(&self, i: usize) -> String {
        fs::read_to_string(self.log_path(i)).unwrap_or_default()
    }

    /// All members' logs, labelled, for failure messages.
    pub fn all_logs(&self) -> String {
        let mut out = String::new();
        for i in 0..self.members.len() {
            let _ = writeln!(out, "---- ZooKeeper {} ----\n{}", i + 1, self.log(i));
        }
        out
    }

    /// The directory of member `i`.
    fn member_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("zk{}", i + 1))
    }

    /// The log file of member `i`.
    fn log_path(&self, i: usize) -> PathBuf {
        self.member_dir(i).join("zookeeper.log")
    }

    /// Writes `zoo.cfg` and `data/myid` of one member.
    fn write_config(&self, member: &Member) -> io::Result<()> {
        let dir = self.member_dir(member.id - 1);
        let data = dir.join("data");
        fs::create_dir_all(&data)?;
        // The id ties this server to its `server.N` line.
        fs::write(data.join("myid"), format!("{}\n", member.id))?;
        let mut config = format!(
            "# Written by testkit (tools/testkit/src/ensemble.rs) for one test.\n\
             dataDir={data}\n\
             clientPort={client}\n\
             clientPortAddress=127.0.0.1\n\
             # tickTime is ZooKeeper's clock: followers must connect to and\n\
             # sync with a leader within initLimit / syncLimit ticks.\n\
             tickTime=500\n\
             initLimit=20\n\
             syncLimit=5\n\
             # Clients may ask for 1 s (fault tests) up to 60 s sessions.\n\
             minSessionTimeout=1000\n\
             maxSessionTimeout=60000\n\
             admin.enableServer=false\n\
             4lw.commands.whitelist=*\n\
             forceSync=no\n\
             preAllocSize=1024\n",
            data = data.display(),
            client = member.client_port,
        );
        for m in &self.members {
            // peer port: followers <-> leader; election port: voting.
            let _ = writeln!(
                config,
                "server.{}=127.0.0.1:{}:{}",
                m.id, m.peer_port, m.election_port
            );
        }
        fs::write(dir.join("zoo.cfg"), config)
    }

    /// Starts every member, then waits for a quorum.
    fn launch_all(&mut self) -> io::Result<()> {
        for i in 0..self.members.len() {
            if let Err(e) = self.launch(i) {
                self.kill_all();
                return Err(e);
            }
        }
        match self.wait_for_quorum(READY_TIMEOUT) {
            Ok(_) => Ok(()),
            Err(e) => {
                self.kill_all();
                Err(e)
            }
        }
    }

    /// Starts member `i`'s JVM (without waiting: one server alone cannot
    /// serve, it needs a majority).
    fn launch(&mut self, i: usize) -> io::Result<()> {
        let mut command = zookeeper_command(&self.member_dir(i).join("zoo.cfg"))?;
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path(i))?;
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        self.members[i].child = Some(command.spawn()?);
        Ok(())
    }

    /// Kills every member still running.
    fn kill_all(&mut self) {
        for i in 0..self.members.len() {
            let _ = self.kill(i);
        }
    }
}

impl Drop for ZkEnsemble {
    fn drop(&mut self) {
        self.kill_all();
        if thread::panicking() {
            eprintln!("{}", self.all_logs());
        }
    }
}
