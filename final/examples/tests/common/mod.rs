//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use mprpc::{MprpcConfig, RpcProvider, RunningProvider, StaticRegistry};
use mprpc_examples::fixbug::{FriendServiceRpcServer, UserServiceRpcServer};

/// Config for a provider on 127.0.0.1, any free port.
pub fn local_config() -> MprpcConfig {
    let mut config = MprpcConfig::default();
    config.rpcserverport = 0;
    config
}

/// Starts a provider with the demo services and no discovery.
pub async fn demo_provider(config: MprpcConfig) -> RunningProvider {
    let mut provider = RpcProvider::new(config).with_registry(Arc::new(StaticRegistry::default()));
    provider.notify_service(UserServiceRpcServer::new(
        mprpc_examples::UserService::default(),
    ));
    provider.notify_service(FriendServiceRpcServer::new(mprpc_examples::FriendService));
    match provider.start().await {
        Ok(p) => p,
        Err(e) => panic!("provider failed to start: {e}"),
    }
}

/// `<repo>/proto/captures`: the course's bytes (the shared harness's).
pub fn captures_dir() -> PathBuf {
    testkit::captures_dir()
}

/// Bytes of a capture file, named with its extension ("request.hex").
pub fn capture(name: &str) -> Vec<u8> {
    testkit::capture(name.trim_end_matches(".hex"))
}
