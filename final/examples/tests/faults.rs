//! Faults with real processes: providers are child processes (the `callee`
//! example), ZooKeeper is the Debian package, one server or a 3-node
//! ensemble. Everything runs on 127.0.0.1; every child is killed on drop.
//!
//! * a provider `kill -9`ed under load: the calls it had in flight fail at
//!   once with an error naming it, and within a second every call succeeds
//!   on the other providers;
//! * the ZooKeeper leader killed under load: not one call fails (calls never
//!   touch ZooKeeper) and every session survives the election;
//! * a provider frozen (`SIGSTOP`) longer than its session timeout: its
//!   session really expires, calls to it end at their deadline, and once it
//!   runs again it re-registers within one session timeout.
//!
//! Each test prints its measurements (`cargo test -p mprpc --test faults --
//! --nocapture`); `book/src/production/cluster.md` quotes them.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mprpc::{ErrorCode, LoadBalance, MprpcChannel, MprpcConfig, Registry, ZkClient, ZkRegistry};
use mprpc_examples::fixbug::{LoginRequest, UserServiceRpcStub};
use support::provider_process::ProviderProcess;
use support::zk_ensemble::ZkEnsemble;
use support::zk_server::ZkServer;
use tokio::runtime::Runtime;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The service the `callee` example publishes.
const SERVICE: &str = "fixbug.UserServiceRpc";

/// One finished call, as the load generator saw it.
#[derive(Debug, Clone)]
struct Call {
    /// When the stub was called.
    start: Instant,
    /// When it returned.
    end: Instant,
    /// `None` for success, else the error code and message.
    error: Option<(ErrorCode, String)>,
}

impl Call {
    /// How long the call took.
    fn took(&self) -> Duration {
        self.end - self.start
    }
}

/// Calls running in the background until [`Load::finish`].
struct Load {
    /// Tells the workers to stop after their current call.
    stop: Arc<AtomicBool>,
    /// The workers; each returns nothing, the calls go to `calls`.
    workers: Vec<tokio::task::JoinHandle<()>>,
    /// Every finished call.
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Load {
    /// Starts `workers` tasks, each calling `Login` back to back.
    fn start(rt: &Runtime, stub: &UserServiceRpcStub, workers: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let workers = (0..workers)
            .map(|_| {
                let (stub, stop, calls) = (stub.clone(), Arc::clone(&stop), Arc::clone(&calls));
                rt.spawn(async move {
                    let request = LoginRequest {
                        name: b"zhang san".to_vec(),
                        pwd: b"123456".to_vec(),
                    };
                    while !stop.load(Ordering::Relaxed) {
                        let start = Instant::now();
                        let result = stub.login(&request).await;
                        let call = Call {
                            start,
                            end: Instant::now(),
                            error: result.err().map(|e| (e.code, e.message)),
                        };
                        calls.lock().unwrap_or_else(|p| p.into_inner()).push(call);
                    }
                })
            })
            .collect();
        Load {
            stop,
            workers,
            calls,
        }
    }

    /// Stops the workers and returns every call, in completion order.
    fn finish(self, rt: &Runtime) -> Vec<Call> {
        self.stop.store(true, Ordering::Relaxed);
        rt.block_on(async {
            for w in self.workers {
                let _ = w.await;
            }
        });
        let calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        calls.clone()
    }
}

/// The test's own runtime: the caller's channel and registry live here.
fn runtime() -> std::io::Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// A caller on `zookeeper`, waiting until it sees `providers` providers.
fn caller(
    rt: &Runtime,
    zookeeper: &str,
    root: &str,
    config: &MprpcConfig,
    providers: usize,
) -> Result<(UserServiceRpcStub, Arc<ZkRegistry>), Box<dyn std::error::Error>> {
    rt.block_on(async {
        let registry = Arc::new(
            ZkRegistry::connect(
                zookeeper,
                root,
                config.zk_session_timeout(),
                Duration::from_secs(20),
            )
            .await?,
        );
        let list = registry.subscribe(SERVICE).await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while list.borrow().len() != providers && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let seen = list.borrow().len();
        if seen != providers {
            return Err(format!("caller sees {seen} providers, expected {providers}").into());
        }
        let channel = MprpcChannel::new(config, Arc::clone(&registry) as Arc<dyn Registry>);
        Ok((UserServiceRpcStub::new(channel), registry))
    })
}

// ANCHOR: cluster
/// The caller's config in these tests: ZooKeeper sessions of `session`
/// (the providers get the same), calls with a deadline of `deadline`, the
/// rest [`MprpcConfig::default`].
fn config_with(session: Duration, deadline: Duration) -> MprpcConfig {
    let mut config = MprpcConfig::default();
    config.zk_session_timeout_ms = session.as_millis() as u64;
    config.timeouts.call_ms = deadline.as_millis() as u64;
    config
}

/// What every test here starts from: provider processes registered under
/// `root`, the test's runtime, and a caller that already sees them all.
/// Dropping it kills the providers; ZooKeeper belongs to the test.
struct Cluster {
    /// The `callee` processes, in the order they started.
    providers: Vec<ProviderProcess>,
    /// The test's runtime, which runs the caller.
    rt: Runtime,
    /// The caller's stub: every call goes through discovery.
    stub: UserServiceRpcStub,
    /// The caller's registry, for its ZooKeeper session.
    registry: Arc<ZkRegistry>,
}

impl Cluster {
    /// Starts `providers` providers on `zookeeper` (one server or an
    /// ensemble), each with `config`'s session timeout, and a caller with
    /// `config` that waits until it sees every one of them.
    fn start(
        zookeeper: &str,
        root: &str,
        providers: usize,
        config: &MprpcConfig,
    ) -> Result<Cluster, Box<dyn std::error::Error>> {
        let providers = (0..providers)
            .map(|_| ProviderProcess::start(zookeeper, root, config.zk_session_timeout()))
            .collect::<Result<Vec<_>, _>>()?;
        let rt = runtime()?;
        let (stub, registry) = caller(&rt, zookeeper, root, config, providers.len())?;
        Ok(Cluster {
            providers,
            rt,
            stub,
            registry,
        })
    }
}
// ANCHOR_END: cluster

/// Milliseconds, for printing.
fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// `(ok, failed)` per second since `t0`, for the printed timeline.
fn per_second(calls: &[Call], t0: Instant) -> Vec<(usize, usize)> {
    let mut rows: Vec<(usize, usize)> = Vec::new();
    for call in calls {
        let second = call.end.saturating_duration_since(t0).as_secs() as usize;
        if rows.len() <= second {
            rows.resize(second + 1, (0, 0));
        }
        match call.error {
            None => rows[second].0 += 1,
            Some(_) => rows[second].1 += 1,
        }
    }
    rows
}

/// The calls that failed, and how long after `fault` the last of them ended.
fn failures(calls: &[Call], fault: Instant) -> (Vec<&Call>, Duration) {
    let failed: Vec<&Call> = calls.iter().filter(|c| c.error.is_some()).collect();
    let last = failed
        .iter()
        .map(|c| c.end.saturating_duration_since(fault))
        .max()
        .unwrap_or_default();
    (failed, last)
}

/// The longest stretch in `[from, to]` without any call succeeding.
fn longest_gap_without_success(calls: &[Call], from: Instant, to: Instant) -> Duration {
    let mut ends: Vec<Instant> = calls
        .iter()
        .filter(|c| c.error.is_none() && c.end >= from && c.end <= to)
        .map(|c| c.end)
        .collect();
    ends.sort();
    let mut gap = Duration::ZERO;
    let mut last = from;
    for end in ends.into_iter().chain([to]) {
        gap = gap.max(end - last);
        last = end;
    }
    gap
}

/// The provider znodes of `SERVICE` under `root`: name → owning session.
fn registered(
    rt: &Runtime,
    zookeeper: &str,
    root: &str,
) -> Result<Vec<(String, i64)>, Box<dyn std::error::Error>> {
    rt.block_on(async {
        let zk = ZkClient::start(zookeeper, Duration::from_secs(10)).await?;
        let parent = format!("{root}/{SERVICE}/providers");
        let mut out = Vec::new();
        for child in zk.get_children(&parent).await? {
            if let Some(stat) = zk.exists(&format!("{parent}/{child}")).await? {
                out.push((child, stat.ephemeral_owner));
            }
        }
        out.sort();
        let _ = zk.close().await;
        Ok(out)
    })
}

// ANCHOR: kill_test
#[test]
fn provider_killed_under_load_fails_fast_and_calls_recover_within_a_second() -> TestResult {
    const DEADLINE: Duration = Duration::from_secs(2);
    let zk = ZkServer::start()?;
    let mut config = config_with(Duration::from_secs(4), DEADLINE);
    // Round robin: the victim surely has calls in flight when it dies.
    config.load_balance = LoadBalance::RoundRobin;
    let Cluster {
        mut providers,
        rt,
        stub,
        ..
    } = Cluster::start(&zk.addr(), "/faults-kill", 3, &config)?;

    let t0 = Instant::now();
    let load = Load::start(&rt, &stub, 24);
    std::thread::sleep(Duration::from_secs(1));
    let victim = providers[2].addr().to_string();
    let killed_at = Instant::now();
    providers[2].kill()?; // SIGKILL, then reaped
    std::thread::sleep(Duration::from_secs(2));
    let calls = load.finish(&rt);
    // ANCHOR_END: kill_test

    let before: Vec<&Call> = calls.iter().filter(|c| c.end < killed_at).collect();
    let (failed, last_failure) = failures(&calls, killed_at);
    let after_1s: Vec<&Call> = calls
        .iter()
        .filter(|c| c.start >= killed_at + Duration::from_secs(1))
        .collect();
    let slowest_failure = failed.iter().map(|c| c.took()).max().unwrap_or_default();
    let gap = longest_gap_without_success(&calls, killed_at, killed_at + Duration::from_secs(2));
    eprintln!(
        "kill -9 of 1 of 3 providers, 24 callers, deadline {} ms: {} calls, {} failed \
         (slowest failure {} ms, last failure {} ms after the kill), longest time without \
         a successful call {} ms; per second (ok, failed): {:?}",
        ms(DEADLINE),
        calls.len(),
        failed.len(),
        ms(slowest_failure),
        ms(last_failure),
        ms(gap),
        per_second(&calls, t0)
    );
    for call in failed.iter().take(3) {
        eprintln!("  e.g. {:?}", call.error);
    }

    assert!(
        before.len() > 100,
        "load ran before the kill: {}",
        before.len()
    );
    assert!(
        before.iter().all(|c| c.error.is_none()),
        "no call failed before the kill"
    );
    for call in &failed {
        let Some((code, message)) = &call.error else {
            continue;
        };
        // Fail fast: the kernel reset the connection, nobody waits for the
        // deadline.
        assert!(
            *code != ErrorCode::DeadlineExceeded && call.took() < DEADLINE / 2,
            "a call on the killed provider hung: {code:?} {message} after {:?}",
            call.took()
        );
        assert!(
            message.contains(&victim),
            "the error names the dead provider {victim}: {message}"
        );
    }
    assert!(
        last_failure < Duration::from_secs(1),
        "calls still failed {last_failure:?} after the kill"
    );
    assert!(
        gap < Duration::from_secs(1),
        "no call succeeded for {gap:?} after the kill"
    );
    assert!(
        after_1s.len() > 100 && after_1s.iter().all(|c| c.error.is_none()),
        "from 1 s after the kill every call succeeds ({} calls)",
        after_1s.len()
    );
    Ok(())
}

// ANCHOR: leader_test
#[test]
fn zookeeper_leader_killed_under_load_fails_no_call() -> TestResult {
    let mut ensemble = ZkEnsemble::start(3)?;
    let zookeeper = ensemble.connect_string();
    let root = "/faults-leader";
    // Long enough to ride out an election (about a second here) and the
    // clients' reconnects to another server.
    let session = Duration::from_secs(10);
    let config = config_with(session, Duration::from_secs(2));
    let Cluster {
        providers: _providers,
        rt,
        stub,
        registry,
    } = Cluster::start(&zookeeper, root, 3, &config)?;
    let sessions_before = registered(&rt, &zookeeper, root)?;
    let caller_session = registry.session_id();

    let t0 = Instant::now();
    let load = Load::start(&rt, &stub, 24);
    std::thread::sleep(Duration::from_secs(1));
    let leader = ensemble.leader().ok_or("no leader")?;
    let killed_at = Instant::now();
    ensemble.kill(leader)?;
    let new_leader = ensemble.wait_for_quorum(Duration::from_secs(20))?;
    let elected_after = killed_at.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    let calls = load.finish(&rt);
    let sessions_after = registered(&rt, &zookeeper, root)?;
    // ANCHOR_END: leader_test

    let (failed, _) = failures(&calls, killed_at);
    let during = calls
        .iter()
        .filter(|c| c.end >= killed_at && c.end <= killed_at + elected_after)
        .count();
    eprintln!(
        "ZooKeeper leader (server {}) killed under load: new leader server {} after {} ms; \
         {} calls, {} during the election, {} failed; per second (ok, failed): {:?}",
        leader + 1,
        new_leader + 1,
        ms(elected_after),
        calls.len(),
        during,
        failed.len(),
        per_second(&calls, t0)
    );
    assert!(
        failed.is_empty(),
        "{} calls failed, e.g. {:?}",
        failed.len(),
        failed.first()
    );
    assert!(calls.len() > 300, "load ran: {} calls", calls.len());
    assert_ne!(new_leader, leader);
    assert_eq!(sessions_before.len(), 3, "{sessions_before:?}");
    assert_eq!(
        sessions_before, sessions_after,
        "the providers' znodes and sessions survived the failover"
    );
    assert_eq!(
        registry.session_id(),
        caller_session,
        "the caller's session survived the failover"
    );
    Ok(())
}

// ANCHOR: expiry_test
#[test]
fn provider_frozen_past_its_session_timeout_reregisters_within_one_timeout() -> TestResult {
    const DEADLINE: Duration = Duration::from_secs(1);
    let zk = ZkServer::start()?;
    let root = "/faults-expiry";
    let session = Duration::from_secs(2);
    let Cluster {
        providers,
        rt,
        stub,
        ..
    } = Cluster::start(&zk.addr(), root, 2, &config_with(session, DEADLINE))?;
    let frozen = &providers[0]; // the other one stays healthy
    let owner = |rt: &Runtime| -> Result<Option<i64>, Box<dyn std::error::Error>> {
        Ok(registered(rt, &zk.addr(), root)?
            .into_iter()
            .find(|(name, _)| name == frozen.addr())
            .map(|(_, session)| session))
    };
    let old_session = owner(&rt)?.ok_or("frozen provider not registered")?;

    let t0 = Instant::now();
    let load = Load::start(&rt, &stub, 8);
    std::thread::sleep(Duration::from_millis(500));
    let paused_at = Instant::now();
    frozen.pause()?; // SIGSTOP: no pings, no answers, sockets stay open
    // Proof that the session expired: ZooKeeper deletes its ephemeral znode.
    while owner(&rt)?.is_some() {
        if paused_at.elapsed() > session * 4 {
            return Err("the frozen provider's session never expired".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let expired_after = paused_at.elapsed();
    let resumed_at = Instant::now();
    frozen.resume()?;
    let new_session = loop {
        match owner(&rt)? {
            Some(s) => break s,
            None if resumed_at.elapsed() > session * 5 => {
                return Err("the provider never re-registered".into());
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let back_after = resumed_at.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let calls = load.finish(&rt);
    // ANCHOR_END: expiry_test

    let (failed, last_failure) = failures(&calls, paused_at);
    let slowest = calls.iter().map(Call::took).max().unwrap_or_default();
    eprintln!(
        "SIGSTOP of 1 of 2 providers, session {} ms, deadline {} ms: session expired {} ms \
         after the pause; re-registered {} ms after SIGCONT (session {old_session:#x} -> \
         {new_session:#x}); {} calls, {} failed (all at the deadline; last {} ms after the \
         pause), slowest call {} ms; per second (ok, failed): {:?}",
        ms(session),
        ms(DEADLINE),
        ms(expired_after),
        ms(back_after),
        calls.len(),
        failed.len(),
        ms(last_failure),
        ms(slowest),
        per_second(&calls, t0)
    );

    // ZooKeeper counts from the last ping it heard (the client pings every
    // 3/20 of the timeout) and expires sessions on its 500 ms ticks, so the
    // znode may go a little before a full timeout after the pause.
    assert!(
        expired_after + Duration::from_millis(500) >= session,
        "expired after {expired_after:?}"
    );
    assert_ne!(new_session, old_session, "a new session owns the znode");
    assert!(
        back_after < session,
        "re-registered {back_after:?} after SIGCONT; the session timeout is {session:?}"
    );
    assert!(
        frozen
            .output()
            .contains("re-registered fixbug.UserServiceRpc"),
        "the provider logged its re-registration"
    );
    // A frozen provider cannot reset anything: its calls end at the caller's
    // deadline, never later.
    assert!(
        slowest < DEADLINE + Duration::from_millis(300),
        "a call took {slowest:?}, deadline {DEADLINE:?}"
    );
    for call in &failed {
        assert!(
            matches!(call.error, Some((ErrorCode::DeadlineExceeded, _))),
            "{:?}",
            call.error
        );
    }
    let late: Vec<&Call> = calls
        .iter()
        .filter(|c| c.start > resumed_at + back_after && c.error.is_some())
        .collect();
    assert!(late.is_empty(), "calls failed after it came back: {late:?}");
    Ok(())
}

// ANCHOR: silent_test
#[test]
fn frozen_provider_is_avoided_after_one_deadline_not_one_session() -> TestResult {
    // A frozen process (or a host that dropped off the network) resets
    // nothing: only deadlines tell the caller, and ZooKeeper only after a
    // whole session timeout. The caller must not wait for ZooKeeper.
    const DEADLINE: Duration = Duration::from_millis(500);
    let zk = ZkServer::start()?;
    let session = Duration::from_secs(6);
    let Cluster {
        providers,
        rt,
        stub,
        ..
    } = Cluster::start(
        &zk.addr(),
        "/faults-silent",
        2,
        &config_with(session, DEADLINE),
    )?;
    let frozen = &providers[0]; // the other one stays healthy

    let load = Load::start(&rt, &stub, 16);
    std::thread::sleep(Duration::from_millis(500));
    let paused_at = Instant::now();
    frozen.pause()?;
    std::thread::sleep(Duration::from_secs(3));
    let calls = load.finish(&rt);
    frozen.resume()?;
    // ANCHOR_END: silent_test

    let (failed, last_failure) = failures(&calls, paused_at);
    eprintln!(
        "SIGSTOP of 1 of 2 providers, session {} ms, deadline {} ms, 16 callers: {} calls, \
         {} failed, last failure {} ms after the pause",
        ms(session),
        ms(DEADLINE),
        calls.len(),
        failed.len(),
        ms(last_failure)
    );
    assert!(
        // Calls sent before the first deadline passed wait out their own.
        last_failure < DEADLINE * 2 + Duration::from_millis(500),
        "calls kept failing for {last_failure:?} after the provider froze \
         (deadline {DEADLINE:?}, session {session:?})"
    );
    assert!(
        failed.len() <= 32,
        "{} calls failed; at most the ones in flight on it",
        failed.len()
    );
    Ok(())
}
