//! Test support, one module for every test of final/examples: providers in
//! the test's own process (`in_process`, re-exported here: `support::login()`,
//! `support::demo_provider(…)`), providers as child processes
//! (`provider_process` for fault tests, `callee_process` for measuring the
//! provider's own memory and descriptors), real throw-away ZooKeeper servers
//! (standalone and ensemble) and the runtime and timing checks the ZooKeeper
//! tests share. Process and ZooKeeper plumbing itself is the shared
//! harness's (`tools/testkit`); what is here is what only these tests need.

// Every test binary uses a different part of this module.
#![allow(dead_code, unused_imports)]

pub mod callee_process;
pub mod harness;
pub mod in_process;
pub mod provider_process;
pub mod zk_ensemble;
pub mod zk_server;

pub use in_process::*;
