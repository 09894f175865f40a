//! `cargo run -p step-12 [-- -i <configfile>]`: service discovery. Step
//! 11's demo showed `ZkClient` on demo znodes; this one finds or starts a
//! ZooKeeper the same way and uses it as the course's registry.
//!
//! A provider registers in ZooKeeper; the program shows the znodes, makes
//! the example calls (each looks its provider up first), stops the
//! provider, and shows what callers are told then, and with no ZooKeeper.
//! Which ZooKeeper is used goes to stderr.
//!
//! The course's two programs, with a ZooKeeper at the config's address:
//!
//!     cargo run -p step-12 --bin callee      # in one terminal
//!     cargo run -p step-12 --bin caller      # in another
use std::error::Error;
use std::process::ExitCode;
use std::time::Duration;
use step::application::MprpcApplication;
use step::channel::MprpcChannel;
use step::config::MprpcConfig;
use step::controller::MprpcController;
use step::fixbug::{
    FriendServiceRpcServer, LoginRequest, LoginResponse, UserServiceRpcServer, UserServiceRpcStub,
};
use step::logger::{self, Logger};
use step::provider::RpcProvider;
use step::rpc::RpcController;
use step::user_client::call_examples;
use step::user_service::{FriendService, UserService};
use step::zk_client::{ZkClient, ZkError};
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
    if let Err(error) = zk_demo(&app) {
        eprintln!("error: {error}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
// ANCHOR_END: guard

// ANCHOR: find_or_start
/// Finds or starts a ZooKeeper, then shows discovery at work on it.
fn zk_demo(app: &MprpcApplication) -> Result<(), Box<dyn Error>> {
    // `server` keeps a ZooKeeper we started alive until the demo is over;
    // dropping it stops the JVM and deletes its files.
    let (_, server) = zookeeper::find_or_start(&app.config().zookeeper_addr())?;
    // ZkClient is asynchronous: the client crate runs the session (pings,
    // replies) as a task on this runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut config = app.config().clone();
    if let Some(server) = &server {
        config.zookeeperip = "127.0.0.1".to_string();
        config.zookeeperport = server.port();
    }
    discovery(&config, &runtime)
}
// ANCHOR_END: find_or_start

/// A provider registers, callers find it, the provider goes.
fn discovery(
    config: &MprpcConfig,
    runtime: &tokio::runtime::Runtime,
) -> Result<(), Box<dyn Error>> {
    // ANCHOR: main
    println!("\n== a provider starts and registers in ZooKeeper");
    let mut provider = RpcProvider::new(config);
    provider.notify_service(UserServiceRpcServer(UserService::default()))?;
    provider.notify_service(FriendServiceRpcServer(FriendService))?;
    let provider = provider.start_registered("127.0.0.1:0".parse()?)?;
    runtime.block_on(show_znodes(config))?;

    println!("\n== the example calls: each looks its provider up, then calls it");
    call_examples(&MprpcChannel::new(config));

    println!("\n== the provider stops: its session closes, its ephemeral znodes go");
    provider.shutdown();
    runtime.block_on(show_znodes(config))?;
    look_up_and_login(MprpcChannel::new(config));

    println!("\n== Login, with no ZooKeeper at the configured address (1 s connect timeout)");
    let mut nowhere = config.clone();
    nowhere.zookeeperport = testkit::free_port()?;
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

/// `get path`: the data, as text (anything not UTF-8 replaced).
async fn get(zk: &ZkClient, path: &str) {
    match zk.get_data(path).await {
        Ok(data) => println!("get {path} -> {:?}", String::from_utf8_lossy(&data)),
        Err(error) => println!("get {path} -> error: {error}"),
    }
}
