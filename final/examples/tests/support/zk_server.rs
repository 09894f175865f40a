//! A throw-away standalone ZooKeeper: the shared test harness's
//! (`tools/testkit`), under the name these tests have always used.

#![allow(unused_imports)]

pub use testkit::net::free_port;
pub use testkit::zookeeper::*;
