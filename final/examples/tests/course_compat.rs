//! Migrating from the C++ course one process at a time (`[course_compat]`),
//! against a REAL ZooKeeper and the course's layout as step 12 builds it:
//! step 12's `callee` and `caller` run as child processes, final/ providers
//! and callers in this process.
//!
//! * a mixed service: step 12's callee (course format, `/<Service>/<Method>`)
//!   and a final/ provider of the same service; a final/ caller with
//!   `discover = true` spreads 1,000 calls over both without a failure, and
//!   stopping either leaves the other serving;
//! * step 12's caller finds and calls a final/ provider registered with
//!   `register = true`; its nodes go on graceful shutdown;
//! * a course method node held by another live session is left alone,
//!   watched, and taken when it is deleted;
//! * a `course://` static address, and every way a course-format call can
//!   fail, each a clear error in the controller.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use mprpc::{
    CallContext, ErrorCode, LoadBalance, MprpcChannel, MprpcConfig, MprpcController, ProviderList,
    Registry, RpcProvider, RunningProvider, StaticRegistry, Status, ZkClient, ZkRegistry,
};
use mprpc_examples::fixbug::{
    FriendServiceRpcServer, FriendServiceRpcStub, GetFriendsListRequest, LoginRequest,
    LoginResponse, RegisterRequest, RegisterResponse, UserServiceRpc, UserServiceRpcServer,
    UserServiceRpcStub,
};
use support::harness::runtime;
use support::zk_server::{ZkServer, free_port};
use tempfile::TempDir;
use tokio::sync::watch;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Session timeout of every process here: short, so that a killed course
/// provider's node goes within seconds.
const SESSION: Duration = Duration::from_secs(4);

/// Calls a [`Counting`] service served.
#[derive(Debug, Default)]
struct Hits {
    /// All Login calls.
    all: AtomicUsize,
    /// Those that came in the course's format.
    legacy: AtomicUsize,
}

impl Hits {
    /// All Login calls so far.
    fn all(&self) -> usize {
        self.all.load(Ordering::SeqCst)
    }
}

/// Counts the calls it serves; answers like the demo service.
struct Counting(Arc<Hits>);

impl UserServiceRpc for Counting {
    async fn login(
        &self,
        ctx: CallContext,
        _request: LoginRequest,
    ) -> Result<LoginResponse, Status> {
        self.0.all.fetch_add(1, Ordering::SeqCst);
        if ctx.legacy {
            self.0.legacy.fetch_add(1, Ordering::SeqCst);
        }
        Ok(LoginResponse {
            result: Some(Default::default()),
            success: false,
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

/// A final/ config talking to `zk`, course keys as given.
fn final_config(zk: &ZkServer, register: bool, discover: bool) -> MprpcConfig {
    let text = format!(
        "rpcserverip = \"127.0.0.1\"\nrpcserverport = 0\nzookeeperip = \"127.0.0.1\"\n\
         zookeeperport = {}\nzk_session_timeout_ms = {}\n\
         [timeouts]\ncall_ms = 3000\nzk_connect_ms = 20000\n\
         [course_compat]\nregister = {register}\ndiscover = {discover}\n",
        zk.port(),
        SESSION.as_millis()
    );
    match MprpcConfig::from_toml(&text) {
        Ok(c) => c,
        Err(e) => panic!("test config rejected: {e}"),
    }
}

/// Starts a final/ provider of `UserServiceRpc` counting its calls.
async fn final_provider(
    config: MprpcConfig,
    hits: &Arc<Hits>,
) -> Result<RunningProvider, mprpc::Error> {
    let mut provider = RpcProvider::new(config);
    provider.notify_service(UserServiceRpcServer::new(Counting(Arc::clone(hits))));
    provider.start().await
}

/// Polls `check` every 20 ms until it is true or `limit` passes.
async fn eventually(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check().await
}

/// Data and owner session of znode `path`, `None` if absent.
async fn node(zk: &ZkClient, path: &str) -> Option<(String, i64)> {
    let stat = zk.exists(path).await.ok()??;
    let data = zk.get_data(path).await.ok()?;
    Some((
        String::from_utf8_lossy(&data).into_owned(),
        stat.ephemeral_owner,
    ))
}

fn login() -> LoginRequest {
    LoginRequest {
        name: b"zhang san".to_vec(),
        pwd: b"123456".to_vec(),
    }
}

// ---------------------------------------------------------------------------
// Step 12's programs as child processes.

/// Step 12's binary `name` ("callee", "caller"), built by the cargo
/// running the tests (once per test binary).
fn step12_binary(name: &str) -> std::io::Result<PathBuf> {
    support::provider_process::package_binary("step-12", name)
}

/// Writes step 12's config (the course's four keys) into `dir`.
fn step12_config(dir: &Path, port: u16, zk: &ZkServer) -> std::io::Result<PathBuf> {
    let path = dir.join("mprpc.toml");
    std::fs::write(
        &path,
        format!(
            "rpcserverip = \"127.0.0.1\"\nrpcserverport = {port}\nzookeeperip = \"127.0.0.1\"\n\
             zookeeperport = {}\nzk_session_timeout_ms = {}\n",
            zk.port(),
            SESSION.as_millis()
        ),
    )?;
    Ok(path)
}

/// Step 12's callee: `UserServiceRpc` and `FriendServiceRpc` in the course's
/// format, registered in the course's layout. Killed on drop.
struct CourseCallee {
    /// The process, until killed.
    child: Option<Child>,
    /// Config, logs, output.
    dir: TempDir,
    /// "127.0.0.1:port".
    addr: String,
}

impl CourseCallee {
    /// Starts it and waits until `/UserServiceRpc/Login` names it.
    async fn start(
        zk: &ZkServer,
        watcher: &ZkClient,
    ) -> Result<CourseCallee, Box<dyn std::error::Error>> {
        let callee = step12_binary("callee")?;
        let dir = tempfile::Builder::new()
            .prefix("step12-callee-")
            .tempdir()?;
        let port = free_port()?;
        let config = step12_config(dir.path(), port, zk)?;
        let out = std::fs::File::create(dir.path().join("output.txt"))?;
        let child = Command::new(callee)
            .arg("-i")
            .arg(&config)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()?;
        let me = CourseCallee {
            child: Some(child),
            dir,
            addr: format!("127.0.0.1:{port}"),
        };
        let addr = me.addr.clone();
        let up = eventually(Duration::from_secs(30), async || {
            node(watcher, "/UserServiceRpc/Login")
                .await
                .is_some_and(|(data, _)| data == addr)
        })
        .await;
        if !up {
            return Err(format!("step 12's callee did not register:\n{}", me.output()).into());
        }
        Ok(me)
    }

    /// `kill -9`: its session (and nodes) linger until ZooKeeper expires it.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// How many `UserServiceRpc.Login` requests its log shows.
    fn logged_calls(&self) -> usize {
        self.output()
            .matches("calls UserServiceRpc.Login with")
            .count()
    }

    /// What it printed and logged.
    fn output(&self) -> String {
        let mut out =
            std::fs::read_to_string(self.dir.path().join("output.txt")).unwrap_or_default();
        if let Ok(entries) = std::fs::read_dir(self.dir.path().join("logs")) {
            for entry in entries.flatten() {
                out.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
        out
    }
}

impl Drop for CourseCallee {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `n` Login calls, `workers` at a time; returns the errors.
async fn calls(stub: &UserServiceRpcStub, n: usize, workers: usize) -> Vec<String> {
    let next = AtomicUsize::new(0);
    let errors = Mutex::new(Vec::new());
    let worker = async || {
        while next.fetch_add(1, Ordering::SeqCst) < n {
            let controller = MprpcController::with_timeout(Duration::from_secs(3));
            if let Err(e) = stub.login_with(&controller, &login()).await {
                assert!(controller.failed(), "the error is not in the controller");
                errors
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(e.to_string());
            }
        }
    };
    futures_util::future::join_all((0..workers).map(|_| worker())).await;
    errors.into_inner().unwrap_or_else(|p| p.into_inner())
}

// ---------------------------------------------------------------------------

#[test]
fn mixed_service_spreads_calls_over_course_and_final_providers_and_survives_either_stopping()
-> TestResult {
    let zk = ZkServer::start()?;
    let rt = runtime()?;
    rt.block_on(async {
        let watcher = ZkClient::start(&zk.addr(), SESSION).await?;
        let mut course = CourseCallee::start(&zk, &watcher).await?;
        let (course_data, course_owner) = node(&watcher, "/UserServiceRpc/Login")
            .await
            .ok_or("no course node")?;

        // The final/ provider also asks for the course layout: the node is
        // held by step 12's live session, so it must leave it alone.
        let final_hits = Arc::new(Hits::default());
        let provider = final_provider(final_config(&zk, true, false), &final_hits).await?;
        assert_eq!(
            node(&watcher, "/UserServiceRpc/Login").await,
            Some((course_data.clone(), course_owner)),
            "a final/ provider evicted step 12's live course node"
        );

        // Round robin, so that the spread is the balancer's and not the
        // machine's: power of two choices (the default) prefers whichever
        // provider has fewer calls in flight, and a course-format call (a
        // new connection each) stays in flight longer, so under p2c the
        // share of the course provider varies with load from about 40% to
        // about 5%.
        let mut caller_config = final_config(&zk, false, true);
        caller_config.load_balance = mprpc::LoadBalance::RoundRobin;
        let channel = MprpcChannel::from_config(&caller_config).await?;
        let stub = UserServiceRpcStub::new(channel.clone());

        // 1,000 calls, 8 at a time, over both kinds of provider, balanced
        // together: each gets about half.
        let started = Instant::now();
        let errors = calls(&stub, 1000, 8).await;
        let to_final = final_hits.all();
        let to_course = 1000 - to_final.min(1000);
        println!(
            "1,000 calls in {:?}: {to_final} to final/ {}, {to_course} to step 12 {} (course format), {} failed",
            started.elapsed(),
            provider.address(),
            course.addr,
            errors.len()
        );
        assert!(errors.is_empty(), "failed calls: {errors:?}");
        assert!(
            to_final >= 400 && to_course >= 400,
            "calls not spread: {to_final} final/, {to_course} course"
        );
        // Step 12's own log confirms the rest reached it, in its (the
        // course's) format: it logs every request it parsed. Its logger
        // writes asynchronously, so give it a moment.
        let logged = eventually(Duration::from_secs(5), async || {
            course.logged_calls() == to_course
        })
        .await;
        assert!(
            logged,
            "step 12 logged {} Login calls, expected {to_course}",
            course.logged_calls()
        );

        // A static `course://` address reaches the course's callee too.
        let static_channel = MprpcChannel::direct(&format!("course://{}", course.addr));
        let reply = UserServiceRpcStub::new(static_channel).login(&login()).await?;
        assert!(reply.result.is_some(), "the course's reply was not decoded");

        // Stop the final/ provider: the course's callee serves alone.
        provider.shutdown().await?;
        let before = final_hits.all();
        let errors = calls(&stub, 200, 4).await;
        assert!(errors.is_empty(), "after stopping final/: {errors:?}");
        assert_eq!(final_hits.all(), before);

        // Back again; then kill step 12's callee (its node lingers until its
        // session expires): final/ serves alone, every call succeeds, and
        // final/ takes the course node once it is gone.
        let provider = final_provider(final_config(&zk, true, false), &final_hits).await?;
        let errors = calls(&stub, 200, 4).await;
        assert!(errors.is_empty(), "with both again: {errors:?}");
        course.kill();
        let before = final_hits.all();
        let errors = calls(&stub, 200, 4).await;
        assert!(errors.is_empty(), "after killing step 12's callee: {errors:?}");
        assert_eq!(final_hits.all() - before, 200);
        let mine = provider.address().to_string();
        let taken = eventually(SESSION * 3, async || {
            node(&watcher, "/UserServiceRpc/Login")
                .await
                .is_some_and(|(data, _)| data == mine)
        })
        .await;
        assert!(taken, "final/ did not take the course node after step 12's session expired");
        // Now final/ is both a framed provider and the course node's address:
        // the caller reaches it framed, never in the course's format.
        let errors = calls(&stub, 100, 4).await;
        assert!(errors.is_empty(), "after the takeover: {errors:?}");
        assert_eq!(
            final_hits.legacy.load(Ordering::SeqCst),
            0,
            "a final/ caller used the course format with a final/ provider"
        );
        provider.shutdown().await?;
        assert_eq!(node(&watcher, "/UserServiceRpc/Login").await, None);
        Ok(())
    })
}

#[test]
fn step12_caller_finds_and_calls_a_final_provider_registered_in_the_course_layout() -> TestResult {
    let zk = ZkServer::start()?;
    let rt = runtime()?;
    rt.block_on(async {
        let mut provider = RpcProvider::new(final_config(&zk, true, false));
        provider.notify_service(UserServiceRpcServer::new(
            mprpc_examples::UserService::default(),
        ));
        provider.notify_service(FriendServiceRpcServer::new(mprpc_examples::FriendService));
        let provider = provider.start().await?;
        let addr = provider.address().to_string();

        // The course's layout, exactly: short names, persistent service
        // node, ephemeral method nodes holding "ip:port" and nothing else.
        let watcher = ZkClient::start(&zk.addr(), SESSION).await?;
        let service = watcher
            .exists("/UserServiceRpc")
            .await?
            .ok_or("no /UserServiceRpc")?;
        assert_eq!(
            service.ephemeral_owner, 0,
            "/UserServiceRpc must be persistent"
        );
        for path in [
            "/UserServiceRpc/Login",
            "/UserServiceRpc/Register",
            "/FriendServiceRpc/GetFriendsList",
        ] {
            let stat = watcher.exists(path).await?.ok_or(format!("no {path}"))?;
            assert_ne!(stat.ephemeral_owner, 0, "{path} must be ephemeral");
            assert_eq!(watcher.get_data(path).await?, addr.as_bytes(), "{path}");
        }

        let caller = step12_binary("caller")?;
        let dir = tempfile::Builder::new()
            .prefix("step12-caller-")
            .tempdir()?;
        let config = step12_config(dir.path(), free_port()?, &zk)?;
        let output = tokio::task::spawn_blocking(move || {
            Command::new(caller)
                .arg("-i")
                .arg(&config)
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .output()
        })
        .await??;
        let stdout = String::from_utf8_lossy(&output.stdout);
        println!("step 12's caller:\n{stdout}");
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        for line in [
            "Login zhang san/123456: success = false",
            "Register 4099 zhang san/888888: success = true",
            "Login zhang san/888888: success = true",
            "GetFriendsList 1000: [gao yang, liu hong, wang shuo]",
        ] {
            assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
        }

        // Graceful shutdown takes the method nodes away; the persistent
        // service node stays, as in the course.
        provider.shutdown().await?;
        assert_eq!(node(&watcher, "/UserServiceRpc/Login").await, None);
        assert!(watcher.exists("/UserServiceRpc").await?.is_some());
        Ok(())
    })
}

#[test]
fn a_course_node_held_by_another_live_session_is_left_alone_and_taken_when_deleted() -> TestResult {
    let zk = ZkServer::start()?;
    let rt = runtime()?;
    rt.block_on(async {
        let watcher = ZkClient::start(&zk.addr(), SESSION).await?;
        // Another session (a course provider, say) holds the Login node.
        let other = ZkClient::start(&zk.addr(), SESSION).await?;
        other
            .create(
                "/UserServiceRpc",
                b"",
                mprpc::zk_client::CreateMode::Persistent,
            )
            .await?;
        other
            .create(
                "/UserServiceRpc/Login",
                b"127.0.0.1:1",
                mprpc::zk_client::CreateMode::Ephemeral,
            )
            .await?;
        let held = node(&watcher, "/UserServiceRpc/Login").await;

        let a_hits = Arc::new(Hits::default());
        let a = final_provider(final_config(&zk, true, false), &a_hits).await?;
        let b_hits = Arc::new(Hits::default());
        let b = final_provider(final_config(&zk, true, false), &b_hits).await?;
        assert_eq!(
            node(&watcher, "/UserServiceRpc/Login").await,
            held,
            "evicted"
        );
        // Register was free: the first final/ provider has it.
        assert_eq!(
            node(&watcher, "/UserServiceRpc/Register")
                .await
                .map(|(d, _)| d),
            Some(a.address().to_string())
        );
        // Both keep serving and stay registered for final/ callers.
        let providers = watcher
            .get_children("/mprpc/fixbug.UserServiceRpc/providers")
            .await?;
        assert_eq!(providers.len(), 2, "{providers:?}");

        // The holder goes: one of ours takes Login within moments (a watch,
        // not a session timeout).
        let gone = Instant::now();
        other.close().await?;
        let ours = [a.address().to_string(), b.address().to_string()];
        let taken = eventually(Duration::from_secs(3), async || {
            node(&watcher, "/UserServiceRpc/Login")
                .await
                .is_some_and(|(data, _)| ours.contains(&data))
        })
        .await;
        assert!(
            taken,
            "nobody took /UserServiceRpc/Login after its holder left"
        );
        println!(
            "course node taken over {:?} after its holder left",
            gone.elapsed()
        );

        // The first provider stops: the second takes Register over.
        let b_addr = b.address().to_string();
        a.shutdown().await?;
        let taken = eventually(Duration::from_secs(3), async || {
            node(&watcher, "/UserServiceRpc/Register")
                .await
                .is_some_and(|(data, _)| data == b_addr)
        })
        .await;
        assert!(
            taken,
            "the second provider did not take /UserServiceRpc/Register"
        );
        b.shutdown().await?;
        assert_eq!(node(&watcher, "/UserServiceRpc/Register").await, None);
        Ok(())
    })
}

#[test]
fn course_nodes_come_back_after_session_expiry_and_callers_follow() -> TestResult {
    let mut zk = ZkServer::start()?;
    let rt = runtime()?;
    let config = final_config(&zk, true, false);
    let hits = Arc::new(Hits::default());
    let (registry, provider) = rt.block_on(async {
        let registry = Arc::new(ZkRegistry::from_config(&config).await?);
        let mut provider = RpcProvider::new(config.clone()).with_registry(registry.clone());
        provider.notify_service(UserServiceRpcServer::new(Counting(Arc::clone(&hits))));
        Ok::<_, mprpc::Error>((registry, provider.start().await?))
    })?;
    // A caller that knows the provider only from the course layout: its
    // framed registry is a static table without the service.
    let caller_config = final_config(&zk, false, true);
    let channel = rt.block_on(async {
        let course_only = Arc::new(ZkRegistry::from_config(&caller_config).await?);
        Ok::<_, mprpc::Error>(MprpcChannel::new(
            &caller_config,
            Arc::new(CourseOnly(course_only)),
        ))
    })?;
    // Nobody provides FriendServiceRpc: the error says where it looked.
    let friends = FriendServiceRpcStub::new(channel.clone());
    let missing = rt.block_on(friends.get_friends_list(&GetFriendsListRequest { userid: 1 }));
    assert!(
        matches!(&missing, Err(e) if e.code == ErrorCode::NoProvider
            && e.message.contains("/FriendServiceRpc/GetFriendsList")),
        "{missing:?}"
    );
    let stub = UserServiceRpcStub::new(channel);
    rt.block_on(stub.login(&login()))?;

    let (old, new) = support::harness::expire_session(&mut zk, SESSION, &registry)?;
    assert_ne!(old, new, "no new session after expiry");
    rt.block_on(async {
        let watcher = ZkClient::start(&zk.addr(), SESSION).await?;
        let addr = provider.address().to_string();
        let back = eventually(Duration::from_secs(10), async || {
            node(&watcher, "/UserServiceRpc/Login").await == Some((addr.clone(), new))
        })
        .await;
        assert!(
            back,
            "/UserServiceRpc/Login not re-created on the new session {new:#x}"
        );
        // The caller's course watch re-armed on its own new session.
        let before = hits.all();
        let answered = eventually(Duration::from_secs(10), async || {
            stub.login(&login()).await.is_ok()
        })
        .await;
        assert!(
            answered,
            "the caller lost the course-layout provider after expiry"
        );
        assert!(hits.all() > before);
        provider.shutdown().await?;
        Ok(())
    })
}

#[test]
fn with_zk_auth_course_providers_can_still_register_but_not_evict() -> TestResult {
    let zk = ZkServer::start()?;
    let rt = runtime()?;
    rt.block_on(async {
        let mut config = final_config(&zk, true, false);
        config.zk_auth = Some(mprpc::config::Secret::new("mprpc:pw"));
        let hits = Arc::new(Hits::default());
        let provider = final_provider(config, &hits).await?;
        // A course provider has no credential: it can add its method node
        // under the /<Service> final/ created...
        let course = ZkClient::start(&zk.addr(), SESSION).await?;
        course
            .create(
                "/UserServiceRpc/Logout",
                b"127.0.0.1:1",
                mprpc::zk_client::CreateMode::Ephemeral,
            )
            .await?;
        // ...but cannot delete the one final/ holds, nor change it.
        let denied = course.delete("/UserServiceRpc/Login").await;
        assert!(
            matches!(denied, Err(mprpc::zk_client::ZkError::NoAuth { .. })),
            "{denied:?}"
        );
        assert_eq!(
            node(&course, "/UserServiceRpc/Login").await.map(|(d, _)| d),
            Some(provider.address().to_string())
        );
        provider.shutdown().await?;
        Ok(())
    })
}

/// A registry whose framed lists are always empty: the channel can only
/// find providers through the course layout of the registry it wraps.
#[derive(Debug)]
struct CourseOnly(Arc<ZkRegistry>);

impl Registry for CourseOnly {
    fn register<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, Result<(), mprpc::Error>> {
        Box::pin(async { Ok(()) })
    }

    fn deregister<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, Result<(), mprpc::Error>> {
        Box::pin(async { Ok(()) })
    }

    fn subscribe<'a>(
        &'a self,
        _: &'a str,
    ) -> BoxFuture<'a, Result<watch::Receiver<ProviderList>, mprpc::Error>> {
        Box::pin(async { Ok(watch::channel(ProviderList::from(Vec::new())).1) })
    }

    fn subscribe_course<'a>(
        &'a self,
        service: &'a str,
        method: &'a str,
    ) -> BoxFuture<'a, Result<watch::Receiver<ProviderList>, mprpc::Error>> {
        self.0.subscribe_course(service, method)
    }
}

/// A fake course provider on a free port: reads the request, then runs
/// `answer` on the stream.
fn fake_course_provider(answer: fn(&mut std::net::TcpStream)) -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 256];
            let _ = stream.read(&mut buf);
            answer(&mut stream);
        }
    });
    Ok(addr)
}

#[tokio::test]
async fn course_format_calls_fail_clearly_never_as_success() -> TestResult {
    let mut config = MprpcConfig::default();
    config.limits.max_frame_size = 4096;
    let call = async |addr: &str, timeout: Duration| {
        let stub = UserServiceRpcStub::new(MprpcChannel::direct_with(
            &config,
            &format!("course://{addr}"),
        ));
        let controller = MprpcController::with_timeout(timeout);
        let started = Instant::now();
        let result = stub.login_with(&controller, &login()).await;
        (result, controller, started.elapsed())
    };

    // Closed without a byte: the course took that for an all-default reply.
    let addr = fake_course_provider(|_| {})?;
    let (result, controller, _) = call(&addr, Duration::from_secs(2)).await;
    assert!(result.is_err(), "an empty reply was taken for success");
    assert!(controller.failed());
    assert_eq!(controller.error_code(), ErrorCode::BadResponse);
    assert!(
        controller.error_text().contains("without replying"),
        "{}",
        controller.error_text()
    );

    // Longer than max_fr_size: cut off, not buffered.
    let addr = fake_course_provider(|s| {
        let _ = s.write_all(&[0x0a; 5000]);
    })?;
    let (_, controller, _) = call(&addr, Duration::from_secs(2)).await;
    assert_eq!(
        controller.error_code(),
        ErrorCode::FrameTooLarge,
        "{}",
        controller.error_text()
    );

    // Silent (the course's provider on an unknown method): the deadline.
    let addr = fake_course_provider(|_| std::thread::sleep(Duration::from_secs(5)))?;
    let (_, controller, took) = call(&addr, Duration::from_millis(300)).await;
    assert_eq!(controller.error_code(), ErrorCode::DeadlineExceeded);
    assert!(
        took < Duration::from_secs(2),
        "deadline not enforced: {took:?}"
    );

    // Silent, and the call has no deadline at all: timeouts.idle_ms ends it.
    let mut no_deadline = MprpcConfig::default();
    no_deadline.timeouts.call_ms = 0;
    no_deadline.timeouts.idle_ms = 300;
    let stub = UserServiceRpcStub::new(MprpcChannel::direct_with(
        &no_deadline,
        &format!("course://{addr}"),
    ));
    let started = Instant::now();
    let result = stub.login(&login()).await;
    assert!(
        matches!(&result, Err(e) if e.code == ErrorCode::DeadlineExceeded && e.message.contains("idle_ms")),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    // Nobody listening: a transport error naming the address.
    let port = free_port()?;
    let (_, controller, _) = call(&format!("127.0.0.1:{port}"), Duration::from_secs(2)).await;
    assert_eq!(controller.error_code(), ErrorCode::Transport);
    assert!(controller.error_text().contains(&port.to_string()));

    // Garbage that is not protobuf.
    let addr = fake_course_provider(|s| {
        let _ = s.write_all(&[0xff; 8]);
    })?;
    let (_, controller, _) = call(&addr, Duration::from_secs(2)).await;
    assert_eq!(controller.error_code(), ErrorCode::BadResponse);
    Ok(())
}

/// A course provider that stops answering is avoided after one missed
/// deadline, as a silent framed provider is (`faults.rs`), instead of being
/// given every other call: round robin over a silent and an answering one,
/// six calls, exactly one deadline.
#[tokio::test]
async fn a_silent_course_provider_is_avoided_after_one_missed_deadline() -> TestResult {
    let silent = fake_course_provider(|_| std::thread::sleep(Duration::from_secs(5)))?;
    let answering = fake_course_provider(|s| {
        let reply = LoginResponse {
            success: true,
            ..Default::default()
        };
        let _ = s.write_all(&mprpc::prost::Message::encode_to_vec(&reply));
    })?;
    let mut config = MprpcConfig::default();
    config.load_balance = LoadBalance::RoundRobin;
    config.timeouts.eject_ms = 60_000;
    let registry = StaticRegistry::everything_at([
        format!("course://{silent}"),
        format!("course://{answering}"),
    ]);
    let stub = UserServiceRpcStub::new(MprpcChannel::new(&config, Arc::new(registry)));
    let mut missed = 0;
    for _ in 0..6 {
        let controller = MprpcController::with_timeout(Duration::from_millis(300));
        match stub.login_with(&controller, &login()).await {
            Ok(reply) => assert!(reply.success),
            Err(e) => {
                assert_eq!(e.code, ErrorCode::DeadlineExceeded, "{e}");
                missed += 1;
            }
        }
    }
    assert_eq!(missed, 1, "the silent course provider was not avoided");
    Ok(())
}

#[test]
fn course_compat_keys_are_exactly_register_and_discover() {
    let ok = MprpcConfig::from_toml(
        "zookeeperip = \"127.0.0.1\"\n[course_compat]\nregister = true\ndiscover = true\n",
    );
    assert!(matches!(ok, Ok(ref c) if c.course_compat.register && c.course_compat.discover));
    let typo = MprpcConfig::from_toml("zookeeperip = \"h\"\n[course_compat]\nregistr = true\n");
    assert!(typo.is_err(), "a misspelt key was accepted");
    let no_zk = MprpcConfig::from_toml("[course_compat]\ndiscover = true\n");
    assert!(
        matches!(&no_zk, Err(e) if e.to_string().contains("zookeeperip")),
        "{no_zk:?}"
    );
    let static_course = MprpcConfig::from_toml(
        "[static_registry]\nUserServiceRpc = [\"course://127.0.0.1:8000\", \"127.0.0.1:8001\"]\n",
    );
    assert!(static_course.is_ok(), "{static_course:?}");
    let bad = MprpcConfig::from_toml("[static_registry]\nUserServiceRpc = [\"http://x:1\"]\n");
    assert!(bad.is_err(), "an unknown scheme was accepted");
}
