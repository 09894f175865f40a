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
use std::path::PathBuf;
use std::sync::Arc;

use mprpc::{
    CallContext, MprpcChannel, MprpcConfig, RpcProvider, RunningProvider, StaticRegistry, Status,
};
use mprpc_examples::fixbug as m;

use crate::BoxError;
use crate::pb::fixbug::{LoginRequest, LoginResponse};
use crate::variant::Variant;

/// What is switched on in a `final` variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Features {
    /// Everything off: plain TCP, no metrics, no tracing subscriber.
    Plain,
    /// TLS on both sides.
    Tls,
    /// Metrics collected (an admin address bound, nobody scraping).
    Metrics,
}

impl Features {
    /// The features of `variant`, if it is one of the `final` variants.
    pub fn of(variant: Variant) -> Option<Features> {
        match variant {
            Variant::Final => Some(Features::Plain),
            Variant::FinalTls => Some(Features::Tls),
            Variant::FinalMetrics => Some(Features::Metrics),
            _ => None,
        }
    }
}

/// Where the `final-tls` server leaves its CA for the load generator (one
/// benchmark at a time on a machine; rewritten by every TLS server start).
pub fn pki_dir() -> PathBuf {
    std::env::temp_dir().join("mprpc-bench-pki")
}

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
pub async fn start(bind: SocketAddr, features: Features) -> Result<RunningProvider, BoxError> {
    let mut config = MprpcConfig::default();
    config.rpcserverip = bind.ip().to_string();
    config.rpcserverport = bind.port();
    // Room for the scale section's 10,000 idle connections (the default,
    // 1,024, would evict them); a limit only, nothing is reserved for it.
    config.limits.max_connections = 16_384;
    match features {
        Features::Plain => {}
        Features::Tls => {
            // Fresh certificates, copied where the load generator looks,
            // before the server announces itself.
            let pki = testkit::TestPki::new()?;
            let dir = pki_dir();
            std::fs::create_dir_all(&dir)?;
            for name in ["ca.pem", "provider.pem", "provider.key"] {
                std::fs::copy(pki.path(name), dir.join(name))?;
            }
            config.tls.cert = Some(dir.join("provider.pem"));
            config.tls.key = Some(dir.join("provider.key"));
        }
        Features::Metrics => config.admin.address = Some("127.0.0.1:0".into()),
    }
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
    /// A client for the provider at `addr` (connects on the first call),
    /// over TLS verified against the `final-tls` server's CA if `tls`.
    pub fn new(addr: SocketAddr, request: &LoginRequest, tls: bool) -> Result<Self, BoxError> {
        let mut config = MprpcConfig::default();
        if tls {
            config.tls.ca = Some(pki_dir().join("ca.pem"));
        }
        let stub =
            m::UserServiceRpcStub::new(MprpcChannel::direct_with(&config, &addr.to_string()));
        let request = m::LoginRequest {
            name: request.name.clone(),
            pwd: request.pwd.clone(),
        };
        Ok(Self { stub, request })
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
