//! `cargo run -p step-11 [-- -i <configfile>]`: the course's `ZkClient` at
//! work against a real ZooKeeper.
//!
//! If a ZooKeeper answers at the config's `zookeeperip:zookeeperport`, the
//! demo uses it; otherwise it starts a throw-away one from the Debian
//! package `zookeeper` (see [`step::zk_server`]), and if that is not
//! installed it says how to get one and exits with status 1. Then it opens
//! a session, creates `/demo` (persistent) and `/demo/node` (ephemeral),
//! reads them back the way `zkCli.sh`'s `ls`, `get` and `stat` would, closes
//! the session, and shows from a second session that the ephemeral node
//! went with the first one while the persistent node stayed.
//!
//! Which ZooKeeper is used goes to stderr; stdout shows only what is the
//! same on every run (apart from the session ids).
//!
//! The RPC demo of the earlier steps is still there as two programs:
//!
//!     cargo run -p step-11 --bin callee      # in one terminal
//!     cargo run -p step-11 --bin caller      # in another

use std::process::ExitCode;
use std::time::Duration;
use step::application::MprpcApplication;
use step::config::MprpcConfig;
use step::log_info;
use step::logger::{self, Logger};
use step::zk_client::{CreateMode, ZkClient, ZkError};
use step::zk_server::{self, ZkServer};

/// The data of the persistent demo node.
const DEMO_DATA: &[u8] = b"made by step-11";

/// The data of the ephemeral demo node: what a provider will put there in
/// step 12, its `ip:port`.
const NODE_DATA: &[u8] = b"127.0.0.1:8000";

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

/// Finds or starts a ZooKeeper, then runs the demo against it.
fn demo() -> Result<(), String> {
    let app = MprpcApplication::init(std::env::args_os().skip(1)).map_err(|e| e.to_string())?;
    // `_server` keeps a ZooKeeper we started alive until the demo is over;
    // dropping it stops the JVM and deletes its files.
    let (addr, _server) = find_or_start(app.config())?;
    // ZkClient is asynchronous: the client crate runs the session (pings,
    // replies) as a task on this runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a tokio runtime: {e}"))?;
    runtime
        .block_on(show(&addr, app.config().zk_session_timeout()))
        .map_err(|e| e.to_string())
}

// ANCHOR: find_or_start
/// The ZooKeeper to use: the configured one if it answers, else a
/// throw-away one started here (returned, so the caller decides when it
/// stops). Explains how to get a ZooKeeper when neither works.
fn find_or_start(config: &MprpcConfig) -> Result<(String, Option<ZkServer>), String> {
    let configured = config.zookeeper_addr();
    if zk_server::answers(&configured) {
        eprintln!("using the ZooKeeper that answers at {configured} (from the config)");
        return Ok((configured, None));
    }
    eprintln!("no ZooKeeper answers at {configured}; starting a throw-away one");
    match ZkServer::start() {
        Ok(server) => {
            eprintln!(
                "started ZooKeeper at {} (its files are in a temporary directory, deleted at exit)",
                server.addr()
            );
            Ok((server.addr(), Some(server)))
        }
        Err(error) => Err(format!(
            "{error}\nOr run a ZooKeeper yourself on the default port 2181 (the one in \
             mprpc.toml):\n    {}",
            zk_server::START_BY_HAND
        )),
    }
}
// ANCHOR_END: find_or_start

// ANCHOR: show
/// Creates, reads and closes, printing what it sees.
async fn show(addr: &str, session_timeout: Duration) -> Result<(), ZkError> {
    println!("== ZkClient::start: open a session");
    let zk = ZkClient::start(addr, session_timeout).await?;
    println!(
        "session {:#x}, timeout {} ms",
        zk.session_id(),
        zk.session_timeout().as_millis()
    );
    log_info!("ZooKeeper session {:#x} at {}", zk.session_id(), zk.addr());

    println!("\n== ZkClient::create");
    zk.create("/demo", DEMO_DATA, CreateMode::Persistent)
        .await?;
    println!("create /demo {:?}: persistent", text(DEMO_DATA));
    zk.create("/demo/node", NODE_DATA, CreateMode::Ephemeral)
        .await?;
    println!("create -e /demo/node {:?}: ephemeral", text(NODE_DATA));
    // The course's Create checks whether the node exists first; ours
    // simply accepts "it exists". Either way, a second create is fine.
    zk.create("/demo/node", NODE_DATA, CreateMode::Ephemeral)
        .await?;
    println!("create -e /demo/node again: fine, it exists");
    if let Err(error) = zk
        .create("/nowhere/node", b"", CreateMode::Persistent)
        .await
    {
        println!("create /nowhere/node: {error}");
    }

    println!("\n== reading back, like zkCli's ls, get and stat");
    ls(&zk, "/demo").await;
    get(&zk, "/demo").await;
    get(&zk, "/demo/node").await;
    stat(&zk, "/demo").await?;
    stat(&zk, "/demo/node").await?;
    get(&zk, "/UserServiceRpc/Login").await;

    println!("\n== ZkClient::close, then a second session looks");
    zk.close().await?;
    let other = ZkClient::start(addr, session_timeout).await?;
    ls(&other, "/demo").await;
    get(&other, "/demo/node").await;
    get(&other, "/demo").await;
    other.close().await?;
    log_info!("ZooKeeper demo done");
    Ok(())
}
// ANCHOR_END: show

/// `ls path`: the children's names, sorted (ZooKeeper gives no order).
async fn ls(zk: &ZkClient, path: &str) {
    match zk.get_children(path).await {
        Ok(mut children) => {
            children.sort();
            println!("ls {path} -> [{}]", children.join(", "));
        }
        Err(error) => println!("ls {path} -> error: {error}"),
    }
}

/// `get path`: the data, as text.
async fn get(zk: &ZkClient, path: &str) {
    match zk.get_data(path).await {
        Ok(data) => println!("get {path} -> {:?}", text(&data)),
        Err(error) => println!("get {path} -> error: {error}"),
    }
}

/// `stat path`: the node's owner and sizes.
async fn stat(zk: &ZkClient, path: &str) -> Result<(), ZkError> {
    match zk.exists(path).await? {
        Some(stat) => {
            let owner = if stat.ephemeral_owner == 0 {
                "0x0, persistent".to_string()
            } else if stat.ephemeral_owner == zk.session_id() {
                format!("{:#x}, this session", stat.ephemeral_owner)
            } else {
                format!("{:#x}, another session", stat.ephemeral_owner)
            };
            println!(
                "stat {path} -> ephemeralOwner = {owner}; dataLength = {}; numChildren = {}",
                stat.data_length, stat.num_children
            );
        }
        None => println!("stat {path} -> no such node"),
    }
    Ok(())
}

/// Znode data is bytes; shown as text, with anything that is not UTF-8
/// replaced.
fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}
