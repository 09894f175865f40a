//! ZooKeeper unreachable when a provider starts: the provider listens only
//! once it can register. Until then its port refuses connections at once
//! (a caller tries another provider), instead of queueing them in a listen
//! backlog that nobody accepts. Real ZooKeeper (Debian package `zookeeper`).

mod support;

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use mprpc::{MprpcChannel, MprpcConfig, RpcProvider};
use mprpc_examples::fixbug::{LoginRequest, UserServiceRpcServer, UserServiceRpcStub};
use support::zk_server::{ZkServer, free_port};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn config(zk_port: u16, port: u16, zk_connect_ms: u64) -> MprpcConfig {
    let mut c = MprpcConfig::default();
    c.rpcserverport = port;
    c.zookeeperip = Some("127.0.0.1".into());
    c.zookeeperport = Some(zk_port);
    c.zk_session_timeout_ms = 4000;
    c.zk_root = "/late".into();
    c.timeouts.zk_connect_ms = zk_connect_ms;
    c
}

fn provider(config: MprpcConfig) -> RpcProvider {
    let mut p = RpcProvider::new(config);
    p.notify_service(UserServiceRpcServer::new(
        mprpc_examples::UserService::default(),
    ));
    p
}

/// Connecting to `port` is refused (nothing listens), not accepted into a
/// backlog or left hanging.
async fn assert_refused(port: u16, when: &str) {
    let connect = tokio::net::TcpStream::connect(("127.0.0.1", port));
    match tokio::time::timeout(Duration::from_secs(1), connect).await {
        Ok(Err(e)) if e.kind() == ErrorKind::ConnectionRefused => {}
        Ok(Err(e)) => panic!("{when}: connecting failed, but not refused: {e}"),
        Ok(Ok(_)) => panic!("{when}: the port accepted a connection nobody serves"),
        Err(_) => panic!("{when}: connecting hung"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_zookeeper_leaves_the_port_closed_then_fails_clearly() -> TestResult {
    let (zk_port, port) = (free_port()?, free_port()?);
    let started = Instant::now();
    let start = tokio::spawn(provider(config(zk_port, port, 3000)).start());
    for at in [300, 1500, 2500] {
        tokio::time::sleep_until((started + Duration::from_millis(at)).into()).await;
        assert_refused(port, &format!("{at} ms into the ZooKeeper retries")).await;
    }
    let err = match start.await? {
        Ok(_) => return Err("started without ZooKeeper".into()),
        Err(e) => e.to_string(),
    };
    println!("gave up after {:?}: {err}", started.elapsed());
    assert!(err.contains("unreachable"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_refused(port, "after giving up").await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_waiting_for_zookeeper_listens_once_registered() -> TestResult {
    let mut server = ZkServer::start()?;
    server.stop()?;
    let port = free_port()?;
    let config = config(server.port(), port, 30_000);
    let start = tokio::spawn(provider(config.clone()).start());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_refused(port, "while ZooKeeper is down").await;
    server.restart()?;
    let running = tokio::time::timeout(Duration::from_secs(20), start).await???;
    let channel = MprpcChannel::from_config(&config).await?;
    let request = LoginRequest {
        name: b"zhang san".to_vec(),
        pwd: b"123456".to_vec(),
    };
    let reply = UserServiceRpcStub::new(channel).login(&request).await;
    assert!(reply.is_ok(), "{reply:?}");
    running.shutdown().await?;
    Ok(())
}
