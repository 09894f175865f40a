//! Test support: real, throw-away ZooKeeper servers (standalone and
//! ensemble), providers running as child processes, and the runtime and
//! timing check the ZooKeeper tests share.

pub mod callee_process;
pub mod harness;
pub mod provider_process;
pub mod zk_ensemble;
pub mod zk_server;
