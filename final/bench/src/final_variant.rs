//! The `final` variant: the tutorial's own framework, crate `mprpc`
//! (`final/`), used the way its examples use it: an `RpcProvider` with the
//! generated `UserServiceRpcServer`, and one `MprpcChannel` (one persistent,
//! multiplexed connection) behind the generated async `UserServiceRpcStub`,
//! cloned into every caller task.
//!
//! `mprpc` generates its own message types from the same `.proto`; the
//! handler moves the fields into the benchmark's types and calls the shared
//! [`crate::service::login`], exactly as the tarpc variant does, so every
//! variant runs the same business logic.

use std::net::SocketAddr;
use std::sync::Arc;

use mprpc::{
    CallContext, MprpcChannel, MprpcConfig, RpcProvider, RunningProvider, StaticRegistry, Status,
};
use mprpc_examples::fixbug as m;

use crate::BoxError;
use crate::pb::fixbug::{LoginRequest, LoginResponse};

/// Whether this build can run the `final` variant.
pub const AVAILABLE: bool = true;

/// The service, implementing mprpc's generated callee trait.
#[derive(Debug, Clone, Copy)]
struct UserService;

impl m::UserServiceRpc for UserService {
    async fn login(
        &self,
        _ctx: CallContext,
        request: m::LoginRequest,
    ) -> Result<m::LoginResponse, Status> {
        let response = crate::service::login(&LoginRequest {
            name: request.name,
            pwd: request.pwd,
        });
        let result = response.result.unwrap_or_default();
        Ok(m::LoginResponse {
            result: Some(m::ResultCode {
                errcode: result.errcode,
                errmsg: result.errmsg,
            }),
            success: response.success,
        })
    }

    async fn register(
        &self,
        _ctx: CallContext,
        _request: m::RegisterRequest,
    ) -> Result<m::RegisterResponse, Status> {
        Ok(m::RegisterResponse {
            result: Some(m::ResultCode::default()),
            success: false,
        })
    }
}

/// Starts an `RpcProvider` on `bind` (port 0 = any free port). No ZooKeeper:
/// the provider registers with an in-memory static registry, and callers are
/// given the address directly.
pub async fn start(bind: SocketAddr) -> Result<RunningProvider, BoxError> {
    let mut config = MprpcConfig::default();
    config.rpcserverip = bind.ip().to_string();
    config.rpcserverport = bind.port();
    let mut provider = RpcProvider::new(config).with_registry(Arc::new(StaticRegistry::default()));
    provider.notify_service(m::UserServiceRpcServer::new(UserService));
    Ok(provider.start().await?)
}

/// Caller side: one `MprpcChannel` shared by every caller task.
#[derive(Debug, Clone)]
pub struct Client {
    /// Generated async stub; clones share the channel and its connection.
    stub: m::UserServiceRpcStub,
    /// The request in mprpc's types, converted once.
    request: m::LoginRequest,
}

impl Client {
    /// A client for the provider at `addr` (connects on the first call).
    pub fn new(addr: SocketAddr, request: &LoginRequest) -> Self {
        let stub = m::UserServiceRpcStub::new(MprpcChannel::direct(&addr.to_string()));
        let request = m::LoginRequest {
            name: request.name.clone(),
            pwd: request.pwd.clone(),
        };
        Self { stub, request }
    }

    /// One `Login` call through the generated async stub.
    pub async fn login(&self) -> Result<LoginResponse, BoxError> {
        let response = self.stub.login(&self.request).await?;
        let result = response.result.unwrap_or_default();
        Ok(crate::service::login_response(
            result.errcode,
            result.errmsg,
            response.success,
        ))
    }
}
