//! The step's program (`cargo run -p step-11`) end to end: it uses a
//! ZooKeeper that answers at the configured address, and without one and
//! without Java it says how to get one and exits with status 1.

use std::process::{Command, Output};
use testkit::{ZkServer, free_port, zookeeper};

/// This step's own program.
const PROGRAM: &str = env!(concat!("CARGO_BIN_EXE_", env!("CARGO_PKG_NAME")));

/// Runs the program with a config naming ZooKeeper at 127.0.0.1:`zk_port`.
fn run(zk_port: u16, env: impl FnOnce(&mut Command)) -> Output {
    zookeeper::run_program(PROGRAM, zk_port, env)
}

#[test]
fn the_program_uses_the_configured_zookeeper_and_shows_the_ephemeral_node_go() {
    let server = ZkServer::start().unwrap();
    let output = run(server.port(), |_| {});
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let using = format!("using the ZooKeeper that answers at {}", server.addr());
    assert!(stderr.contains(&using), "{stderr}");
    let zk_part = stdout
        .split("== ZkClient::start")
        .nth(1)
        .unwrap_or_else(|| panic!("no ZkClient part in:\n{stdout}"));
    for line in [
        "timeout 10000 ms",
        "create /demo, create -e /demo/node (twice): fine",
        "get /demo/node -> \"127.0.0.1:8000\"",
        "stat /demo/node -> ephemeralOwner is this session: true",
        // After the close, a second session: ephemeral gone, persistent stays.
        "== ZkClient::close, then a second session looks\n\
         get /demo/node -> error: znode /demo/node does not exist\n\
         get /demo -> \"made by step-11\"",
    ] {
        assert!(zk_part.contains(line), "{line:?} missing from:\n{zk_part}");
    }
}

#[test]
fn without_zookeeper_and_java_the_program_says_what_to_install() {
    // Nothing listens on the configured port, and no `java` can be found:
    // the program cannot start a ZooKeeper either.
    let port = free_port().unwrap();
    let output = run(port, |command| {
        command.env_remove("JAVA_HOME").env("PATH", "");
    });
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let nobody = format!("no ZooKeeper answers at 127.0.0.1:{port}");
    assert!(stderr.contains(&nobody), "{stderr}");
    assert!(stderr.contains("apt-get install -y zookeeper"), "{stderr}");
    assert!(stderr.contains("QuorumPeerMain"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("== ZkClient::start"), "{stdout}");
}
