//! The caller writes its own requests on plain TCP (`client/connection/io.rs`,
//! `write_as_caller`), handing the rest to the writer task when the socket
//! is full. These tests fill the socket on purpose — a proxy between caller
//! and provider stops reading — and check that every request still arrives
//! whole and in order, including while calls are dropped mid-way.

mod support;

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use mprpc::{CallContext, MprpcChannel, MprpcController, Status};
use mprpc_examples::fixbug::{
    LoginRequest, LoginResponse, RegisterRequest, RegisterResponse, ResultCode, UserServiceRpc,
    UserServiceRpcServer, UserServiceRpcStub,
};

/// Answers Login with what it received: the name's length and a checksum
/// of its bytes, so a request mangled on the way shows in the answer.
struct Echo;

/// The checksum `Echo` answers with.
fn checksum(bytes: &[u8]) -> String {
    let sum = bytes.iter().enumerate().fold(0u64, |acc, (i, b)| {
        acc.wrapping_mul(31).wrapping_add(u64::from(*b) ^ i as u64)
    });
    format!("{}:{sum}", bytes.len())
}

impl UserServiceRpc for Echo {
    async fn login(
        &self,
        _ctx: CallContext,
        request: LoginRequest,
    ) -> Result<LoginResponse, Status> {
        Ok(LoginResponse {
            result: Some(ResultCode {
                errcode: 0,
                errmsg: checksum(&request.name).into_bytes(),
            }),
            success: true,
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

/// A proxy to `to` whose caller-to-provider direction moves only while
/// `open` is true: with it false, the caller's socket fills up.
async fn gated_proxy(
    to: std::net::SocketAddr,
    open: watch::Receiver<bool>,
) -> std::net::SocketAddr {
    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("{e}"),
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => panic!("{e}"),
    };
    tokio::spawn(async move {
        while let Ok((caller, _)) = listener.accept().await {
            let Ok(provider) = TcpStream::connect(to).await else {
                return;
            };
            let (mut crd, mut cwr) = caller.into_split();
            let (mut prd, mut pwr) = provider.into_split();
            let mut open = open.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    if open.wait_for(|o| *o).await.is_err() {
                        return;
                    }
                    match crd.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if pwr.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut prd, &mut cwr).await;
            });
        }
    });
    addr
}

/// A name of `len` bytes, different for every `seed`.
fn name(seed: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + seed * 13) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_socket_loses_no_request_and_mangles_none() {
    let mut provider = support::provider(support::local_config());
    provider.notify_service(UserServiceRpcServer::new(Echo));
    let p = support::start(provider).await;
    let (gate, open) = watch::channel(false);
    let proxy = gated_proxy(p.local_addr(), open).await;
    let channel = MprpcChannel::direct(&proxy.to_string());
    let stub = UserServiceRpcStub::new(channel);
    // Connected, preamble written, the gate closed: from now on callers
    // find nobody writing and write themselves.
    let _ = gate.send(true);
    let warm = stub
        .login(&LoginRequest {
            name: b"warm".to_vec(),
            pwd: Vec::new(),
        })
        .await;
    assert!(warm.is_ok(), "{warm:?}");
    let _ = gate.send(false);

    // 100 calls of 256 KiB each (25.6 MB) while nothing moves: far more than
    // the sockets hold, so callers find the socket full and hand over.
    let mut kept = Vec::new();
    for i in 0..100 {
        let stub = stub.clone();
        kept.push(tokio::spawn(async move {
            let request = LoginRequest {
                name: name(i, 256 * 1024),
                pwd: Vec::new(),
            };
            let controller = MprpcController::with_timeout(Duration::from_secs(30));
            let answer = stub.login_with(&controller, &request).await;
            (checksum(&request.name), answer)
        }));
    }
    // And calls dropped while their frames wait (their deadline passes).
    let mut dropped = Vec::new();
    for i in 0..100 {
        let stub = stub.clone();
        dropped.push(tokio::spawn(async move {
            let controller = MprpcController::with_timeout(Duration::from_millis(20));
            let request = LoginRequest {
                name: name(1000 + i, 16 * 1024),
                pwd: Vec::new(),
            };
            stub.login_with(&controller, &request).await
        }));
    }
    for d in dropped {
        let r = match d.await {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        assert!(
            r.is_err(),
            "a call with a 20 ms deadline answered through a closed gate"
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = gate.send(true);
    for k in kept {
        let (expected, answer) = match k.await {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        let answer = match answer {
            Ok(a) => a,
            Err(e) => panic!("a call through the reopened gate failed: {e}"),
        };
        let got = answer.result.map(|r| r.errmsg).unwrap_or_default();
        assert_eq!(String::from_utf8_lossy(&got), expected);
    }
    // The connection is still good for more.
    let answer = stub
        .login(&LoginRequest {
            name: b"after".to_vec(),
            pwd: Vec::new(),
        })
        .await;
    assert!(matches!(answer, Ok(ref a) if a.success), "{answer:?}");
    p.shutdown().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_small_calls_from_many_handles_all_arrive() {
    let mut provider = support::provider(support::local_config());
    provider.notify_service(UserServiceRpcServer::new(Echo));
    let p = support::start(provider).await;
    let stub = Arc::new(UserServiceRpcStub::new(MprpcChannel::direct(
        &p.local_addr().to_string(),
    )));
    // 64 tasks, half with a handle of their own (the cached path), half
    // sharing one (the shared path), 500 calls each.
    let mut tasks = Vec::new();
    for t in 0..64 {
        let own = (t % 2 == 0).then(|| (*stub).clone());
        let shared = Arc::clone(&stub);
        tasks.push(tokio::spawn(async move {
            let stub = own.as_ref().unwrap_or(&shared);
            for i in 0..500 {
                let request = LoginRequest {
                    name: name(t * 1000 + i, 1 + (i % 300)),
                    pwd: Vec::new(),
                };
                let answer = match stub.login(&request).await {
                    Ok(a) => a,
                    Err(e) => panic!("call {i} of task {t}: {e}"),
                };
                let got = answer.result.map(|r| r.errmsg).unwrap_or_default();
                assert_eq!(String::from_utf8_lossy(&got), checksum(&request.name));
            }
        }));
    }
    for t in tasks {
        if let Err(e) = t.await {
            panic!("{e}");
        }
    }
    p.shutdown().await.ok();
}
