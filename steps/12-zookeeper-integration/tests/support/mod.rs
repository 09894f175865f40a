//! Helpers shared by this step's integration tests: a config, and a
//! provider started on 127.0.0.1 with a port the system picks whose log
//! goes to a recorder. The harness itself (the recorder, raw clients, the
//! course's captures, ZooKeeper) is the shared crate `tools/testkit`.

// Each test file compiles this module separately and uses only part of it.
#![allow(dead_code, unused_imports)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use step::config::MprpcConfig;
use step::fixbug::{FriendServiceRpcServer, UserServiceRpcServer};
use step::logger::{LogGuard, Logger};
use step::provider::{Level, ProviderHandle, RpcProvider};
use step::user_service::{FriendService, UserService};
use step::zk_client::ZkClient;
pub use testkit::{
    ZkServer, block_on, call_raw, capture, connect, frame, log_file, read_reply, scripted_provider,
};

/// The provider's log so far: level and text of each line.
pub type Lines = Vec<(Level, String)>;

/// Collects the provider's log lines so a test can wait for one.
pub type Recorder = testkit::Recorder<Level>;

/// A config for 127.0.0.1:`port`; also sends the process-wide log out of
/// the way ([`log_in_target_dir`]): every test comes here first.
pub fn config(port: u16) -> MprpcConfig {
    log_in_target_dir();
    MprpcConfig {
        rpcserverip: [127, 0, 0, 1].into(),
        rpcserverport: port,
        zookeeperip: "127.0.0.1".to_string(),
        zookeeperport: 2181,
        zk_session_timeout_ms: 30_000,
    }
}

/// A config for 127.0.0.1:`port` (0: any) naming `zookeeper`, asking for `session_timeout`.
pub fn zk_config(port: u16, zookeeper: &ZkServer, session_timeout: Duration) -> MprpcConfig {
    MprpcConfig {
        zookeeperport: zookeeper.port(),
        zk_session_timeout_ms: u64::try_from(session_timeout.as_millis()).expect("a short timeout"),
        ..config(port)
    }
}

/// Starts the process-wide logger in `<target>/tmp/step-NN-logs`, once
/// per test binary, so that tests leave no `logs/` folder in the step. An
/// existing logger (a test made it on purpose) stays; the guard is never
/// dropped (a test binary needs no last flush).
pub fn log_in_target_dir() {
    static GUARD: OnceLock<Option<LogGuard>> = OnceLock::new();
    GUARD.get_or_init(|| {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(concat!(env!("CARGO_PKG_NAME"), "-logs"));
        Logger::init(dir).ok()
    });
}

/// A provider on 127.0.0.1 with a port the system picks.
pub fn start_provider() -> (ProviderHandle, Recorder) {
    start_provider_with(|_| {})
}

/// A provider on 127.0.0.1 with a port the system picks, set up by
/// `configure` before it starts.
pub fn start_provider_with(configure: impl FnOnce(&mut RpcProvider)) -> (ProviderHandle, Recorder) {
    let recorder = Recorder::default();
    let mut provider = RpcProvider::new(&config(0));
    provider.set_thread_num(4);
    provider.set_log_sink(recorder.sink());
    configure(&mut provider);
    let handle = provider
        .start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("start the provider");
    recorder.wait_for("RpcProvider listening on 127.0.0.1:");
    (handle, recorder)
}

/// A provider publishing the example services, on 127.0.0.1 with a port
/// the system picks; `configure` may change its settings first.
pub fn start_services_with(configure: impl FnOnce(&mut RpcProvider)) -> (ProviderHandle, Recorder) {
    start_provider_with(|provider| {
        provider
            .notify_service(UserServiceRpcServer(UserService::default()))
            .expect("publish UserServiceRpc");
        provider
            .notify_service(FriendServiceRpcServer(FriendService))
            .expect("publish FriendServiceRpc");
        configure(provider);
    })
}

/// [`start_services_with`] with the default settings.
pub fn start_services() -> (ProviderHandle, Recorder) {
    start_services_with(|_| {})
}

/// The course's Login capture still gets the course's reply: the provider
/// is healthy after whatever the test did to it.
pub fn assert_good_call(addr: SocketAddr) {
    assert_eq!(call_raw(addr, &capture("request")), capture("response"));
}
