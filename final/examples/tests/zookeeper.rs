//! Discovery through a REAL ZooKeeper (Debian package `zookeeper`): many
//! providers, load spread, graceful stop without failed calls, a killed
//! provider taken out within a second, session expiry, unreachable start.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mprpc::{
    CallContext, LoadBalance, MprpcChannel, MprpcConfig, Registry, RpcProvider, RunningProvider,
    Status, ZkClient, ZkRegistry,
};
use mprpc_examples::fixbug::{
    LoginRequest, LoginResponse, RegisterRequest, RegisterResponse, UserServiceRpc,
    UserServiceRpcServer, UserServiceRpcStub,
};
use support::harness::{assert_within, expire_session, runtime};
use support::zk_server::{ZkServer, free_port};
use tokio::runtime::Runtime;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const SESSION: Duration = Duration::from_secs(2);

/// Counts the calls it serves.
struct Counting(Arc<AtomicUsize>);

impl UserServiceRpc for Counting {
    async fn login(
        &self,
        _ctx: CallContext,
        _request: LoginRequest,
    ) -> Result<LoginResponse, Status> {
        self.0.fetch_add(1, Ordering::SeqCst);
        // A little work, so calls overlap and drain has something to wait for.
        tokio::time::sleep(Duration::from_millis(2)).await;
        Ok(LoginResponse {
            result: None,
            success: true,
        })
    }

    async fn register(
        &self,
        _ctx: CallContext,
        _request: RegisterRequest,
    ) -> Result<RegisterResponse, Status> {
        Ok(RegisterResponse::default())
    }
}

/// A provider in its own runtime (so it can be killed by dropping that).
struct Node {
    rt: Runtime,
    provider: Option<RunningProvider>,
    hits: Arc<AtomicUsize>,
}

fn start_node(zk: &str, root: &str) -> Result<Node, Box<dyn std::error::Error>> {
    let rt = runtime()?;
    let hits = Arc::new(AtomicUsize::new(0));
    let mut config = MprpcConfig::default();
    config.rpcserverport = 0;
    let provider = rt.block_on(async {
        let registry = ZkRegistry::connect(zk, root, SESSION, Duration::from_secs(20)).await?;
        let mut provider = RpcProvider::new(config).with_registry(Arc::new(registry));
        provider.notify_service(UserServiceRpcServer::new(Counting(Arc::clone(&hits))));
        provider.start().await
    })?;
    Ok(Node {
        rt,
        provider: Some(provider),
        hits,
    })
}

fn login() -> LoginRequest {
    LoginRequest {
        name: b"zk".to_vec(),
        pwd: b"pw".to_vec(),
    }
}

/// Runs calls from `workers` tasks until `stop`, recording (time, ok).
async fn call_until(
    stub: UserServiceRpcStub,
    workers: usize,
    stop: Arc<AtomicBool>,
) -> Vec<(Instant, Result<(), String>)> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let (stub, stop, log) = (stub.clone(), Arc::clone(&stop), Arc::clone(&log));
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let r = stub
                        .login(&login())
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string());
                    if let Ok(mut l) = log.lock() {
                        l.push((Instant::now(), r));
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    log.lock().map(|l| l.clone()).unwrap_or_default()
}

#[test]
fn three_providers_share_calls_survive_graceful_stop_and_a_kill() -> TestResult {
    let server = ZkServer::start()?;
    let root = "/spread";
    let mut nodes = vec![
        start_node(&server.addr(), root)?,
        start_node(&server.addr(), root)?,
        start_node(&server.addr(), root)?,
    ];
    let client_rt = runtime()?;
    let mut config = MprpcConfig::default();
    config.load_balance = LoadBalance::RoundRobin;
    let stub = client_rt.block_on(async {
        let registry =
            ZkRegistry::connect(&server.addr(), root, SESSION, Duration::from_secs(20)).await?;
        let list = registry.subscribe("fixbug.UserServiceRpc").await?;
        assert_eq!(
            list.borrow().len(),
            3,
            "three providers registered: {:?}",
            list.borrow()
        );
        Ok::<_, mprpc::Error>(UserServiceRpcStub::new(MprpcChannel::new(
            &config,
            Arc::new(registry),
        )))
    })?;

    // Phase 1: 1,000 calls, 20 at a time, spread over all three.
    let failures = client_rt.block_on(async {
        let mut failures = 0;
        let request = login();
        for _ in 0..50 {
            let batch = (0..20).map(|_| stub.login(&request));
            failures += futures_util::future::join_all(batch)
                .await
                .iter()
                .filter(|r| r.is_err())
                .count();
        }
        failures
    });
    let hits: Vec<usize> = nodes
        .iter()
        .map(|n| n.hits.load(Ordering::SeqCst))
        .collect();
    assert_eq!(failures, 0);
    assert_eq!(hits.iter().sum::<usize>(), 1000);
    assert!(
        hits.iter().all(|&h| h >= 250),
        "round robin spreads the calls: {hits:?}"
    );

    // Phase 2: stop provider 1 gracefully while calls run: no call fails.
    let stop = Arc::new(AtomicBool::new(false));
    let running = client_rt.spawn(call_until(stub.clone(), 8, Arc::clone(&stop)));
    std::thread::sleep(Duration::from_millis(300));
    let node = &mut nodes[1];
    if let Some(p) = node.provider.take() {
        node.rt.block_on(p.shutdown())?;
    }
    let stopped_hits = nodes[1].hits.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let log = client_rt.block_on(running)?;
    let failed: Vec<_> = log.iter().filter_map(|(_, r)| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "graceful stop failed {} of {} calls: {:?}",
        failed.len(),
        log.len(),
        failed.first()
    );
    assert_eq!(
        nodes[1].hits.load(Ordering::SeqCst),
        stopped_hits,
        "no call reaches a stopped provider"
    );
    assert!(log.len() > 100, "calls kept running: {}", log.len());

    // Phase 3: kill provider 2 (its runtime vanishes, sockets close, its
    // ZooKeeper session lingers): within 1 s every call goes to provider 0.
    let stop = Arc::new(AtomicBool::new(false));
    let running = client_rt.spawn(call_until(stub.clone(), 8, Arc::clone(&stop)));
    std::thread::sleep(Duration::from_millis(300));
    let killed = nodes.remove(2);
    let killed_at = Instant::now();
    let Node { rt, provider, .. } = killed;
    std::mem::forget(provider); // no graceful drop: this is a crash
    rt.shutdown_background();
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::SeqCst);
    let log = client_rt.block_on(running)?;
    let late: Vec<_> = log
        .iter()
        .filter(|(t, r)| r.is_err() && t.duration_since(killed_at) > Duration::from_secs(1))
        .collect();
    let after = log
        .iter()
        .filter(|(t, _)| t.duration_since(killed_at) > Duration::from_secs(1))
        .count();
    assert!(
        late.is_empty(),
        "calls still failing 1 s after the kill: {:?}",
        late.first()
    );
    assert!(after > 50, "calls succeed after the kill: {after}");
    eprintln!(
        "kill: {} calls failed around the kill, {} succeeded after",
        log.iter().filter(|(_, r)| r.is_err()).count(),
        after
    );
    drop(nodes);
    drop(stub);
    drop(client_rt);
    Ok(())
}

#[test]
fn session_expiry_gets_a_new_session_and_reregisters() -> TestResult {
    let mut server = ZkServer::start()?;
    let root = "/expiry";
    let node = start_node(&server.addr(), root)?;
    let addr = match &node.provider {
        Some(p) => p.address().to_string(),
        None => return Err("no provider".into()),
    };
    let check_rt = runtime()?;
    let registry = check_rt.block_on(ZkRegistry::connect(
        &server.addr(),
        root,
        SESSION,
        Duration::from_secs(20),
    ))?;
    // ZooKeeper down for longer than the session timeout: the sessions expire.
    let (old_session, new_session) = expire_session(&mut server, SESSION, &registry)?;
    assert_ne!(
        new_session, old_session,
        "a new session replaced the expired one"
    );
    // The provider's znode is back, owned by a live session.
    let path = format!(
        "{}/{addr}",
        registry.providers_path("fixbug.UserServiceRpc")
    );
    let found = check_rt.block_on(async {
        let zk = ZkClient::start(&server.addr(), SESSION).await?;
        for _ in 0..100 {
            if zk.exists(&path).await?.is_some() {
                return Ok::<_, mprpc::zk_client::ZkError>(true);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(false)
    })?;
    assert!(found, "{path} was re-created after session expiry");
    // And a caller finds and reaches it. The caller's own registry has just
    // opened its new session too, and its first listing may still fail while
    // the restarted server settles (the registry then retries with backoff
    // and keeps an empty list): allow it a few seconds, as a real caller's
    // retry would.
    let ok = check_rt.block_on(async {
        let stub = UserServiceRpcStub::new(MprpcChannel::new(
            &MprpcConfig::default(),
            Arc::new(registry),
        ));
        let mut last = stub.login(&login()).await;
        for _ in 0..50 {
            if last.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            last = stub.login(&login()).await;
        }
        last
    });
    assert!(ok.is_ok(), "{ok:?}");
    drop(node);
    Ok(())
}

#[test]
fn unreachable_zookeeper_retries_with_backoff_then_fails_clearly() -> TestResult {
    let rt = runtime()?;
    let port = free_port()?;
    let started = Instant::now();
    let r = rt.block_on(ZkRegistry::connect(
        &format!("127.0.0.1:{port}"),
        "/x",
        Duration::from_secs(1),
        Duration::from_secs(3),
    ));
    let err = match r {
        Ok(_) => return Err("connected to nothing".into()),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("unreachable") && err.contains("attempts"),
        "{err}"
    );
    assert_within(started, Duration::from_secs(8));
    Ok(())
}

#[test]
fn zookeeper_coming_up_late_is_waited_for() -> TestResult {
    let mut server = ZkServer::start()?;
    server.stop()?;
    let addr = server.addr();
    let rt = runtime()?;
    let connecting = rt.spawn(async move {
        ZkRegistry::connect(&addr, "/late", SESSION, Duration::from_secs(30)).await
    });
    std::thread::sleep(Duration::from_millis(1500));
    server.restart()?;
    let registry = rt.block_on(connecting)??;
    assert_ne!(registry.session_id(), 0);
    Ok(())
}

#[test]
fn config_driven_provider_and_caller_meet_through_zookeeper() -> TestResult {
    let server = ZkServer::start()?;
    let text = format!(
        "rpcserverip = \"127.0.0.1\"\nrpcserverport = 0\nzookeeperip = \"127.0.0.1\"\nzookeeperport = {}\n\
         zk_session_timeout_ms = 2000\nzk_root = \"/configured\"\n",
        server.port()
    );
    let config = MprpcConfig::from_toml(&text)?;
    let rt = runtime()?;
    rt.block_on(async {
        let mut provider = RpcProvider::new(config.clone());
        provider.notify_service(UserServiceRpcServer::new(
            mprpc_examples::UserService::default(),
        ));
        let running = provider.start().await?;
        let channel = MprpcChannel::from_config(&config).await?;
        let reply = UserServiceRpcStub::new(channel).login(&login()).await;
        assert!(matches!(reply, Ok(ref r) if !r.success), "{reply:?}");
        running.shutdown().await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    Ok(())
}
