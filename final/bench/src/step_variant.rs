//! The `step` variant: the course's design, exactly as the tutorial's last
//! step (`steps/12-zookeeper-integration`, library `step`) implements it —
//! one new TCP connection per call, the course's wire format
//! (`[u32 header_size, little-endian][RpcHeader][args]`, response = the bare
//! message, end = the provider closing), a synchronous caller.
//!
//! Two departures, both in the design's favour:
//!
//! * **No ZooKeeper.** The course's `MprpcChannel` opens a ZooKeeper session
//!   per call to look the provider up; the benchmark uses
//!   `MprpcChannel::direct(addr)`, a static lookup. With ZooKeeper the cost
//!   per call would be higher still.
//! * **No log file.** The step's provider logs every connection through the
//!   asynchronous logger to `logs/`; here its log sink drops the lines (they
//!   are still formatted), so the disk is not part of the measurement —
//!   `final` logs nothing per call either.
//!
//! The provider runs with as many worker threads as there are cores, like
//! the other servers (the course used 4). The caller is blocking, as in the
//! course, so the load generator runs it on one OS thread per call in flight.

use std::net::SocketAddr;
use std::sync::Arc;

use step::channel::MprpcChannel;
use step::config::MprpcConfig;
use step::controller::MprpcController;
use step::fixbug as s;
use step::provider::{ProviderHandle, RpcProvider};
use step::rpc::RpcController;

use crate::BoxError;
use crate::pb::fixbug::{LoginRequest, LoginResponse};

/// Shown in reports: what the `step` variant measures.
pub const DESCRIPTION: &str = "the course's design as steps/12-zookeeper-integration implements it: \
new TCP connection per call, course wire format, blocking caller (one OS thread per call in flight); \
static address lookup (MprpcChannel::direct), no ZooKeeper; provider log lines dropped, not written";

/// The service, implementing the step's generated (synchronous) callee trait.
#[derive(Debug, Clone, Copy)]
struct UserService;

impl s::UserServiceRpc for UserService {
    fn login(&self, request: &s::LoginRequest, response: &mut s::LoginResponse) {
        let ok = crate::service::accepts(&request.name, &request.pwd);
        response.result = Some(s::ResultCode {
            errcode: if ok { 0 } else { 1 },
            errmsg: if ok {
                Vec::new()
            } else {
                b"bad name or password".to_vec()
            },
        });
        response.success = ok;
    }

    fn register(&self, _request: &s::RegisterRequest, response: &mut s::RegisterResponse) {
        response.result = Some(s::ResultCode::default());
        response.success = false;
    }
}

/// Starts the step's `RpcProvider` on `bind` on its own runtime thread,
/// without registering in ZooKeeper.
pub fn start(bind: SocketAddr) -> Result<ProviderHandle, BoxError> {
    let config = MprpcConfig {
        rpcserverip: bind.ip(),
        rpcserverport: bind.port(),
        // Never contacted: `start` does not register.
        zookeeperip: "127.0.0.1".to_owned(),
        zookeeperport: 2181,
        zk_session_timeout_ms: 30_000,
    };
    let mut provider = RpcProvider::new(&config);
    provider.set_thread_num(std::thread::available_parallelism().map_or(2, |n| n.get()));
    provider.set_log_sink(Arc::new(|_, _| {}));
    provider.notify_service(s::UserServiceRpcServer(UserService))?;
    Ok(provider.start(bind)?)
}

/// Caller side: the step's stub over `MprpcChannel::direct`. Blocking; one
/// per caller thread (the step's stub is not `Clone`).
#[derive(Debug)]
pub struct Client {
    /// Generated stub; each call connects anew.
    stub: s::UserServiceRpcStub<MprpcChannel>,
    /// The request in the step's types, converted once.
    request: s::LoginRequest,
}

impl Client {
    /// A client for the provider at `addr`; connects nothing yet.
    pub fn new(addr: SocketAddr, request: &LoginRequest) -> Self {
        Self {
            stub: s::UserServiceRpcStub::new(MprpcChannel::direct(addr)),
            request: s::LoginRequest {
                name: request.name.clone(),
                pwd: request.pwd.clone(),
            },
        }
    }

    /// One call: connect, send, read until the provider closes. Blocks.
    pub fn login(&self) -> Result<LoginResponse, BoxError> {
        let mut controller = MprpcController::new();
        let mut response = s::LoginResponse::default();
        self.stub
            .login(Some(&mut controller), &self.request, &mut response);
        if controller.failed() {
            return Err(controller.error_text().to_owned().into());
        }
        let result = response.result.unwrap_or_default();
        Ok(crate::service::login_response(
            result.errcode,
            result.errmsg,
            response.success,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_connection_per_call_through_step_12() -> Result<(), BoxError> {
        let handle = start(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let client = Client::new(handle.local_addr(), &crate::service::sample_request());
        for _ in 0..3 {
            assert!(client.login()?.success);
        }
        handle.shutdown();
        Ok(())
    }
}
