//! The step's program (`cargo run -p step-12`) end to end: after step
//! 10's demo it uses a ZooKeeper that answers at the configured address, and without one and
//! without Java it says how to get one and exits with status 1.

use std::process::{Command, Output};
use testkit::{ZkServer, free_port};

/// This step's own program.
const PROGRAM: &str = env!(concat!("CARGO_BIN_EXE_", env!("CARGO_PKG_NAME")));

/// Runs the program in a temporary directory (its log goes there) with a
/// config naming ZooKeeper at 127.0.0.1:`zk_port`; `env` adjusts its
/// environment.
fn run(zk_port: u16, env: impl FnOnce(&mut Command)) -> Output {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("mprpc.toml");
    std::fs::write(
        &file,
        format!(
            "rpcserverip = \"127.0.0.1\"\nrpcserverport = 8000\n\
             zookeeperip = \"127.0.0.1\"\nzookeeperport = {zk_port}\n\
             zk_session_timeout_ms = 10000\n"
        ),
    )
    .expect("write the config file");
    let mut command = Command::new(PROGRAM);
    command.arg("-i").arg(&file).current_dir(dir.path());
    env(&mut command);
    command.output().expect("run the program")
}

#[test]
fn the_program_uses_the_configured_zookeeper_and_shows_the_ephemeral_node_go() {
    let server = ZkServer::start().unwrap();
    let output = run(server.port(), |_| {});
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "using the ZooKeeper that answers at {}",
            server.addr()
        )),
        "{stderr}"
    );
    // Steps 07 to 10 first, then ZkClient.
    let zk_part = stdout
        .split("== ZkClient::start")
        .nth(1)
        .unwrap_or_else(|| panic!("no ZkClient part in:\n{stdout}"));
    assert!(stdout.contains("Register 4099 zhang san/888888: success = true"));
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
    // Discovery: registered in the course's layout, found, gone.
    let after = zk_part.split("== ZkClient::close").nth(1).expect("close");
    let sections: Vec<&str> = after.split("\n== ").collect();
    assert_eq!(sections.len(), 5, "{after}");
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
    assert!(
        stderr.contains(&format!("no ZooKeeper answers at 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(stderr.contains("apt-get install -y zookeeper"), "{stderr}");
    assert!(stderr.contains("QuorumPeerMain"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("== ZkClient::start"), "{stdout}");
}
