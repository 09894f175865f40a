//! `cargo run -p step-12 [-- -i <configfile>]`: service discovery, the
//! whole course in one process.
//!
//! It finds or starts a ZooKeeper as step 11 does (the configured one if it
//! answers, else a throw-away one from the Debian package `zookeeper`).
//! Then a provider with the example services starts on 127.0.0.1 (a port
//! the system picks) and registers in ZooKeeper; the program shows the
//! znodes, makes the example calls (each looks its provider up in
//! ZooKeeper first), stops the provider, shows that its ephemeral znodes
//! are gone and what a caller is told now, and what a caller is told when
//! there is no ZooKeeper at all.
//!
//! Which ZooKeeper is used goes to stderr, the provider's log to
//! `logs/YYYY-MM-DD-log.txt`; stdout shows what is the same on every run
//! (apart from ports and session ids).
//!
//! The course's two programs, with a ZooKeeper at the config's address:
//!
//!     cargo run -p step-12 --bin callee      # in one terminal
//!     cargo run -p step-12 --bin caller      # in another

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
use step::zk_server::{self, ZkServer};

fn main() -> ExitCode {
    // Flushes the log when `main` returns.
    let _guard = match Logger::init(logger::DEFAULT_DIR) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    match demo() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Finds or starts ZooKeeper, then shows discovery at work.
fn demo() -> Result<(), String> {
    let app = MprpcApplication::init(std::env::args_os().skip(1)).map_err(|e| e.to_string())?;
    let mut config = app.config().clone();
    // `_server` keeps a ZooKeeper we started alive until the demo is over.
    let _server = find_or_start(&mut config)?;
    // For looking at the znodes: ZkClient is asynchronous.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a tokio runtime: {e}"))?;
    let any_port = "127.0.0.1:0".parse().map_err(|_| "bad address")?;

    // ANCHOR: main
    println!("== a provider starts and registers in ZooKeeper");
    let mut provider = RpcProvider::new(&config);
    provider
        .notify_service(UserServiceRpcServer(UserService::default()))
        .and_then(|()| provider.notify_service(FriendServiceRpcServer(FriendService)))
        .map_err(|e| e.to_string())?;
    let provider = provider
        .start_registered(any_port)
        .map_err(|e| e.to_string())?;
    runtime
        .block_on(show_znodes(&config))
        .map_err(|e| e.to_string())?;

    println!("\n== the example calls: each looks its provider up, then calls it");
    // The channel reads only the ZooKeeper address from the config.
    let channel = MprpcChannel::new(&config);
    call_examples(&channel);

    println!("\n== the provider stops: its session closes, its ephemeral znodes go");
    provider.shutdown();
    runtime
        .block_on(show_znodes(&config))
        .map_err(|e| e.to_string())?;
    login(&channel);

    println!("\n== Login, with no ZooKeeper at the configured address (1 s connect timeout)");
    let mut nowhere = config.clone();
    nowhere.zookeeperport = zk_server::free_port().map_err(|e| e.to_string())?;
    let mut channel = MprpcChannel::new(&nowhere);
    channel.set_connect_timeout(Duration::from_secs(1));
    login(&channel);
    // ANCHOR_END: main
    Ok(())
}

/// Uses the configured ZooKeeper if it answers; else starts a throw-away
/// one and points `config` at it (returned: dropping it stops it). Explains
/// how to get a ZooKeeper when neither works.
fn find_or_start(config: &mut MprpcConfig) -> Result<Option<ZkServer>, String> {
    let configured = config.zookeeper_addr();
    if zk_server::answers(&configured) {
        eprintln!("using the ZooKeeper that answers at {configured} (from the config)");
        return Ok(None);
    }
    eprintln!("no ZooKeeper answers at {configured}; starting a throw-away one");
    match ZkServer::start() {
        Ok(server) => {
            eprintln!(
                "started ZooKeeper at {} (its files are in a temporary directory, deleted at exit)",
                server.addr()
            );
            config.zookeeperip = "127.0.0.1".to_string();
            config.zookeeperport = server.port();
            Ok(Some(server))
        }
        Err(error) => Err(format!(
            "{error}\nOr run a ZooKeeper yourself on the default port 2181 (the one in \
             mprpc.toml):\n    {}",
            zk_server::START_BY_HAND
        )),
    }
}

// ANCHOR: show_znodes
/// Prints the course's znodes as `zkCli.sh` would show them: `ls` of each
/// service, `get` and the owner of each method node.
async fn show_znodes(config: &MprpcConfig) -> Result<(), ZkError> {
    let zk = ZkClient::start(&config.zookeeper_addr(), config.zk_session_timeout()).await?;
    for service in ["/FriendServiceRpc", "/UserServiceRpc"] {
        let mut methods = match zk.get_children(service).await {
            Ok(methods) => methods,
            Err(ZkError::NoNode { .. }) => {
                println!("ls {service} -> no such znode");
                continue;
            }
            Err(error) => return Err(error),
        };
        methods.sort();
        println!("ls {service} -> [{}]", methods.join(", "));
        for method in methods {
            let path = format!("{service}/{method}");
            let data = zk.get_data(&path).await?;
            let owner = zk
                .exists(&path)
                .await?
                .map_or(0, |stat| stat.ephemeral_owner);
            println!(
                "  get {path} -> {:?}, ephemeralOwner = {owner:#x}",
                String::from_utf8_lossy(&data)
            );
        }
    }
    zk.close().await
}
// ANCHOR_END: show_znodes

/// One `Login` through `channel`; prints the result or the failure.
fn login(channel: &MprpcChannel) {
    let stub = UserServiceRpcStub::new(channel.clone());
    let mut controller = MprpcController::new();
    let mut response = LoginResponse::default();
    let request = LoginRequest {
        name: b"zhang san".to_vec(),
        pwd: b"123456".to_vec(),
    };
    stub.login(Some(&mut controller), &request, &mut response);
    if controller.failed() {
        println!(
            "Login zhang san/123456: failed: {}",
            controller.error_text()
        );
    } else {
        println!("Login zhang san/123456: success = {}", response.success);
    }
}
