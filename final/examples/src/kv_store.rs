//! `kv.KvStore`: the book's chapter "Your own service", grown for
//! deployment (see its "Going further") — a key-value store in memory, bounded so that no caller can grow it without
//! limit.

use std::collections::HashMap;
use std::sync::Mutex;

use mprpc::{CallContext, Status};

use crate::kv::{
    DeleteRequest, DeleteResponse, GetRequest, GetResponse, KvStore, PutRequest, PutResponse,
};

/// Most keys the store holds.
pub const MAX_KEYS: usize = 100_000;

/// Longest value accepted, in bytes.
pub const MAX_VALUE_LEN: usize = 64 * 1024;

// ANCHOR: kv_store
/// The store: one map behind a mutex. Handlers never hold the lock across an
/// `.await`, so a plain `std::sync::Mutex` is the right tool.
#[derive(Debug, Default)]
pub struct KvStoreService {
    /// Key → value.
    map: Mutex<HashMap<String, Vec<u8>>>,
}

impl KvStoreService {
    /// Locks the map, tolerating poisoning (every entry is always whole).
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<u8>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl KvStore for KvStoreService {
    async fn get(&self, _ctx: CallContext, request: GetRequest) -> Result<GetResponse, Status> {
        let value = self.map().get(&request.key).cloned();
        Ok(GetResponse {
            found: value.is_some(),
            value: value.unwrap_or_default(),
        })
    }

    async fn put(&self, _ctx: CallContext, request: PutRequest) -> Result<PutResponse, Status> {
        if request.value.len() > MAX_VALUE_LEN {
            // Not a business outcome but a call that cannot be served: the
            // caller gets a Status (code HandlerError) instead of a response.
            return Err(Status::handler(format!(
                "values may have at most {MAX_VALUE_LEN} bytes, this one has {}",
                request.value.len()
            )));
        }
        let mut map = self.map();
        if map.len() >= MAX_KEYS && !map.contains_key(&request.key) {
            return Err(Status::handler(format!(
                "the store is full ({MAX_KEYS} keys)"
            )));
        }
        let previous = map.insert(request.key, request.value);
        Ok(PutResponse { previous })
    }

    async fn delete(
        &self,
        _ctx: CallContext,
        request: DeleteRequest,
    ) -> Result<DeleteResponse, Status> {
        let existed = self.map().remove(&request.key).is_some();
        Ok(DeleteResponse { existed })
    }
}
// ANCHOR_END: kv_store
