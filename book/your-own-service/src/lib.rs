//! `my-kv`: a key-value store served with mprpc, the crate of the book's
//! chapter "Your own service". The server (`src/main.rs`), the client
//! (`src/bin/client.rs`) and the tests (`tests/service.rs`) share this code.

// ANCHOR: include_proto
/// The code `mprpc-build` generated from `proto/kv.proto` (package `kv`).
pub mod kv {
    mprpc::include_proto!("kv");
}
// ANCHOR_END: include_proto

// ANCHOR: store
use std::collections::HashMap;
use std::sync::Mutex;

use mprpc::{CallContext, Status};

use kv::{GetRequest, GetResponse, PutRequest, PutResponse};

/// The most keys the store holds: its memory must not grow with whatever
/// callers send.
pub const MAX_KEYS: usize = 1_000;

/// The service: a map behind a lock.
#[derive(Debug, Default)]
pub struct Store {
    /// Key -> value.
    map: Mutex<HashMap<String, Vec<u8>>>,
}

impl kv::KvStore for Store {
    async fn get(&self, _ctx: CallContext, request: GetRequest) -> Result<GetResponse, Status> {
        let map = self
            .map
            .lock()
            .map_err(|_| Status::handler("store poisoned"))?;
        Ok(match map.get(&request.key) {
            Some(value) => GetResponse {
                found: true,
                value: value.clone(),
            },
            None => GetResponse {
                found: false,
                value: Vec::new(),
            },
        })
    }

    async fn put(&self, _ctx: CallContext, request: PutRequest) -> Result<PutResponse, Status> {
        let mut map = self
            .map
            .lock()
            .map_err(|_| Status::handler("store poisoned"))?;
        if map.len() >= MAX_KEYS && !map.contains_key(&request.key) {
            // A Status is what the caller's call returns as its error.
            return Err(Status::handler(format!("store full ({MAX_KEYS} keys)")));
        }
        let previous = map.insert(request.key, request.value);
        Ok(PutResponse { previous })
    }
}
// ANCHOR_END: store
