//! Test support: a real, throw-away ZooKeeper server.

pub mod zk_server;
