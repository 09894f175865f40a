//! A quick throughput check: an in-process provider and caller over real
//! loopback TCP, `N` calls kept in flight on one connection for a few
//! seconds. Not a benchmark suite (see `final/bench`), just a smoke test of
//! the fast path.
//!
//! ```text
//! cargo run --release -p mprpc-examples --example load -- 128 3   # in flight, seconds
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mprpc::{MprpcChannel, MprpcConfig, RpcProvider, StaticRegistry};
use mprpc_examples::UserService;
use mprpc_examples::fixbug::{LoginRequest, UserServiceRpcServer, UserServiceRpcStub};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let in_flight: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(128);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let mut config = MprpcConfig::default();
    config.rpcserverport = 0;
    let mut provider = RpcProvider::new(config).with_registry(Arc::new(StaticRegistry::default()));
    provider.notify_service(UserServiceRpcServer::new(UserService::default()));
    let running = provider.start().await?;
    let stub = UserServiceRpcStub::new(MprpcChannel::direct(&running.local_addr().to_string()));
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..in_flight)
        .map(|_| {
            let (stub, done, stop) = (stub.clone(), Arc::clone(&done), Arc::clone(&stop));
            tokio::spawn(async move {
                let request = LoginRequest {
                    name: b"zhang san".to_vec(),
                    pwd: b"123456".to_vec(),
                };
                while !stop.load(Ordering::Relaxed) {
                    if stub.login(&request).await.is_ok() {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    let calls = done.load(Ordering::Relaxed);
    println!(
        "{in_flight} in flight: {calls} calls in {:.2} s = {:.0} calls/s",
        started.elapsed().as_secs_f64(),
        calls as f64 / started.elapsed().as_secs_f64()
    );
    running.shutdown().await?;
    Ok(())
}
