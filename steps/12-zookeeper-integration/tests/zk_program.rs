//! The step's program (`cargo run -p step-12`) end to end: it uses a
//! ZooKeeper that answers at the configured address, and without one and
//! without Java it says how to get one and exits with status 1.

use std::process::{Command, Output};
use step::zk_server::{ZkServer, free_port};

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
fn the_program_registers_calls_and_shows_the_provider_go() {
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
    let sections: Vec<&str> = stdout.split("\n== ").collect();
    assert_eq!(sections.len(), 4, "{stdout}");
    // Registered: the course's layout.
    assert!(sections[0].contains("ls /UserServiceRpc -> [Login, Register]"));
    assert!(sections[0].contains("  get /UserServiceRpc/Login -> \"127.0.0.1:"));
    // The calls went through.
    assert!(sections[1].contains("Register 4099 zhang san/888888: success = true"));
    assert!(sections[1].contains("GetFriendsList 1000: [gao yang, liu hong, wang shuo]"));
    // The provider stopped: nodes gone, the caller told why.
    assert!(
        sections[2].contains("ls /UserServiceRpc -> []"),
        "{}",
        sections[2]
    );
    assert!(
        sections[2].contains(
            "Login zhang san/123456: failed: UserServiceRpc.Login: no provider for \
             UserServiceRpc/Login"
        ),
        "{}",
        sections[2]
    );
    // No ZooKeeper at all.
    assert!(
        sections[3].contains("cannot look the provider up in ZooKeeper: no ZooKeeper session at"),
        "{}",
        sections[3]
    );
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
    assert!(output.stdout.is_empty());
}
