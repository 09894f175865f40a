//! Code generated from `proto/*.proto` at build time (see `build.rs`): prost
//! messages plus, per service, a descriptor, a callee trait, a server
//! adapter, an async stub and a blocking stub.

/// Package `fixbug`: the course's example messages and services
/// (`UserServiceRpc`, `FriendServiceRpc`).
pub mod fixbug {
    include!(concat!(env!("OUT_DIR"), "/fixbug.rs"));
}

/// Package `mprpc`: the course's request header, used by the legacy format
/// ([`crate::legacy`]).
pub mod mprpc {
    include!(concat!(env!("OUT_DIR"), "/mprpc.rs"));
}
