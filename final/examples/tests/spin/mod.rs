//! A hand-written [`Service`] for the provider tests that need handlers
//! with a known cost, and a raw framed client written from the wire-format
//! chapter (`book/src/reference/wire-formats.md`), byte by byte.
//!
//! `Spin` has three methods; each takes a 4-byte big-endian number `n` as
//! its whole request (no protobuf needed: the provider hands the payload to
//! the service as bytes):
//!
//! * `Sleep` awaits a `n` ms timer (an I/O-bound handler);
//! * `Burn` computes for `n` ms without awaiting (a CPU-bound handler);
//! * `Echo` answers with `n` bytes of `0x2a`.
#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mprpc::frame::{self, Frame};
use mprpc::{CallContext, ErrorCode, ResponseFuture, Service, ServiceDescriptor, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Names of the service.
pub static SPIN: ServiceDescriptor =
    ServiceDescriptor::new("Spin", "test.Spin", &["Sleep", "Burn", "Echo"]);

/// The name the provider publishes `Spin` under, as framed requests carry it.
pub fn wire_name() -> &'static str {
    SPIN.full_name
}

/// `Sleep` handlers dropped before they finished (cancelled, or their
/// connection closed). Tests that read it run in their own binary.
pub static DROPPED: AtomicUsize = AtomicUsize::new(0);

/// The `Spin` service.
#[derive(Debug, Default)]
pub struct Spin;

/// Counts a `Sleep` handler dropped before completion.
struct DropCounter(bool);

impl Drop for DropCounter {
    fn drop(&mut self) {
        if !self.0 {
            DROPPED.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Service for Spin {
    fn descriptor(&self) -> &'static ServiceDescriptor {
        &SPIN
    }

    fn call(&self, method: usize, _ctx: CallContext, request: bytes::Bytes) -> ResponseFuture {
        let n = match <[u8; 4]>::try_from(&request[..]) {
            Ok(b) => u32::from_be_bytes(b),
            Err(_) => {
                return Box::pin(std::future::ready(Err(Status::new(
                    ErrorCode::BadRequest,
                    "Spin takes a 4-byte number",
                ))));
            }
        };
        let fut: Pin<Box<dyn Future<Output = Result<Vec<u8>, Status>> + Send>> = match method {
            0 => Box::pin(async move {
                let mut guard = DropCounter(false);
                tokio::time::sleep(Duration::from_millis(u64::from(n))).await;
                guard.0 = true;
                Ok(b"slept".to_vec())
            }),
            1 => Box::pin(async move {
                let until = Instant::now() + Duration::from_millis(u64::from(n));
                let mut x = 0u64;
                while Instant::now() < until {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
                Ok(b"burnt".to_vec())
            }),
            _ => Box::pin(async move { Ok(vec![0x2a; n as usize]) }),
        };
        fut
    }
}

/// Starts a provider with `Spin` only, on a free port.
pub async fn provider(config: mprpc::MprpcConfig) -> mprpc::RunningProvider {
    let mut config = config;
    config.rpcserverport = 0;
    let mut provider = mprpc::RpcProvider::new(config)
        .with_registry(std::sync::Arc::new(mprpc::StaticRegistry::default()));
    provider.notify_service(Spin);
    match provider.start().await {
        Ok(p) => p,
        Err(e) => panic!("provider failed to start: {e}"),
    }
}

/// A request frame, laid out by hand as the wire-format chapter gives it:
/// `u32 length | u8 kind=1 | u64 id | u32 timeout_ms | u8 S | service |
/// u8 M | method | payload`, integers big-endian.
pub fn request(id: u64, timeout_ms: u32, service: &str, method: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.push(1u8);
    body.extend_from_slice(&id.to_be_bytes());
    body.extend_from_slice(&timeout_ms.to_be_bytes());
    body.push(service.len() as u8);
    body.extend_from_slice(service.as_bytes());
    body.push(method.len() as u8);
    body.extend_from_slice(method.as_bytes());
    body.extend_from_slice(payload);
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend(body);
    out
}

/// A `Spin` request for method `method` with argument `n`.
pub fn spin(id: u64, method: &str, n: u32) -> Vec<u8> {
    request(id, 0, wire_name(), method, &n.to_be_bytes())
}

/// A cancel frame: `u32 length = 9 | u8 kind=3 | u64 id`.
pub fn cancel(id: u64) -> Vec<u8> {
    let mut out = 9u32.to_be_bytes().to_vec();
    out.push(3);
    out.extend_from_slice(&id.to_be_bytes());
    out
}

/// A raw framed connection.
pub struct Raw {
    /// The socket.
    pub stream: TcpStream,
    /// Bytes received and not yet decoded.
    buf: BytesMut,
}

impl Raw {
    /// Connects, sends the preamble and checks the provider's.
    pub async fn connect(addr: &str) -> Raw {
        let mut stream = match TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(e) => panic!("connecting to {addr}: {e}"),
        };
        let _ = stream.set_nodelay(true);
        if let Err(e) = stream.write_all(&frame::PREAMBLE).await {
            panic!("sending the preamble: {e}");
        }
        let mut preamble = [0u8; 8];
        match tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut preamble)).await {
            Ok(Ok(_)) => {}
            other => panic!("no preamble from the provider: {other:?}"),
        }
        assert_eq!(preamble, frame::PREAMBLE);
        Raw {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// Sends raw bytes.
    pub async fn send(&mut self, bytes: &[u8]) {
        if let Err(e) = self.stream.write_all(bytes).await {
            panic!("sending: {e}");
        }
    }

    /// The next frame, or `None` if none arrives within `wait` (or the
    /// connection closed).
    pub async fn next(&mut self, wait: Duration) -> Option<Frame> {
        let until = tokio::time::Instant::now() + wait;
        loop {
            match frame::try_decode(&mut self.buf, 1 << 24) {
                Ok(Some(f)) => return Some(f),
                Ok(None) => {}
                Err(e) => panic!("bad frame from the provider: {e}"),
            }
            match tokio::time::timeout_at(until, self.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
                Ok(Ok(_)) => {}
            }
        }
    }

    /// The next response: (id, code, payload). Panics on anything else.
    pub async fn response(&mut self, wait: Duration) -> Option<(u64, ErrorCode, Vec<u8>)> {
        match self.next(wait).await? {
            Frame::Response {
                id, code, payload, ..
            } => Some((id, code, payload.to_vec())),
            other => panic!("expected a response, got {other:?}"),
        }
    }
}
