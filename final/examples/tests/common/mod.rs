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

/// `<repo>/proto/captures`: the course's bytes, copied into the repository.
pub fn captures_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto/captures");
    assert!(
        dir.is_dir(),
        "captures not found at {}: they belong in proto/captures/ of this repository",
        dir.display()
    );
    dir
}

/// Bytes of a capture file (hex text).
pub fn capture(name: &str) -> Vec<u8> {
    let path = captures_dir().join(name);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => panic!("reading {}: {e}", path.display()),
    };
    let hex: Vec<u8> = text.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
    assert!(hex.len() % 2 == 0, "{name}: odd number of hex digits");
    hex.chunks(2)
        .map(|p| {
            let s = std::str::from_utf8(p).unwrap_or("00");
            u8::from_str_radix(s, 16).unwrap_or(0)
        })
        .collect()
}
