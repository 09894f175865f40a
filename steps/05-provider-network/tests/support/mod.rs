//! Helpers shared by this step's integration tests: a config, and a
//! provider started on 127.0.0.1 with a port the system picks whose log
//! goes to a recorder. The harness itself (the recorder, raw clients, the
//! course's captures, ZooKeeper) is the shared crate `tools/testkit`.

// Each test file compiles this module separately and uses only part of it.
#![allow(dead_code, unused_imports)]

use std::net::SocketAddr;
use step::config::MprpcConfig;
use step::provider::{Level, ProviderHandle, RpcProvider};

/// The provider's log so far: level and text of each line.
pub type Lines = Vec<(Level, String)>;

/// Collects the provider's log lines so a test can wait for one.
pub type Recorder = testkit::Recorder<Level>;

/// Concatenates the hex of every `on_message` line logged for `peer`: all
/// the bytes that arrived from it, however they were split.
pub fn received_hex(lines: &[(Level, String)], peer: SocketAddr) -> String {
    let prefix = format!("on_message: {peer} sent ");
    lines
        .iter()
        .filter_map(|(_, line)| line.strip_prefix(&prefix))
        .filter_map(|rest| rest.split(": ").nth(1))
        .collect()
}

/// A config for 127.0.0.1:`port`.
pub fn config(port: u16) -> MprpcConfig {
    MprpcConfig {
        rpcserverip: [127, 0, 0, 1].into(),
        rpcserverport: port,
        zookeeperip: "127.0.0.1".to_string(),
        zookeeperport: 2181,
    }
}

/// A provider on 127.0.0.1 with a port the system picks.
pub fn start_provider() -> (ProviderHandle, Recorder) {
    start_provider_with(|_| {})
}

/// A provider on 127.0.0.1 with a port the system picks, set up by
/// `configure` before it starts.
pub fn start_provider_with(configure: impl FnOnce(&mut RpcProvider)) -> (ProviderHandle, Recorder) {
    let recorder = Recorder::default();
    let mut provider = RpcProvider::new(&config(0));
    provider.set_thread_num(4);
    provider.set_log_sink(recorder.sink());
    configure(&mut provider);
    let handle = provider
        .start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("start the provider");
    recorder.wait_for("RpcProvider listening on 127.0.0.1:");
    (handle, recorder)
}
