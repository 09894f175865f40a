//! `ZkClient` against a real ZooKeeper: every test starts its own server
//! (`step::zk_server`). Without Java and the Debian package `zookeeper`
//! they fail, naming the package: they never skip.

use std::error::Error;
use std::time::{Duration, Instant};

use step::zk_client::{CreateMode, ZkClient, ZkError};
use step::zk_server::{ZkServer, free_port};

/// Tests return errors instead of unwrapping, so a failure says what broke.
type TestResult = Result<(), Box<dyn Error>>;

/// A session timeout short enough that "ZooKeeper is gone" tests finish fast.
const SHORT_SESSION: Duration = Duration::from_secs(2);

/// The course's session timeout (`zookeeper_init(..., 30000, ...)`).
const COURSE_SESSION: Duration = Duration::from_secs(30);

/// Polls `exists(path)` until the node is gone or `limit` passes; returns how
/// long it took, or `None` if the node was still there.
async fn wait_until_gone(
    zk: &ZkClient,
    path: &str,
    limit: Duration,
) -> Result<Option<Duration>, ZkError> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if zk.exists(path).await?.is_none() {
            return Ok(Some(started.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(None)
}

#[test]
fn zookeeper_server_starts_and_reports_its_time() -> TestResult {
    let started = Instant::now();
    let server = ZkServer::start()?;
    eprintln!(
        "ZooKeeper serving at {} after {} ms",
        server.addr(),
        started.elapsed().as_millis()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn persistent_and_ephemeral_nodes_hold_their_data() -> TestResult {
    let server = ZkServer::start()?;
    let zk = ZkClient::start(&server.addr(), COURSE_SESSION).await?;
    assert_eq!(zk.addr(), server.addr());
    assert_eq!(zk.session_timeout(), COURSE_SESSION);

    zk.create("/UserServiceRpc", b"", CreateMode::Persistent)
        .await?;
    zk.create(
        "/UserServiceRpc/Login",
        b"127.0.0.1:8000",
        CreateMode::Ephemeral,
    )
    .await?;

    assert_eq!(
        zk.get_data("/UserServiceRpc/Login").await?,
        b"127.0.0.1:8000"
    );
    assert_eq!(zk.get_data("/UserServiceRpc").await?, b"");
    assert_eq!(zk.get_children("/UserServiceRpc").await?, vec!["Login"]);

    let persistent = zk
        .exists("/UserServiceRpc")
        .await?
        .ok_or("parent missing")?;
    assert_eq!(persistent.ephemeral_owner, 0);
    let ephemeral = zk
        .exists("/UserServiceRpc/Login")
        .await?
        .ok_or("node missing")?;
    assert_ne!(ephemeral.ephemeral_owner, 0);
    assert_eq!(ephemeral.ephemeral_owner, zk.session_id());
    zk.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn creating_an_existing_node_is_fine_and_keeps_its_data() -> TestResult {
    let server = ZkServer::start()?;
    let zk = ZkClient::start(&server.addr(), COURSE_SESSION).await?;
    zk.create("/svc", b"first", CreateMode::Persistent).await?;
    zk.create("/svc", b"second", CreateMode::Persistent).await?;
    assert_eq!(zk.get_data("/svc").await?, b"first");

    zk.create("/svc/m", b"first", CreateMode::Ephemeral).await?;
    zk.create("/svc/m", b"second", CreateMode::Ephemeral)
        .await?;
    assert_eq!(zk.get_data("/svc/m").await?, b"first");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn ephemeral_node_vanishes_when_its_client_closes() -> TestResult {
    let server = ZkServer::start()?;
    let provider = ZkClient::start(&server.addr(), COURSE_SESSION).await?;
    let watcher = ZkClient::start(&server.addr(), COURSE_SESSION).await?;
    provider.create("/svc", b"", CreateMode::Persistent).await?;
    provider
        .create("/svc/m", b"127.0.0.1:8000", CreateMode::Ephemeral)
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
async fn ephemeral_node_vanishes_soon_after_its_client_is_dropped() -> TestResult {
    let server = ZkServer::start()?;
    let provider = ZkClient::start(&server.addr(), COURSE_SESSION).await?;
    let watcher = ZkClient::start(&server.addr(), COURSE_SESSION).await?;
    provider.create("/m", b"x", CreateMode::Ephemeral).await?;
    drop(provider);
    // The runtime keeps running, so the background task sends the close;
    // far sooner than the 30 s session timeout.
    let took = wait_until_gone(&watcher, "/m", Duration::from_secs(5))
        .await?
        .ok_or("ephemeral node still there 5 s after its client was dropped")?;
    eprintln!("ephemeral node gone {} ms after drop", took.as_millis());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_ephemeral_node_of_another_session_is_replaced() -> TestResult {
    let server = ZkServer::start()?;
    // The "old run" of a provider whose session ZooKeeper still keeps alive.
    let old = ZkClient::start(&server.addr(), COURSE_SESSION).await?;
    old.create("/m", b"127.0.0.1:1111", CreateMode::Ephemeral)
        .await?;

    let new = ZkClient::start(&server.addr(), COURSE_SESSION).await?;
    new.create("/m", b"127.0.0.1:2222", CreateMode::Ephemeral)
        .await?;
    assert_eq!(new.get_data("/m").await?, b"127.0.0.1:2222");
    let stat = new.exists("/m").await?.ok_or("node missing")?;
    assert_eq!(stat.ephemeral_owner, new.session_id());

    // The old session ending no longer takes the new registration with it.
    old.close().await?;
    assert_eq!(new.get_data("/m").await?, b"127.0.0.1:2222");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_nodes_and_bad_paths_are_errors_naming_the_path() -> TestResult {
    let server = ZkServer::start()?;
    let zk = ZkClient::start(&server.addr(), COURSE_SESSION).await?;

    let err = zk
        .get_data("/NoSuchService/Login")
        .await
        .err()
        .ok_or("expected an error")?;
    assert!(
        matches!(&err, ZkError::NoNode { path } if path == "/NoSuchService/Login"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "znode /NoSuchService/Login does not exist");
    assert!(zk.exists("/NoSuchService").await?.is_none());

    let err = zk
        .create("/NoSuchService/Login", b"x", CreateMode::Ephemeral)
        .await
        .err()
        .ok_or("expected an error")?;
    assert!(matches!(&err, ZkError::NoParent { path } if path == "/NoSuchService/Login"));
    assert!(err.to_string().contains("/NoSuchService/Login"), "{err}");

    // The crate rejects malformed paths itself; we get an error, not a panic.
    for bad in ["no-leading-slash", "/trailing/", ""] {
        let err = zk.get_data(bad).await.err().ok_or("expected an error")?;
        assert!(matches!(&err, ZkError::Request { .. }), "{bad:?}: {err:?}");
        assert!(err.to_string().contains(&server.addr()), "{err}");
        eprintln!("{bad:?} -> {err}");
    }

    // Children of an ephemeral node are refused by ZooKeeper.
    zk.create("/e", b"", CreateMode::Ephemeral).await?;
    let err = zk
        .create("/e/child", b"", CreateMode::Persistent)
        .await
        .err()
        .ok_or("expected an error")?;
    assert!(err.to_string().contains("/e/child"), "{err}");
    eprintln!("{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_zookeeper_is_an_error_within_the_session_timeout() -> TestResult {
    // A port nobody listens on: connections are refused at once.
    let addr = format!("127.0.0.1:{}", free_port()?);
    let started = Instant::now();
    let err = ZkClient::start(&addr, SHORT_SESSION)
        .await
        .err()
        .ok_or("connected to a closed port?")?;
    let took = started.elapsed();
    eprintln!("{err} (after {} ms)", took.as_millis());
    assert!(matches!(err, ZkError::ConnectTimeout { .. }), "{err:?}");
    assert!(err.to_string().contains(&addr), "{err}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_connect_strings_are_errors_not_panics() -> TestResult {
    for bad in ["", "127.0.0.1:notaport", "127.0.0.1:99999"] {
        let started = Instant::now();
        let err = ZkClient::start(bad, SHORT_SESSION)
            .await
            .err()
            .ok_or("connected to nonsense?")?;
        eprintln!(
            "{bad:?} -> {err} (after {} ms)",
            started.elapsed().as_millis()
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn zookeeper_stopping_mid_session_gives_a_clear_error_not_a_hang() -> TestResult {
    let mut server = ZkServer::start()?;
    let zk = ZkClient::start(&server.addr(), SHORT_SESSION).await?;
    zk.create("/svc", b"127.0.0.1:8000", CreateMode::Persistent)
        .await?;
    assert_eq!(zk.get_data("/svc").await?, b"127.0.0.1:8000");

    server.stop()?;
    let started = Instant::now();
    let err = zk
        .get_data("/svc")
        .await
        .err()
        .ok_or("read from a stopped ZooKeeper?")?;
    let took = started.elapsed();
    eprintln!("{err} (after {} ms)", took.as_millis());
    assert!(matches!(err, ZkError::Unavailable { .. }), "{err:?}");
    assert!(err.to_string().contains(&server.addr()), "{err}");
    assert!(err.to_string().contains("/svc"), "{err}");
    assert!(took < Duration::from_secs(10), "took {took:?}");

    // Once expired, the client stays unusable, even with ZooKeeper back.
    server.restart()?;
    let err = zk
        .get_data("/svc")
        .await
        .err()
        .ok_or("expired session worked?")?;
    assert!(matches!(err, ZkError::Unavailable { .. }), "{err:?}");
    // A new client works and sees the persistent data.
    let fresh = ZkClient::start(&server.addr(), SHORT_SESSION).await?;
    assert_eq!(fresh.get_data("/svc").await?, b"127.0.0.1:8000");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn session_survives_a_quick_zookeeper_restart() -> TestResult {
    let mut server = ZkServer::start()?;
    let zk = ZkClient::start(&server.addr(), Duration::from_secs(10)).await?;
    zk.create("/m", b"127.0.0.1:8000", CreateMode::Ephemeral)
        .await?;
    let session = zk.session_id();

    let started = Instant::now();
    server.restart()?;
    // The client reconnects by itself and keeps its session.
    assert_eq!(zk.get_data("/m").await?, b"127.0.0.1:8000");
    eprintln!(
        "read after restart took {} ms",
        started.elapsed().as_millis()
    );
    let stat = zk
        .exists("/m")
        .await?
        .ok_or("ephemeral node lost in restart")?;
    assert_eq!(stat.ephemeral_owner, session);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn one_client_serves_concurrent_tasks() -> TestResult {
    let server = ZkServer::start()?;
    let zk = std::sync::Arc::new(ZkClient::start(&server.addr(), COURSE_SESSION).await?);
    zk.create("/svc", b"", CreateMode::Persistent).await?;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let zk = std::sync::Arc::clone(&zk);
        tasks.push(tokio::spawn(async move {
            let path = format!("/svc/m{i}");
            zk.create(&path, path.as_bytes(), CreateMode::Ephemeral)
                .await?;
            zk.get_data(&path).await
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await??, format!("/svc/m{i}").into_bytes());
    }
    assert_eq!(zk.get_children("/svc").await?.len(), 8);
    Ok(())
}
