//! Test support: real, throw-away ZooKeeper servers (standalone and
//! ensemble) and providers running as child processes.

pub mod provider_process;
pub mod zk_ensemble;
pub mod zk_server;
