//! # mprpc — the course's RPC framework, finished
//!
//! wip
#![deny(missing_docs)]

pub mod application;
pub mod channel;
pub mod config;
mod connection;
pub mod controller;
pub mod demo;
pub mod error;
pub mod frame;
pub mod legacy;
pub mod logger;
pub mod proto;
pub mod provider;
pub mod registry;
pub mod service;
pub mod zk_client;

pub use application::MprpcApplication;
pub use channel::{BlockingChannel, MprpcChannel};
pub use config::{LoadBalance, MprpcConfig};
pub use controller::MprpcController;
pub use error::{Error, ErrorCode, RpcError, Status};
pub use provider::{RpcProvider, RunningProvider};
pub use registry::{ProviderList, Registry, StaticRegistry, ZkRegistry};
pub use service::{CallContext, ResponseFuture, Service, ServiceDescriptor};
pub use zk_client::ZkClient;
