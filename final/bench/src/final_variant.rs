//! The `final` variant: the tutorial's own framework, crate `mprpc`.
//!
//! Not wired yet: `final/` is still being written.

use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::BoxError;
use crate::pb::fixbug::{LoginRequest, LoginResponse};

/// Whether this build can run the `final` variant.
pub const AVAILABLE: bool = false;

/// Serves `listener` with `mprpc::RpcProvider`.
pub async fn serve(_listener: TcpListener) -> Result<(), BoxError> {
    Err("the final variant is not wired into the benchmark yet".into())
}

/// Caller side: one `mprpc::MprpcChannel` shared by every caller task.
#[derive(Debug, Clone)]
pub struct Client;

impl Client {
    /// Connects to `addr`.
    pub async fn connect(_addr: SocketAddr) -> Result<Self, BoxError> {
        Err("the final variant is not wired into the benchmark yet".into())
    }

    /// One `Login` call through the generated async stub.
    pub async fn login(&self, _request: &LoginRequest) -> Result<LoginResponse, BoxError> {
        Err("the final variant is not wired into the benchmark yet".into())
    }
}
