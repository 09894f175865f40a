//! `ZkClient` against a real ZooKeeper: every test starts its own server
//! (`testkit::ZkServer`). Without Java and the Debian package `zookeeper`
//! they fail, naming the package: they never skip.

use std::error::Error;
use std::time::{Duration, Instant};

use step::zk_client::CreateMode::{Ephemeral, Persistent};
use step::zk_client::{ZkClient, ZkError};
use testkit::{ZkServer, free_port};

/// Tests return errors instead of unwrapping, so a failure says what broke.
type TestResult = Result<(), Box<dyn Error>>;

/// A session timeout short enough that "ZooKeeper is gone" tests finish fast.
const SHORT_SESSION: Duration = Duration::from_secs(2);

/// The course's session timeout (`zookeeper_init(..., 30000, ...)`).
const COURSE_SESSION: Duration = Duration::from_secs(30);

/// The error `result` had to be; `Err(what)` (what success would mean) if it is not one.
fn failure<T>(result: Result<T, ZkError>, what: &'static str) -> Result<ZkError, &'static str> {
    result.err().ok_or(what)
}

#[tokio::test(flavor = "multi_thread")]
async fn persistent_and_ephemeral_nodes_hold_their_data() -> TestResult {
    let server = ZkServer::start()?;
    let zk = ZkClient::start(&server.addr(), COURSE_SESSION).await?;
    assert_eq!(zk.session_timeout(), COURSE_SESSION);

    zk.create("/UserServiceRpc", b"", Persistent).await?;
    zk.create("/UserServiceRpc/Login", b"127.0.0.1:8000", Ephemeral)
        .await?;

    let login = zk.get_data("/UserServiceRpc/Login").await?;
    assert_eq!(login, b"127.0.0.1:8000");
    assert_eq!(zk.get_data("/UserServiceRpc").await?, b"");
    assert_eq!(zk.get_children("/UserServiceRpc").await?, vec!["Login"]);

    let persistent = zk.exists("/UserServiceRpc").await?.ok_or("no parent")?;
    assert_eq!(persistent.ephemeral_owner, 0);
    let ephemeral = zk.exists("/UserServiceRpc/Login").await?.ok_or("no node")?;
    assert_ne!(ephemeral.ephemeral_owner, 0);
    assert_eq!(ephemeral.ephemeral_owner, zk.session_id());
    zk.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn creating_an_existing_node_is_fine_and_keeps_its_data() -> TestResult {
    let server = ZkServer::start()?;
    let zk = ZkClient::start(&server.addr(), COURSE_SESSION).await?;
    zk.create("/svc", b"first", Persistent).await?;
    zk.create("/svc", b"second", Persistent).await?;
    assert_eq!(zk.get_data("/svc").await?, b"first");

    zk.create("/svc/m", b"first", Ephemeral).await?;
    zk.create("/svc/m", b"second", Ephemeral).await?;
    assert_eq!(zk.get_data("/svc/m").await?, b"first");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn ephemeral_node_vanishes_when_its_client_closes() -> TestResult {
    let server = ZkServer::start()?;
    let provider = ZkClient::start(&server.addr(), COURSE_SESSION).await?;
    let watcher = ZkClient::start(&server.addr(), COURSE_SESSION).await?;
    provider.create("/svc", b"", Persistent).await?;
    provider
        .create("/svc/m", b"127.0.0.1:8000", Ephemeral)
        .await?;
    assert_eq!(watcher.get_data("/svc/m").await?, b"127.0.0.1:8000");

    provider.close().await?;
    // `close` waited for ZooKeeper, so the node is gone right away.
    assert!(watcher.exists("/svc/m").await?.is_none());
    // The persistent parent stays.
    assert!(watcher.exists("/svc").await?.is_some());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn own_stale_ephemeral_node_is_replaced() -> TestResult {
    let server = ZkServer::start()?;
    // The "old run" of this provider (killed with kill -9), whose session
    // ZooKeeper still keeps alive: same address in the node.
    let old = ZkClient::start(&server.addr(), COURSE_SESSION).await?;
    old.create("/m", b"127.0.0.1:1111", Ephemeral).await?;

    let new = ZkClient::start(&server.addr(), COURSE_SESSION).await?;
    new.create("/m", b"127.0.0.1:1111", Ephemeral).await?;
    let stat = new.exists("/m").await?.ok_or("node missing")?;
    assert_eq!(stat.ephemeral_owner, new.session_id());

    // The old session ending no longer takes the new registration with it.
    old.close().await?;
    assert_eq!(new.get_data("/m").await?, b"127.0.0.1:1111");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn another_live_sessions_ephemeral_node_is_left_alone() -> TestResult {
    let server = ZkServer::start()?;
    // Another provider (a C++ callee, say) holds the node with its address.
    let other = ZkClient::start(&server.addr(), COURSE_SESSION).await?;
    other.create("/m", b"127.0.0.1:1111", Ephemeral).await?;
    let before = other.exists("/m").await?.ok_or("node missing")?;

    let new = ZkClient::start(&server.addr(), COURSE_SESSION).await?;
    let error = failure(
        new.create("/m", b"127.0.0.1:2222", Ephemeral).await,
        "took it",
    )?;
    assert!(
        matches!(&error, ZkError::Taken { path, owner, data }
            if path == "/m" && *owner == other.session_id() && data == "127.0.0.1:1111"),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("held by another session"),
        "{error}"
    );
    // Untouched: same data, same owner, same version.
    assert_eq!(new.get_data("/m").await?, b"127.0.0.1:1111");
    let after = new.exists("/m").await?.ok_or("node missing")?;
    assert_eq!(after.ephemeral_owner, before.ephemeral_owner);
    assert_eq!(after.version, before.version);
    assert_eq!(after.czxid, before.czxid);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_nodes_and_bad_paths_are_errors_naming_the_path() -> TestResult {
    let server = ZkServer::start()?;
    let zk = ZkClient::start(&server.addr(), COURSE_SESSION).await?;

    let err = failure(zk.get_data("/NoSuchService/Login").await, "no error")?;
    assert!(
        matches!(&err, ZkError::NoNode { path } if path == "/NoSuchService/Login"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "znode /NoSuchService/Login does not exist");
    assert!(zk.exists("/NoSuchService").await?.is_none());

    let err = failure(
        zk.create("/NoSuchService/Login", b"x", Ephemeral).await,
        "no error",
    )?;
    assert!(matches!(&err, ZkError::NoParent { path } if path == "/NoSuchService/Login"));
    assert!(err.to_string().contains("/NoSuchService/Login"), "{err}");

    // The crate rejects malformed paths itself; we get an error, not a panic.
    for bad in ["no-leading-slash", "/trailing/", ""] {
        let err = zk.get_data(bad).await.err().ok_or("no error")?;
        assert!(matches!(&err, ZkError::Request { .. }), "{bad:?}: {err:?}");
        assert!(err.to_string().contains(&server.addr()), "{err}");
    }

    // Children of an ephemeral node are refused by ZooKeeper.
    zk.create("/e", b"", Ephemeral).await?;
    let err = failure(zk.create("/e/child", b"", Persistent).await, "no error")?;
    assert!(err.to_string().contains("/e/child"), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_zookeeper_is_an_error_within_the_session_timeout() -> TestResult {
    // A port nobody listens on: connections are refused at once.
    let addr = format!("127.0.0.1:{}", free_port()?);
    let started = Instant::now();
    let err = failure(ZkClient::start(&addr, SHORT_SESSION).await, "connected")?;
    let took = started.elapsed();
    assert!(matches!(err, ZkError::ConnectTimeout { .. }), "{err:?}");
    assert!(err.to_string().contains(&addr), "{err}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_connect_strings_are_errors_not_panics() -> TestResult {
    for bad in ["", "127.0.0.1:notaport", "127.0.0.1:99999"] {
        let started = Instant::now();
        let result = ZkClient::start(bad, SHORT_SESSION).await;
        assert!(result.is_err(), "connected to {bad:?}?");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn zookeeper_stopping_mid_session_gives_a_clear_error_not_a_hang() -> TestResult {
    let mut server = ZkServer::start()?;
    let zk = ZkClient::start(&server.addr(), SHORT_SESSION).await?;
    zk.create("/svc", b"127.0.0.1:8000", Persistent).await?;
    assert_eq!(zk.get_data("/svc").await?, b"127.0.0.1:8000");

    server.stop()?;
    let started = Instant::now();
    let err = failure(zk.get_data("/svc").await, "read from a stopped ZooKeeper?")?;
    let took = started.elapsed();
    assert!(matches!(err, ZkError::Unavailable { .. }), "{err:?}");
    assert!(err.to_string().contains(&server.addr()), "{err}");
    assert!(err.to_string().contains("/svc"), "{err}");
    assert!(took < Duration::from_secs(10), "took {took:?}");

    // Past 7/5 of the session timeout the client has expired the session
    // itself; then it stays unusable, even with ZooKeeper back.
    tokio::time::sleep(SHORT_SESSION * 2).await;
    server.restart()?;
    let err = failure(zk.get_data("/svc").await, "expired session worked?")?;
    assert!(matches!(err, ZkError::Unavailable { .. }), "{err:?}");
    // A new client works and sees the persistent data.
    let fresh = ZkClient::start(&server.addr(), SHORT_SESSION).await?;
    assert_eq!(fresh.get_data("/svc").await?, b"127.0.0.1:8000");
    Ok(())
}
