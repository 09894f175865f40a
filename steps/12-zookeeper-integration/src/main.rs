//! `cargo run -p step-12 [-- -i <configfile>]`: step 11's demo, then
//! service discovery, the whole course in one process.
//!
//! A provider registers in ZooKeeper; the program shows the znodes, makes
//! the example calls (each looks its provider up first), stops the
//! provider, and shows what callers are told then, and with no ZooKeeper.
//! (The earlier parts' providers are called with `MprpcChannel::direct`.)
//!
//! The course's two programs, with a ZooKeeper at the config's address:
//!
//!     cargo run -p step-12 --bin callee      # in one terminal
//!     cargo run -p step-12 --bin caller      # in another
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;
use step::application::MprpcApplication;
use step::channel::MprpcChannel;
use step::config::MprpcConfig;
use step::controller::MprpcController;
use step::fixbug::{
    FriendServiceRpcServer, FriendServiceRpcStub, GetFriendsListRequest, GetFriendsListResponse,
    LoginRequest, LoginResponse, UserServiceRpcServer, UserServiceRpcStub,
};
use step::log_info;
use step::logger::{self, Logger};
use step::provider::RpcProvider;
use step::rpc::RpcController;
use step::user_client::call_examples;
use step::user_service::{FriendService, UserService};
use step::zk_client::{CreateMode, ZkClient, ZkError};
use testkit::zookeeper;

// ANCHOR: guard
fn main() -> ExitCode {
    // The guard lives until `main` returns; dropping it waits until the
    // writer thread has written out every queued line. Without it, lines
    // still in the queue die with the process.
    let _guard = match Logger::init(logger::DEFAULT_DIR) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let app = match MprpcApplication::init(std::env::args_os().skip(1)) {
        Ok(app) => app,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(error) = channel_demo(&app).and_then(|()| zk_demo(&app)) {
        eprintln!("error: {error}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
// ANCHOR_END: guard

/// A provider on 127.0.0.1 (a port the system picks) logging to the log
/// file, publishing the user service and, if `with_friends`, the friend one.
fn start_provider(config: &MprpcConfig, with_friends: bool) -> Result<RpcProvider, String> {
    let mut provider = RpcProvider::new(config);
    provider
        .notify_service(UserServiceRpcServer(UserService::default()))
        .map_err(|e| e.to_string())?;
    if with_friends {
        provider
            .notify_service(FriendServiceRpcServer(FriendService))
            .map_err(|e| e.to_string())?;
    }
    Ok(provider)
}

/// A channel to the provider at `config`'s `rpcserverip:rpcserverport`,
/// not looked up: these providers are not registered in ZooKeeper.
fn channel_to(config: &MprpcConfig) -> MprpcChannel {
    MprpcChannel::direct(config.rpc_server_addr())
}

/// Runs the example calls through `MprpcChannel` to providers in this process.
fn channel_demo(app: &MprpcApplication) -> Result<(), String> {
    let any_port = "127.0.0.1:0".parse().map_err(|_| "bad address")?;
    // Today's file may hold earlier runs: remember where this run starts.
    let today = chrono::Local::now().date_naive();
    let log_file = Path::new(logger::DEFAULT_DIR).join(logger::log_file_name(today));
    let log_start = std::fs::metadata(&log_file).map_or(0, |m| m.len() as usize);

    let provider = start_provider(app.config(), true)?
        .start(any_port)
        .map_err(|e| e.to_string())?;
    // The caller's config names the provider; here, the port just chosen.
    let mut config = app.config().clone();
    config.rpcserverport = provider.local_addr().port();
    println!("\n== the example calls, to a provider with both services");
    call_examples(&channel_to(&config));
    provider.shutdown();
    println!("\n== GetFriendsList, to a provider without FriendServiceRpc");
    let provider = start_provider(app.config(), false)?
        .start(any_port)
        .map_err(|e| e.to_string())?;
    config.rpcserverport = provider.local_addr().port();
    let stub = FriendServiceRpcStub::new(channel_to(&config));
    let mut controller = MprpcController::new();
    let mut response = GetFriendsListResponse::default();
    let request = &GetFriendsListRequest { userid: 1000 };
    stub.get_friends_list(Some(&mut controller), request, &mut response);
    if controller.failed() {
        println!("failed: {}", controller.error_text());
    } else {
        println!("friends: {:?}", response.friends);
    }
    provider.shutdown();
    // The provider is gone: nothing listens on its port any more.
    println!("\n== Login, with no provider at all");
    login(&config, None);
    // A socket that listens but never accepts: the kernel completes the
    // connection, and nobody ever answers.
    println!("\n== Login, to a provider that never answers (200 ms timeout)");
    let silent = std::net::TcpListener::bind(any_port).map_err(|e| e.to_string())?;
    config.rpcserverport = silent.local_addr().map_err(|e| e.to_string())?.port();
    login(&config, Some(Duration::from_millis(200)));
    drop(silent);
    // Without a controller, nobody is told; the channel logs the failure.
    println!("\n== Login, with no provider and no controller: only the log hears of it");
    let stub = UserServiceRpcStub::new(channel_to(&config));
    let mut response = LoginResponse::default();
    stub.login(None, &LoginRequest::default(), &mut response);
    println!("success = {} (a default response)", response.success);

    // Wait until the writer thread has written everything queued so far,
    // then read this run's part of the file.
    println!("\n== this run's ERROR lines in {}", log_file.display());
    Logger::global().flush();
    let text = std::fs::read(&log_file).unwrap_or_default();
    let ours = String::from_utf8_lossy(text.get(log_start..).unwrap_or_default());
    for line in ours.lines().filter(|line| line.contains(" [ERROR] ")) {
        println!("{line}");
    }
    Ok(())
}

/// One `Login` through `config`'s provider, reporting through a controller.
fn login(config: &step::config::MprpcConfig, read_timeout: Option<Duration>) {
    let mut channel = channel_to(config);
    if let Some(timeout) = read_timeout {
        channel.set_read_timeout(timeout);
    }
    let stub = UserServiceRpcStub::new(channel);
    let mut controller = MprpcController::new();
    let (request, mut response) = (LoginRequest::default(), LoginResponse::default());
    stub.login(Some(&mut controller), &request, &mut response);
    if controller.failed() {
        println!("failed: {}", controller.error_text());
    } else {
        println!("success = {}", response.success);
    }
}

/// The data of the persistent demo node.
const DEMO_DATA: &[u8] = b"made by step-11";

/// The data of the ephemeral demo node: what a provider will put there in
/// step 12, its `ip:port`.
const NODE_DATA: &[u8] = b"127.0.0.1:8000";

// ANCHOR: find_or_start
/// Finds or starts a ZooKeeper, then shows `ZkClient` at work on it.
fn zk_demo(app: &MprpcApplication) -> Result<(), String> {
    // `server` keeps a ZooKeeper we started alive until the demo is over;
    // dropping it stops the JVM and deletes its files.
    let (addr, server) = zookeeper::find_or_start(&app.config().zookeeper_addr())?;
    // ZkClient is asynchronous: the client crate runs the session (pings,
    // replies) as a task on this runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a tokio runtime: {e}"))?;
    runtime
        .block_on(show(&addr, app.config().zk_session_timeout()))
        .map_err(|e| e.to_string())?;
    let mut config = app.config().clone();
    if let Some(server) = &server {
        config.zookeeperip = "127.0.0.1".to_string();
        config.zookeeperport = server.port();
    }
    discovery(&config, &runtime)
}
// ANCHOR_END: find_or_start

/// A provider registers, callers find it, the provider goes.
fn discovery(config: &MprpcConfig, runtime: &tokio::runtime::Runtime) -> Result<(), String> {
    // ANCHOR: main
    println!("\n== a provider starts and registers in ZooKeeper");
    let provider = start_provider(config, true)?
        .start_registered("127.0.0.1:0".parse().map_err(|_| "bad address")?)
        .map_err(|e| e.to_string())?;
    runtime
        .block_on(show_znodes(config))
        .map_err(|e| e.to_string())?;

    println!("\n== the example calls: each looks its provider up, then calls it");
    call_examples(&MprpcChannel::new(config));

    println!("\n== the provider stops: its session closes, its ephemeral znodes go");
    provider.shutdown();
    runtime
        .block_on(show_znodes(config))
        .map_err(|e| e.to_string())?;
    look_up_and_login(MprpcChannel::new(config));

    println!("\n== Login, with no ZooKeeper at the configured address (1 s connect timeout)");
    let mut nowhere = config.clone();
    nowhere.zookeeperport = testkit::free_port().map_err(|e| e.to_string())?;
    let mut channel = MprpcChannel::new(&nowhere);
    channel.set_connect_timeout(Duration::from_secs(1));
    look_up_and_login(channel);
    // ANCHOR_END: main
    Ok(())
}

/// `ls` and `get` of the course's znodes, as `zkCli.sh` would show them.
async fn show_znodes(config: &MprpcConfig) -> Result<(), ZkError> {
    let zk = ZkClient::start(&config.zookeeper_addr(), config.zk_session_timeout()).await?;
    let mut methods = zk.get_children("/UserServiceRpc").await?;
    methods.sort();
    println!("ls /UserServiceRpc -> [{}]", methods.join(", "));
    for method in methods {
        get(&zk, &format!("/UserServiceRpc/{method}")).await;
    }
    zk.close().await
}

/// One `Login` through a channel that looks its provider up.
fn look_up_and_login(channel: MprpcChannel) {
    let mut controller = MprpcController::new();
    let (request, mut response) = (LoginRequest::default(), LoginResponse::default());
    UserServiceRpcStub::new(channel).login(Some(&mut controller), &request, &mut response);
    let (failed, text) = (controller.failed(), controller.error_text());
    println!("Login: failed = {failed}: {text}");
}

// ANCHOR: show
/// Creates, reads and closes, printing what it sees.
async fn show(addr: &str, session_timeout: Duration) -> Result<(), ZkError> {
    println!("\n== ZkClient::start: open a session");
    let zk = ZkClient::start(addr, session_timeout).await?;
    log_info!("ZooKeeper session {:#x} at {addr}", zk.session_id());
    let timeout = zk.session_timeout().as_millis();
    println!("session {:#x}, timeout {timeout} ms", zk.session_id());

    println!("\n== ZkClient::create");
    zk.create("/demo", DEMO_DATA, CreateMode::Persistent)
        .await?;
    zk.create("/demo/node", NODE_DATA, CreateMode::Ephemeral)
        .await?;
    // A second create is fine: "it exists" counts as success, as in the course.
    zk.create("/demo/node", NODE_DATA, CreateMode::Ephemeral)
        .await?;
    println!("create /demo, create -e /demo/node (twice): fine");

    println!("\n== reading back, like zkCli's get and stat");
    get(&zk, "/demo").await;
    get(&zk, "/demo/node").await;
    let stat = zk.exists("/demo/node").await?;
    let mine = stat.is_some_and(|stat| stat.ephemeral_owner == zk.session_id());
    println!("stat /demo/node -> ephemeralOwner is this session: {mine}");

    println!("\n== ZkClient::close, then a second session looks");
    zk.close().await?;
    let other = ZkClient::start(addr, session_timeout).await?;
    get(&other, "/demo/node").await;
    get(&other, "/demo").await;
    other.close().await
}
// ANCHOR_END: show

/// `get path`: the data, as text (anything not UTF-8 replaced).
async fn get(zk: &ZkClient, path: &str) {
    match zk.get_data(path).await {
        Ok(data) => println!("get {path} -> {:?}", String::from_utf8_lossy(&data)),
        Err(error) => println!("get {path} -> error: {error}"),
    }
}
