//! The service of "Your own service", tested as the chapter runs it: a
//! provider started in the test (`RpcProvider::start` on port 0, then
//! `local_addr`), called over TCP with the async and the blocking stub; then
//! the chapter's two programs and its config file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use mprpc::{BlockingChannel, ErrorCode, MprpcChannel, MprpcConfig, RpcProvider, RunningProvider};
use my_kv::kv::{BlockingKvStoreStub, GetRequest, KvStoreServer, KvStoreStub, PutRequest};
use my_kv::{MAX_KEYS, Store};

/// Any error, sendable between threads.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a test returns: any error fails it with its message.
type TestResult = Result<(), BoxError>;

// ANCHOR: start
/// Starts a provider of the store on a free port.
async fn start() -> Result<RunningProvider, mprpc::Error> {
    let mut config = MprpcConfig::default();
    config.rpcserverport = 0; // the system picks a free port
    let mut provider = RpcProvider::new(config);
    provider.notify_service(KvStoreServer::new(Store::default()));
    provider.start().await
}

#[tokio::test]
async fn put_then_get_over_tcp() -> TestResult {
    let running = start().await?;
    let addr = running.local_addr().to_string();

    let stub = KvStoreStub::new(MprpcChannel::direct(&addr));
    let put = PutRequest {
        key: "greeting".into(),
        value: b"hello".to_vec(),
    };
    assert_eq!(stub.put(&put).await?.previous, None);
    let got = stub
        .get(&GetRequest {
            key: "greeting".into(),
        })
        .await?;
    assert!(got.found);
    assert_eq!(got.value, b"hello");

    running.shutdown().await?;
    Ok(())
}
// ANCHOR_END: start

// ANCHOR: blocking
/// The blocking stub, from a thread without a runtime (as `client` is): the
/// provider runs on a runtime of the test's own, on its worker threads.
#[test]
fn the_blocking_stub_from_a_plain_thread() -> TestResult {
    let runtime = tokio::runtime::Runtime::new()?;
    let running = runtime.block_on(start())?;
    let channel = BlockingChannel::direct(&running.local_addr().to_string())?;
    let stub = BlockingKvStoreStub::new(channel);
    let put = PutRequest {
        key: "greeting".into(),
        value: b"hello".to_vec(),
    };
    assert_eq!(stub.put(&put)?.previous, None);
    let again = PutRequest {
        key: "greeting".into(),
        value: b"bye".to_vec(),
    };
    assert_eq!(stub.put(&again)?.previous, Some(b"hello".to_vec()));
    assert_eq!(
        stub.get(&GetRequest {
            key: "greeting".into()
        })?
        .value,
        b"bye"
    );
    runtime.block_on(running.shutdown())?;
    Ok(())
}
// ANCHOR_END: blocking

#[tokio::test]
async fn a_missing_key_is_an_answer_not_an_error() -> TestResult {
    let running = start().await?;
    let stub = KvStoreStub::new(MprpcChannel::direct(&running.local_addr().to_string()));
    let got = stub
        .get(&GetRequest {
            key: "nothing".into(),
        })
        .await?;
    assert!(!got.found);
    assert!(got.value.is_empty());
    running.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_full_store_refuses_with_a_status() -> TestResult {
    let running = start().await?;
    let stub = KvStoreStub::new(MprpcChannel::direct(&running.local_addr().to_string()));
    for i in 0..MAX_KEYS {
        stub.put(&PutRequest {
            key: format!("k{i}"),
            value: Vec::new(),
        })
        .await?;
    }
    // An existing key may still change; a new one is refused.
    let again = stub
        .put(&PutRequest {
            key: "k0".into(),
            value: b"x".to_vec(),
        })
        .await?;
    assert_eq!(again.previous, Some(Vec::new()));
    let refused = stub
        .put(&PutRequest {
            key: "one more".into(),
            value: Vec::new(),
        })
        .await;
    match refused {
        Err(status) => {
            assert_eq!(status.code, ErrorCode::HandlerError);
            assert!(status.message.contains("store full"), "{status}");
        }
        Ok(response) => panic!("a full store accepted a new key: {response:?}"),
    }
    running.shutdown().await?;
    Ok(())
}

/// This crate's directory.
fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_chapters_config_names_the_providers_own_address() -> TestResult {
    let config = MprpcConfig::load(crate_dir().join("my-kv.toml"))?;
    let own = format!("{}:{}", config.rpcserverip, config.rpcserverport);
    assert_eq!(config.static_registry.get("kv.KvStore"), Some(&vec![own]));
    assert_eq!(
        config.zookeeperip, None,
        "the chapter runs without ZooKeeper"
    );
    Ok(())
}

/// Runs one of this crate's programs in `dir` (where it reads `my-kv.toml`).
fn run(program: &str, dir: &Path, args: &[&str]) -> std::io::Result<Output> {
    Command::new(program).args(args).current_dir(dir).output()
}

/// Kills the server when the test ends, passed or not.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        // Already gone is fine: the test has its verdict.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_server_and_the_client_programs() -> TestResult {
    // The chapter's config, on a port free right now instead of 8003.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let text =
        std::fs::read_to_string(crate_dir().join("my-kv.toml"))?.replace("8003", &port.to_string());
    let dir = std::env::temp_dir().join(format!("my-kv-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("my-kv.toml"), text)?;

    let client = env!("CARGO_BIN_EXE_client");
    let usage = run(client, &dir, &["frobnicate"])?;
    assert!(!usage.status.success());
    assert!(String::from_utf8_lossy(&usage.stderr).contains("usage: client get KEY"));

    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_my-kv"))
            .current_dir(&dir)
            .spawn()?,
    );
    // The first put that gets through is the server being up.
    let deadline = Instant::now() + Duration::from_secs(20);
    let put = loop {
        let put = run(client, &dir, &["put", "greeting", "hello"])?;
        if put.status.success() || Instant::now() > deadline {
            break put;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        String::from_utf8_lossy(&put.stdout),
        "greeting set\n",
        "{put:?}"
    );
    let get = run(client, &dir, &["get", "greeting"])?;
    assert_eq!(
        String::from_utf8_lossy(&get.stdout),
        "greeting = hello\n",
        "{get:?}"
    );
    let missing = run(client, &dir, &["get", "farewell"])?;
    assert_eq!(
        String::from_utf8_lossy(&missing.stdout),
        "farewell is not set\n"
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

// ANCHOR: after_shutdown
/// The book's exercise in "Lifecycle": a caller whose provider shut down
/// gracefully gets an error it can act on, not a hang.
#[tokio::test]
async fn a_call_after_shutdown_fails_fast() -> TestResult {
    let running = start().await?;
    let stub = KvStoreStub::new(MprpcChannel::direct(&running.local_addr().to_string()));
    stub.get(&GetRequest { key: "k".into() }).await?; // the connection is open
    running.shutdown().await?;
    let started = Instant::now();
    match stub.get(&GetRequest { key: "k".into() }).await {
        // Nothing was sent: safe to retry elsewhere.
        Err(status) => {
            assert_eq!(status.code, ErrorCode::Transport, "{status}");
            assert!(status.message.contains("connecting to"), "{status}");
        }
        Ok(response) => panic!("a stopped provider answered: {response:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    Ok(())
}
// ANCHOR_END: after_shutdown
