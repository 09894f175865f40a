//! The `tonic` variant: the same `.proto`, served as gRPC over HTTP/2.
//! The client is one `Channel` (one HTTP/2 connection) cloned into every
//! caller task, which is how tonic is meant to be used.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Request, Response, Status};

use crate::BoxError;
use crate::pb::fixbug::user_service_rpc_client::UserServiceRpcClient;
use crate::pb::fixbug::user_service_rpc_server::{UserServiceRpc, UserServiceRpcServer};
use crate::pb::fixbug::{LoginRequest, LoginResponse, RegisterRequest, RegisterResponse};

/// The service, as tonic wants it.
#[derive(Debug, Default)]
struct UserService;

#[tonic::async_trait]
impl UserServiceRpc for UserService {
    async fn login(
        &self,
        request: Request<LoginRequest>,
    ) -> Result<Response<LoginResponse>, Status> {
        Ok(Response::new(crate::service::login(request.get_ref())))
    }

    async fn register(
        &self,
        _request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        Err(Status::unimplemented("the benchmark only calls Login"))
    }
}

/// Serves `listener` until the process ends.
pub async fn serve(listener: TcpListener) -> Result<(), BoxError> {
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    Server::builder()
        .add_service(UserServiceRpcServer::new(UserService))
        .serve_with_incoming(incoming)
        .await?;
    Ok(())
}

/// Caller side: a tonic client over one shared channel.
#[derive(Debug, Clone)]
pub struct Client {
    /// Generated client; clones share the HTTP/2 connection.
    inner: UserServiceRpcClient<Channel>,
}

impl Client {
    /// Connects one channel to `addr`.
    pub async fn connect(addr: SocketAddr) -> Result<Self, BoxError> {
        let channel = Endpoint::from_shared(format!("http://{addr}"))?
            .tcp_nodelay(true)
            .connect()
            .await?;
        Ok(Self {
            inner: UserServiceRpcClient::new(channel),
        })
    }

    /// One `Login` call. tonic's API takes the request by value, hence the clone.
    pub async fn login(&mut self, request: &LoginRequest) -> Result<LoginResponse, BoxError> {
        Ok(self.inner.login(request.clone()).await?.into_inner())
    }
}
