//! ZooKeeper digest authentication and ACLs on the registry, against a REAL
//! ZooKeeper: a provider with `zk_auth` protects its znodes; clients without
//! the credential still read, list, discover and call, but cannot add,
//! delete or take over registrations; a credential the server refuses fails
//! at once instead of retrying.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use mprpc::zk_client::{Acl, CreateMode, Permission, ZkError};
use mprpc::{MprpcChannel, MprpcConfig, Registry, RpcProvider, ZkAuth, ZkClient, ZkRegistry};
use mprpc_examples::fixbug::{LoginRequest, UserServiceRpcServer, UserServiceRpcStub};
use support::harness::{assert_within, expire_session, runtime};
use support::zk_server::ZkServer;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const SESSION: Duration = Duration::from_secs(2);
const SERVICE: &str = "fixbug.UserServiceRpc";

fn login() -> LoginRequest {
    LoginRequest {
        name: b"zk".to_vec(),
        pwd: b"pw".to_vec(),
    }
}

/// True if `acl` is exactly "ALL for digest user `user`, READ for everyone".
fn is_protected(acl: &[Acl], user: &str) -> bool {
    let owner = acl.iter().any(|a| {
        a.scheme() == "digest"
            && a.id().starts_with(&format!("{user}:"))
            && a.permission() == Permission::ALL
    });
    let world_read = acl
        .iter()
        .any(|a| a.scheme() == "world" && a.id() == "anyone" && a.permission() == Permission::READ);
    acl.len() == 2 && owner && world_read
}

/// A registry under `root` whose sessions authenticate with `auth`: the
/// tests' session timeout and a 20 s connect budget.
async fn registry_with_auth(
    server: &ZkServer,
    root: &str,
    auth: ZkAuth,
) -> Result<ZkRegistry, mprpc::Error> {
    ZkRegistry::connect_with_auth(
        &server.addr(),
        root,
        SESSION,
        Duration::from_secs(20),
        Some(auth),
    )
    .await
}

/// Expects a `NoAuth` refusal and returns its message.
fn expect_no_auth<T: std::fmt::Debug>(what: &str, r: Result<T, ZkError>) -> String {
    match r {
        Err(e @ ZkError::NoAuth { .. }) => e.to_string(),
        other => panic!("{what}: expected NoAuth, got {other:?}"),
    }
}

#[test]
fn authenticated_provider_protects_its_znodes_and_open_callers_still_call() -> TestResult {
    let server = ZkServer::start()?;
    let dir = tempfile::tempdir()?;
    let secret = dir.path().join("zk.secret");
    std::fs::write(&secret, "mprpc:right-password\n")?;
    // The provider is configured the production way: the credential in a file.
    let text = format!(
        "rpcserverport = 0\nzookeeperip = \"127.0.0.1\"\nzookeeperport = {}\n\
         zk_session_timeout_ms = 2000\nzk_root = \"/secure\"\nzk_auth_file = {:?}\n",
        server.port(),
        secret.display().to_string()
    );
    let config = MprpcConfig::from_toml(&text)?;
    let rt = runtime()?;
    rt.block_on(async {
        let mut provider = RpcProvider::new(config);
        provider.notify_service(UserServiceRpcServer::new(
            mprpc_examples::UserService::default(),
        ));
        let running = provider.start().await?;
        let addr = running.address().to_string();
        let node = format!("/secure/{SERVICE}/providers/{addr}");

        // Every znode of the tree: ALL for the provider's identity, READ for all.
        let open = ZkClient::start(&server.addr(), SESSION).await?;
        for path in [
            "/secure".to_string(),
            format!("/secure/{SERVICE}"),
            format!("/secure/{SERVICE}/providers"),
            node.clone(),
        ] {
            let acl = open.get_acl(&path).await?;
            assert!(is_protected(&acl, "mprpc"), "{path}: {acl:?}");
        }
        let owner = open.exists(&node).await?.ok_or("no provider node")?;

        // Without a credential: reading and listing work ...
        let listed = open
            .get_children(&format!("/secure/{SERVICE}/providers"))
            .await?;
        assert_eq!(listed, vec![addr.clone()]);
        assert_eq!(open.get_data(&node).await?, addr.as_bytes());
        // ... writing does not: no fake provider, no fake service, no delete.
        let msg = expect_no_auth(
            "fake provider",
            open.create(
                &format!("/secure/{SERVICE}/providers/6.6.6.6:666"),
                b"6.6.6.6:666",
                CreateMode::Ephemeral,
            )
            .await,
        );
        assert!(
            msg.contains("not authorized") && msg.contains("zk_auth"),
            "{msg}"
        );
        expect_no_auth(
            "fake service",
            open.create("/secure/FakeService", b"", CreateMode::Persistent)
                .await,
        );
        expect_no_auth("delete provider", open.delete(&node).await);
        // A caller without a credential discovers the provider and calls it.
        let caller =
            ZkRegistry::connect(&server.addr(), "/secure", SESSION, Duration::from_secs(20))
                .await?;
        let list = caller.subscribe(SERVICE).await?;
        assert_eq!(list.borrow().to_vec(), vec![addr.clone()]);
        let stub =
            UserServiceRpcStub::new(MprpcChannel::new(&MprpcConfig::default(), Arc::new(caller)));
        let reply = stub.login(&login()).await;
        assert!(reply.is_ok(), "{reply:?}");

        // The wrong password is a different identity: it may not delete the
        // provider's node, nor replace it with one of its own.
        let wrong = ZkAuth::digest("mprpc:wrong-password")?;
        let intruder = ZkClient::start_with_auth(&server.addr(), SESSION, Some(&wrong)).await?;
        let msg = expect_no_auth("delete with wrong password", intruder.delete(&node).await);
        assert!(msg.contains("digest:mprpc"), "{msg}");
        assert!(!msg.contains("wrong-password"), "{msg}");
        let intruder_registry = registry_with_auth(&server, "/secure", wrong).await?;
        let err = intruder_registry
            .register(SERVICE, &addr)
            .await
            .err()
            .ok_or("registered with the wrong password")?
            .to_string();
        assert!(err.contains("not authorized"), "{err}");
        eprintln!("wrong password: {err}");
        let still = open.exists(&node).await?.ok_or("provider node deleted")?;
        assert_eq!(
            still.ephemeral_owner, owner.ephemeral_owner,
            "node taken over"
        );

        // The same credential in another session (a second provider
        // instance) may register next to the first.
        let right = ZkAuth::digest("mprpc:right-password")?;
        let sibling = ZkClient::start_with_auth(&server.addr(), SESSION, Some(&right)).await?;
        let second = format!("/secure/{SERVICE}/providers/127.0.0.1:1");
        sibling
            .create(&second, b"127.0.0.1:1", CreateMode::Ephemeral)
            .await?;
        assert!(is_protected(&open.get_acl(&second).await?, "mprpc"));
        sibling.delete(&second).await?;

        running.shutdown().await?;
        // Graceful shutdown deregistered: the provider could delete its own node.
        assert!(open.exists(&node).await?.is_none(), "{node} left behind");
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    Ok(())
}

#[test]
fn open_znodes_from_before_auth_are_locked_down_on_registration() -> TestResult {
    let server = ZkServer::start()?;
    let rt = runtime()?;
    rt.block_on(async {
        // A registry tree created the course's way, open to everyone.
        let open = ZkClient::start(&server.addr(), SESSION).await?;
        open.create_path(&format!("/legacy/{SERVICE}/providers"))
            .await?;
        let acl = open.get_acl("/legacy").await?;
        assert!(
            acl.iter()
                .any(|a| a.scheme() == "world" && a.permission() == Permission::ALL),
            "{acl:?}"
        );

        let auth = ZkAuth::digest("mprpc:pw")?;
        let registry = registry_with_auth(&server, "/legacy", auth).await?;
        registry.register(SERVICE, "127.0.0.1:9").await?;
        for path in [
            "/legacy".to_string(),
            format!("/legacy/{SERVICE}"),
            format!("/legacy/{SERVICE}/providers"),
            format!("/legacy/{SERVICE}/providers/127.0.0.1:9"),
        ] {
            let acl = open.get_acl(&path).await?;
            assert!(is_protected(&acl, "mprpc"), "{path}: {acl:?}");
        }
        expect_no_auth(
            "create under the locked-down tree",
            open.create(
                &format!("/legacy/{SERVICE}/providers/6.6.6.6:666"),
                b"",
                CreateMode::Ephemeral,
            )
            .await,
        );
        // Registering again finds nothing left to change.
        registry.register(SERVICE, "127.0.0.1:9").await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    Ok(())
}

#[test]
fn a_refused_credential_fails_at_once_with_a_clear_error() -> TestResult {
    let server = ZkServer::start()?;
    let rt = runtime()?;
    // ZooKeeper has no provider for this scheme, so it refuses the credential
    // and closes the connection.
    let refused = ZkAuth::new("nosuchscheme", b"whatever");
    let started = Instant::now();
    let r = rt.block_on(ZkClient::start_with_auth(
        &server.addr(),
        SESSION,
        Some(&refused),
    ));
    match r {
        Err(e @ ZkError::AuthFailed { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("refused authentication") && msg.contains("nosuchscheme"),
                "{msg}"
            );
        }
        other => return Err(format!("expected AuthFailed, got {other:?}").into()),
    }
    // The registry does not retry for its 20 s connect budget either.
    let r = rt.block_on(registry_with_auth(&server, "/refused", refused));
    let err = r
        .err()
        .ok_or("connected with a refused credential")?
        .to_string();
    assert!(err.contains("refused authentication"), "{err}");
    assert_within(started, Duration::from_secs(10));
    Ok(())
}

#[test]
fn a_new_session_after_expiry_authenticates_again() -> TestResult {
    let mut server = ZkServer::start()?;
    let rt = runtime()?;
    let auth = ZkAuth::digest("mprpc:pw")?;
    let registry = rt.block_on(registry_with_auth(&server, "/expiring", auth))?;
    rt.block_on(registry.register(SERVICE, "127.0.0.1:9"))?;
    // ZooKeeper down for longer than the session timeout: the session expires
    // and its ephemeral node with it.
    let (old_session, new_session) = expire_session(&mut server, SESSION, &registry)?;
    assert_ne!(new_session, old_session, "no new session");
    // The supervisor re-registered on the new session, which carries the
    // credential: the node is back, owned by it, with the protected ACL.
    let node = format!("/expiring/{SERVICE}/providers/127.0.0.1:9");
    rt.block_on(async {
        let open = ZkClient::start(&server.addr(), SESSION).await?;
        for _ in 0..100 {
            if let Some(stat) = open.exists(&node).await? {
                if stat.ephemeral_owner == new_session {
                    let acl = open.get_acl(&node).await?;
                    assert!(is_protected(&acl, "mprpc"), "{acl:?}");
                    return Ok::<_, Box<dyn std::error::Error>>(());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("{node} not re-created by session {new_session:#x}").into())
    })?;
    Ok(())
}
