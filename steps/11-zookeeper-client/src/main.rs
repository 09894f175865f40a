//! `cargo run -p step-11 [-- -i <configfile>]`: the course's `ZkClient` at
//! work against a real ZooKeeper. (Step 10's calls are in step 10's demo;
//! this one shows only the new piece.)
//!
//! If a ZooKeeper answers at the config's `zookeeperip:zookeeperport`, the
//! demo uses it; otherwise it starts a throw-away one from the Debian
//! package `zookeeper` (`testkit::ZkServer`), and if that is not installed
//! it says how to get one and exits with status 1. Then it opens a session,
//! creates `/demo` (persistent) and `/demo/node` (ephemeral), reads them
//! back the way `zkCli.sh`'s `get` and `stat` would, closes the session,
//! and shows from a second session that the ephemeral node went with the
//! first one while the persistent node stayed. Which ZooKeeper is used goes
//! to stderr.
//!
//! The course's two programs are step 10's, unchanged:
//!
//!     cargo run -p step-11 --bin callee      # in one terminal
//!     cargo run -p step-11 --bin caller      # in another
use std::error::Error;
use std::process::ExitCode;
use std::time::Duration;
use step::application::MprpcApplication;
use step::logger::{self, Logger};
use step::zk_client::CreateMode::{Ephemeral, Persistent};
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
/// Finds or starts a ZooKeeper, then shows `ZkClient` at work on it.
fn zk_demo(app: &MprpcApplication) -> Result<(), Box<dyn Error>> {
    // `server` keeps a ZooKeeper we started alive until the demo is over;
    // dropping it stops the JVM and deletes its files.
    let (addr, _server) = zookeeper::find_or_start(&app.config().zookeeper_addr())?;
    // ZkClient is asynchronous: the client crate runs the session (pings,
    // replies) as a task on this runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(show(&addr, app.config().zk_session_timeout()))?)
}
// ANCHOR_END: find_or_start

// ANCHOR: show
/// Creates, reads and closes, printing what it sees.
async fn show(addr: &str, session_timeout: Duration) -> Result<(), ZkError> {
    println!("\n== ZkClient::start: open a session");
    let zk = ZkClient::start(addr, session_timeout).await?;
    let timeout = zk.session_timeout().as_millis();
    println!("session {:#x}, timeout {timeout} ms", zk.session_id());

    println!("\n== ZkClient::create");
    zk.create("/demo", b"made by step-11", Persistent).await?;
    // The data of the ephemeral node: what a provider puts there in step 12.
    let node_data = b"127.0.0.1:8000";
    zk.create("/demo/node", node_data, Ephemeral).await?;
    // A second create is fine: "it exists" counts as success, as in the course.
    zk.create("/demo/node", node_data, Ephemeral).await?;
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
