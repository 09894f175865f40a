//! A throw-away ZooKeeper ensemble on loopback: the shared test harness's
//! (`tools/testkit`).

#![allow(unused_imports)]

pub use testkit::ensemble::*;
