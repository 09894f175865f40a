//! The step's program (`cargo run -p step-12`) end to end: it uses a
//! ZooKeeper that answers at the configured address for discovery, and
//! without one and without Java it says how to get one and exits with
//! status 1.

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
    // Discovery: registered in the course's layout, found, gone.
    let sections: Vec<&str> = stdout.split("\n== ").collect();
    assert_eq!(sections.len(), 5, "{stdout}");
    assert!(sections[1].contains("ls /UserServiceRpc -> [Login, Register]"));
    assert!(sections[1].contains("get /UserServiceRpc/Login -> \"127.0.0.1:"));
    assert!(sections[2].contains("GetFriendsList 1000: [gao yang, liu hong, wang shuo]"));
    assert!(
        sections[3].contains("ls /UserServiceRpc -> []"),
        "{}",
        sections[3]
    );
    let gone = "Login: failed = true: UserServiceRpc.Login: no provider for UserServiceRpc/Login";
    assert!(sections[3].contains(gone), "{}", sections[3]);
    let no_zk = "cannot look the provider up in ZooKeeper: no ZooKeeper session at";
    assert!(sections[4].contains(no_zk), "{}", sections[4]);
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
    assert!(!stdout.contains("== a provider starts"), "{stdout}");
}
