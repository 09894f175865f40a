//! The `step` variant: the course's design, one new TCP connection per call,
//! in the course's own wire format:
//!
//! ```text
//! request : [u32 header_size, little-endian][RpcHeader][args]   (no overall length)
//! response: [serialized LoginResponse], then the provider closes the socket
//! ```
//!
//! The tutorial's step crates that implement this (`steps/08-channel`, later
//! `steps/12-zookeeper-integration`) were not in the tree when this benchmark
//! was written, so this module re-implements the same design in a few lines:
//! connect, write one frame, read to EOF. Where the course asks ZooKeeper for
//! the provider's address on every call (a new ZooKeeper session each time),
//! the benchmark uses a static lookup — the address the driver hands it —
//! so the numbers here are *better* than the course's real cost.
//!
//! Unlike the course's server, this one reads the frame with exact reads (so
//! split or coalesced segments cannot break it) and bounds every length.

use std::net::SocketAddr;

use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::BoxError;
use crate::pb::fixbug::{LoginRequest, LoginResponse};
use crate::pb::mprpc::RpcHeader;

/// Shown in reports: what the `step` variant really measures.
pub const DESCRIPTION: &str = "course design (new TCP connection per call, course wire format), \
re-implemented in bench because steps/08 and steps/12 are not in the tree yet; \
static address lookup, no ZooKeeper";

/// Largest `header_size` accepted.
const MAX_HEADER: usize = 4 * 1024;
/// Largest `args_size` (and response) accepted.
const MAX_BODY: usize = 1 << 20;

/// Serves `listener` forever, one task per connection, one call per connection.
pub async fn serve(listener: TcpListener) -> Result<(), BoxError> {
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            if let Err(err) = serve_one(stream).await {
                eprintln!("step server: call failed: {err}");
            }
        });
    }
}

/// Reads one request, answers it, closes.
async fn serve_one(mut stream: TcpStream) -> Result<(), BoxError> {
    stream.set_nodelay(true)?;
    let header_size = stream.read_u32_le().await? as usize;
    if header_size > MAX_HEADER {
        return Err(format!("header_size {header_size} too large").into());
    }
    let mut header = vec![0; header_size];
    stream.read_exact(&mut header).await?;
    let header = RpcHeader::decode(header.as_slice())?;
    let args_size = header.args_size as usize;
    if args_size > MAX_BODY {
        return Err(format!("args_size {args_size} too large").into());
    }
    if header.service_name != b"UserServiceRpc" || header.method_name != b"Login" {
        // The course left the caller hanging here; closing tells it at once.
        return Err("unknown service or method".into());
    }
    let mut args = vec![0; args_size];
    stream.read_exact(&mut args).await?;
    let request = LoginRequest::decode(args.as_slice())?;
    stream
        .write_all(&crate::service::login(&request).encode_to_vec())
        .await?;
    stream.shutdown().await?;
    Ok(())
}

/// Caller side. Holds only the provider's address: every call connects anew,
/// as the course's `MprpcChannel::CallMethod` did.
#[derive(Debug, Clone)]
pub struct Client {
    /// Where the provider listens (the course would ask ZooKeeper).
    addr: SocketAddr,
}

impl Client {
    /// A client for the provider at `addr`; connects nothing yet.
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr }
    }

    /// One call: connect, send the frame, read the response until EOF.
    pub async fn login(&self, request: &LoginRequest) -> Result<LoginResponse, BoxError> {
        let args = request.encode_to_vec();
        let header = RpcHeader {
            service_name: b"UserServiceRpc".to_vec(),
            method_name: b"Login".to_vec(),
            args_size: u32::try_from(args.len())?,
        }
        .encode_to_vec();
        let mut frame = Vec::with_capacity(4 + header.len() + args.len());
        frame.extend_from_slice(&u32::try_from(header.len())?.to_le_bytes());
        frame.extend_from_slice(&header);
        frame.extend_from_slice(&args);

        // ANCHOR: per_call_connection
        let mut stream = TcpStream::connect(self.addr).await?;
        stream.set_nodelay(true)?;
        stream.write_all(&frame).await?;
        let mut response = Vec::new();
        (&mut stream)
            .take(MAX_BODY as u64 + 1)
            .read_to_end(&mut response)
            .await?;
        // ANCHOR_END: per_call_connection
        if response.len() > MAX_BODY {
            return Err("response too large".into());
        }
        if response.is_empty() {
            // The course parsed an empty reply as a successful default message.
            return Err("provider closed without a response".into());
        }
        Ok(LoginResponse::decode(response.as_slice())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_connection_per_call() -> Result<(), BoxError> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(serve(listener));
        let client = Client::new(addr);
        for _ in 0..3 {
            assert!(
                client
                    .login(&crate::service::sample_request())
                    .await?
                    .success
            );
        }
        Ok(())
    }
}
