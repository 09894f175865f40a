//! Service discovery against a real ZooKeeper (one per test): providers
//! register the course's znodes, callers find them there, and every way
//! this can go wrong ends in a clear error within a bound.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use step::channel::{ChannelError, MprpcChannel};
use step::controller::MprpcController;
use step::fixbug::{
    FriendServiceRpcServer, LoginRequest, LoginResponse, USER_SERVICE_RPC_DESCRIPTOR,
    UserServiceRpcServer, UserServiceRpcStub,
};
use step::provider::{ProviderHandle, RpcProvider};
use step::rpc::RpcController;
use step::user_service::{FriendService, UserService};
use step::zk_client::CreateMode::{Ephemeral, Persistent};
use step::zk_client::{ZkClient, ZkError};
use support::{block_on, capture, scripted_provider, zk_config};
use testkit::{ChildProcess, ZkServer, free_port};

/// The course's session timeout.
const COURSE_SESSION: Duration = Duration::from_secs(30);

/// Any port on 127.0.0.1.
fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A provider of both example services, registered in `zookeeper`.
fn start_registered(zookeeper: &ZkServer) -> ProviderHandle {
    let mut provider = RpcProvider::new(&zk_config(0, zookeeper, COURSE_SESSION));
    provider
        .notify_service(UserServiceRpcServer(UserService::default()))
        .expect("publish UserServiceRpc");
    provider
        .notify_service(FriendServiceRpcServer(FriendService))
        .expect("publish FriendServiceRpc");
    provider
        .start_registered(any_port())
        .expect("start and register the provider")
}

/// A channel that looks providers up in `zookeeper`.
fn channel(zookeeper: &ZkServer) -> MprpcChannel {
    MprpcChannel::new(&zk_config(0, zookeeper, COURSE_SESSION))
}

/// The course's Login of zhang san/123456 through `channel`.
fn login(channel: &MprpcChannel) -> (MprpcController, LoginResponse) {
    let stub = UserServiceRpcStub::new(channel.clone());
    let mut controller = MprpcController::new();
    let mut response = LoginResponse::default();
    let request = LoginRequest {
        name: b"zhang san".to_vec(),
        pwd: b"123456".to_vec(),
    };
    stub.login(Some(&mut controller), &request, &mut response);
    (controller, response)
}

/// A session of the test's own, to look at (or write) znodes.
async fn session(zookeeper: &ZkServer) -> ZkClient {
    ZkClient::start(&zookeeper.addr(), COURSE_SESSION)
        .await
        .expect("a ZooKeeper session")
}

/// Registers `/UserServiceRpc/Login` = `data` by hand, as a course provider would.
async fn register_login(zk: &ZkClient, data: &[u8]) {
    let service = zk.create("/UserServiceRpc", b"", Persistent);
    service.await.expect("create /UserServiceRpc");
    let login = zk.create("/UserServiceRpc/Login", data, Ephemeral);
    login.await.expect("create /UserServiceRpc/Login");
}

#[test]
fn a_provider_registers_the_course_layout() {
    let zookeeper = ZkServer::start().unwrap();
    let provider = start_registered(&zookeeper);
    let advertised = provider.local_addr().to_string();
    block_on(async {
        let zk = session(&zookeeper).await;
        // The service nodes: persistent, no data.
        for service in ["/UserServiceRpc", "/FriendServiceRpc"] {
            let stat = zk.exists(service).await.unwrap().expect(service);
            assert_eq!(stat.ephemeral_owner, 0, "{service} is persistent");
            assert_eq!(zk.get_data(service).await.unwrap(), b"");
        }
        let mut methods = zk.get_children("/UserServiceRpc").await.unwrap();
        methods.sort();
        assert_eq!(methods, ["Login", "Register"]);
        // The method nodes: ephemeral, one session's, exactly "ip:port" (no NUL, no newline).
        let mut owners = Vec::new();
        for path in [
            "/UserServiceRpc/Login",
            "/UserServiceRpc/Register",
            "/FriendServiceRpc/GetFriendsList",
        ] {
            assert_eq!(zk.get_data(path).await.unwrap(), advertised.as_bytes());
            let stat = zk.exists(path).await.unwrap().expect(path);
            assert_ne!(stat.ephemeral_owner, 0, "{path} is ephemeral");
            assert_ne!(stat.ephemeral_owner, zk.session_id(), "not ours");
            owners.push(stat.ephemeral_owner);
        }
        owners.dedup();
        assert_eq!(owners.len(), 1, "one provider, one session");
        zk.close().await.unwrap();
    });
    assert!(advertised.starts_with("127.0.0.1:"), "{advertised}");
}

#[test]
fn the_bytes_sent_are_still_the_course_request() {
    let zookeeper = ZkServer::start().unwrap();
    let request = capture("request");
    let (addr, provider) = scripted_provider(request.len(), capture("response"));
    // Registered by hand, as a course provider would (a multi-thread runtime keeps it).
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let zk = runtime.block_on(async {
        let zk = session(&zookeeper).await;
        register_login(&zk, addr.to_string().as_bytes()).await;
        zk
    });
    let (controller, response) = login(&channel(&zookeeper));
    assert!(!controller.failed(), "{}", controller.error_text());
    assert_eq!(provider.join().unwrap(), request, "the course's 48 bytes");
    assert!(response.result.is_some(), "the course's reply, decoded");
    runtime.block_on(zk.close()).unwrap();
}

#[test]
fn a_stopped_provider_is_gone_from_zookeeper_and_callers_are_told() {
    let zookeeper = ZkServer::start().unwrap();
    let provider = start_registered(&zookeeper);
    let channel = channel(&zookeeper);
    let (controller, _) = login(&channel);
    assert!(!controller.failed(), "{}", controller.error_text());
    provider.shutdown();
    // `shutdown` waited for the session to close: the nodes are gone now.
    block_on(async {
        let zk = session(&zookeeper).await;
        for path in [
            "/UserServiceRpc/Login",
            "/UserServiceRpc/Register",
            "/FriendServiceRpc/GetFriendsList",
        ] {
            assert!(zk.exists(path).await.unwrap().is_none(), "{path} remains");
        }
        // The persistent service nodes stay.
        assert!(zk.exists("/UserServiceRpc").await.unwrap().is_some());
        zk.close().await.unwrap();
    });
    let started = Instant::now();
    let (controller, response) = login(&channel);
    let expected = "UserServiceRpc.Login: no provider for UserServiceRpc/Login: the znode \
                    /UserServiceRpc/Login does not exist";
    let text = controller.error_text();
    assert!(text.starts_with(expected), "{text}");
    assert_eq!(response, LoginResponse::default());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn every_call_looks_up_again_so_a_restarted_provider_is_found() {
    let zookeeper = ZkServer::start().unwrap();
    let channel = channel(&zookeeper);
    let first = start_registered(&zookeeper);
    let first_addr = first.local_addr();
    assert!(!login(&channel).0.failed());
    first.shutdown();
    // A new provider on another port; the same channel finds it.
    let second = start_registered(&zookeeper);
    assert_ne!(second.local_addr(), first_addr);
    let (controller, _) = login(&channel);
    assert!(!controller.failed(), "{}", controller.error_text());
}

#[test]
fn a_caller_with_zookeeper_down_fails_clearly_within_the_connect_timeout() {
    let port = free_port().unwrap();
    let nowhere = format!("127.0.0.1:{port}");
    let mut config = support::config(0);
    config.zookeeperport = port;
    let mut channel = MprpcChannel::new(&config);
    channel.set_connect_timeout(Duration::from_millis(500));
    let started = Instant::now();
    let error = channel
        .call_bytes(&USER_SERVICE_RPC_DESCRIPTOR.methods[0], &[])
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(error, ChannelError::Lookup(ZkError::ConnectTimeout { .. })),
        "{error:?}"
    );
    assert!(error.to_string().contains(&nowhere), "{error}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    // Through a stub, the controller says the same.
    let (controller, _) = login(&channel);
    let text = controller.error_text();
    assert!(text.contains(&nowhere), "{text}");
}

#[test]
fn a_provider_that_cannot_register_fails_to_start_clearly() {
    let port = free_port().unwrap();
    let mut config = support::config(0);
    config.zookeeperport = port;
    config.zk_session_timeout_ms = 2000;
    let no_zk = format!("cannot register with ZooKeeper: no ZooKeeper session at 127.0.0.1:{port}");
    for (addr, expected) in [
        (SocketAddr::from(([0; 4], 0)), "cannot register 0.0.0.0:"),
        (any_port(), &no_zk),
    ] {
        let mut provider = RpcProvider::new(&config);
        let service = UserServiceRpcServer(UserService::default());
        provider.notify_service(service).unwrap();
        let started = Instant::now();
        let error = provider.start_registered(addr).unwrap_err();
        assert!(error.to_string().starts_with(expected), "{error}");
        assert!(started.elapsed() < Duration::from_secs(6), "{error}");
    }
}

#[test]
fn bad_znode_data_is_a_clear_error() {
    let zookeeper = ZkServer::start().unwrap();
    let channel = channel(&zookeeper);
    let long = vec![b'a'; 100_000];
    let cases: [(&[u8], String); 5] = [
        (b"not an address", "\"not an address\"".to_string()),
        // The C string with its NUL: what a careless C++ provider writes.
        (b"127.0.0.1:8000\0", "\"127.0.0.1:8000\\0\"".to_string()),
        (b"localhost:8000", "\"localhost:8000\"".to_string()),
        (b"", "\"\"".to_string()),
        // Up to 1 MB of anything: the message shows the first 64 characters.
        (&long, format!("\"{}\"", "a".repeat(64))),
    ];
    // Each case: an ephemeral node of a session alive during the call, gone when closed.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for (data, shown) in cases {
        let zk = runtime.block_on(async {
            let zk = session(&zookeeper).await;
            register_login(&zk, data).await;
            zk
        });
        let (controller, _) = login(&channel);
        assert!(controller.failed());
        assert_eq!(
            controller.error_text(),
            format!(
                "UserServiceRpc.Login: the znode /UserServiceRpc/Login holds {shown}, \
                 not a provider address ip:port"
            )
        );
        runtime.block_on(zk.close()).unwrap();
    }
}

/// Issues #13, #26: another live session (a C++ provider, say) holds `/UserServiceRpc/Login`.
/// The callee must not evict it: it fails to start, naming the node, leaving it as it was,
/// having created no node, not even `/FriendServiceRpc`, the first in name order.
#[test]
fn a_callee_leaves_another_live_providers_znode_alone() {
    let zookeeper = ZkServer::start().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let path = "/UserServiceRpc/Login";
    let (other, before) = runtime.block_on(async {
        let zk = session(&zookeeper).await;
        register_login(&zk, b"127.0.0.1:9999").await;
        let before = zk.exists(path).await.unwrap().unwrap();
        (zk, before)
    });
    let dir = ChildProcess::workdir().unwrap();
    let config = format!(
        "rpcserverip = \"127.0.0.1\"\nrpcserverport = {}\nzookeeperip = \"127.0.0.1\"\n\
         zookeeperport = {}\n",
        free_port().unwrap(),
        zookeeper.port()
    );
    std::fs::write(dir.path().join("mprpc.toml"), config).unwrap();
    let program = Path::new(env!("CARGO_BIN_EXE_callee"));
    let mut callee = ChildProcess::spawn(program, &["-i", "mprpc.toml"], dir, |_| {}).unwrap();
    let held = "znode /UserServiceRpc/Login is held by another session";
    callee.wait_for(held, Duration::from_secs(30)).unwrap();
    let after = runtime.block_on(other.exists(path)).unwrap().unwrap();
    assert_eq!(after.ephemeral_owner, other.session_id());
    assert_eq!((after.czxid, after.version), (before.czxid, before.version));
    let data = runtime.block_on(other.get_data(path)).unwrap();
    assert_eq!(data, b"127.0.0.1:9999");
    let friend = runtime.block_on(other.exists("/FriendServiceRpc")).unwrap();
    assert!(friend.is_none(), "a node was created before the refusal");
    runtime.block_on(other.close()).unwrap();
}
