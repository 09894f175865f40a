//! The `tarpc` variant. tarpc defines services as Rust traits with serde
//! types rather than `.proto` files, so the messages are mirrored here field
//! for field. Transport: TCP, length-delimited frames, bincode (tarpc's
//! `serde_transport` with tokio-serde's `Bincode` codec). One client, cloned
//! into every caller task, multiplexes all calls over one connection.

use std::net::SocketAddr;

use futures_util::{StreamExt, future};
use serde::{Deserialize, Serialize};
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Bincode;
use tarpc::{client, context};
use tokio::net::TcpListener;

use crate::BoxError;
use crate::pb::fixbug;

/// `fixbug.ResultCode`, as a serde type.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ResultCode {
    /// 0 = success.
    pub errcode: i32,
    /// Error text, empty on success.
    pub errmsg: Vec<u8>,
}

/// `fixbug.LoginRequest`, as a serde type.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoginRequest {
    /// User name.
    pub name: Vec<u8>,
    /// Password.
    pub pwd: Vec<u8>,
}

/// `fixbug.LoginResponse`, as a serde type.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoginResponse {
    /// Application outcome.
    pub result: ResultCode,
    /// Whether the credentials were accepted.
    pub success: bool,
}

/// `UserServiceRpc` with its one benchmarked method.
#[tarpc::service]
pub trait UserServiceRpc {
    /// Checks a user's credentials.
    async fn login(request: LoginRequest) -> LoginResponse;
}

/// The server implementation: converts and calls the shared logic, so tarpc
/// does the same work per call as the protobuf variants.
#[derive(Debug, Clone, Copy)]
struct UserService;

impl UserServiceRpc for UserService {
    async fn login(self, _: context::Context, request: LoginRequest) -> LoginResponse {
        let request = fixbug::LoginRequest {
            name: request.name,
            pwd: request.pwd,
        };
        let response = crate::service::login(&request);
        let result = response.result.unwrap_or_default();
        LoginResponse {
            result: ResultCode {
                errcode: result.errcode,
                errmsg: result.errmsg,
            },
            success: response.success,
        }
    }
}

/// Serves `listener` until the process ends: every connection gets its own
/// channel, every request its own task (tarpc's documented setup).
pub async fn serve(listener: TcpListener) -> Result<(), BoxError> {
    let incoming = tarpc::serde_transport::tcp::listen_on(listener, Bincode::default).await?;
    incoming
        .filter_map(|conn| future::ready(conn.ok()))
        .for_each(|transport| {
            let _ = transport.get_ref().set_nodelay(true);
            let channel = BaseChannel::with_defaults(transport);
            tokio::spawn(
                channel
                    .execute(UserService.serve())
                    .for_each(|response| async move {
                        tokio::spawn(response);
                    }),
            );
            future::ready(())
        })
        .await;
    Ok(())
}

/// Caller side: one tarpc client.
#[derive(Debug, Clone)]
pub struct Client {
    /// Generated client; clones share the connection.
    inner: UserServiceRpcClient,
    /// The request, converted once.
    request: LoginRequest,
}

impl Client {
    /// Connects to `addr` and spawns tarpc's dispatch task.
    pub async fn connect(
        addr: SocketAddr,
        request: &fixbug::LoginRequest,
    ) -> Result<Self, BoxError> {
        let transport = tarpc::serde_transport::tcp::connect(addr, Bincode::default).await?;
        transport.get_ref().set_nodelay(true)?;
        let inner = UserServiceRpcClient::new(client::Config::default(), transport).spawn();
        let request = LoginRequest {
            name: request.name.clone(),
            pwd: request.pwd.clone(),
        };
        Ok(Self { inner, request })
    }

    /// One `Login` call, converted back to the prost type for checking.
    pub async fn login(&self) -> Result<fixbug::LoginResponse, BoxError> {
        let response = self
            .inner
            .login(context::current(), self.request.clone())
            .await?;
        Ok(crate::service::login_response(
            response.result.errcode,
            response.result.errmsg,
            response.success,
        ))
    }
}
