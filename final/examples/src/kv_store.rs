//! `kv.KvStore`: the book's chapter "Your own service", grown for
//! deployment (see its "Going further") — a key-value store in memory, bounded so that no caller can grow it without
//! limit — and `Watch`, a server stream of one key's changes.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use mprpc::{CallContext, ErrorCode, Status};
use tokio::sync::broadcast;

use crate::kv::watch_event::Kind;
use crate::kv::{
    DeleteRequest, DeleteResponse, GetRequest, GetResponse, KvStore, PutRequest, PutResponse,
    WatchEvent, WatchRequest,
};

/// Most keys the store holds.
pub const MAX_KEYS: usize = 100_000;

/// Longest value accepted, in bytes.
pub const MAX_VALUE_LEN: usize = 64 * 1024;

/// Changes the store keeps for watchers that have not taken them yet. With
/// values of at most [`MAX_VALUE_LEN`] bytes this bounds what slow watchers
/// can make the store hold to 16 MiB, however many there are: the changes
/// are shared, not copied per watcher.
pub const WATCH_BACKLOG: usize = 256;

// ANCHOR: kv_store
/// The store: one map behind a mutex. Handlers never hold the lock across an
/// `.await`, so a plain `std::sync::Mutex` is the right tool.
#[derive(Debug)]
pub struct KvStoreService {
    /// Key → value, and the revision, under one lock.
    state: Mutex<State>,
    /// Every change, to every watcher; bounded to [`WATCH_BACKLOG`].
    changes: broadcast::Sender<Change>,
}

/// What the mutex guards.
#[derive(Debug, Default)]
struct State {
    /// Key → value.
    map: HashMap<String, Vec<u8>>,
    /// Changes made so far.
    revision: u64,
}

impl Default for KvStoreService {
    fn default() -> KvStoreService {
        KvStoreService {
            state: Mutex::default(),
            changes: broadcast::channel(WATCH_BACKLOG).0,
        }
    }
}

impl KvStoreService {
    /// Locks the state, tolerating poisoning (every entry is always whole).
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Watches open now: the store's side of a watch, so a test can see a
    /// watch end when its caller goes away.
    pub fn watchers(&self) -> usize {
        self.changes.receiver_count()
    }

    /// Records a change made under `state`'s lock and tells the watchers.
    /// Sending under the lock keeps the watchers' order the revisions' order;
    /// a broadcast send never waits, so a watcher that does not read cannot
    /// hold up a `Put`.
    fn publish(&self, state: &mut State, key: &str, kind: Kind, value: &[u8]) {
        state.revision += 1;
        // Nobody watching: no copy of the value to make.
        if self.changes.receiver_count() == 0 {
            return;
        }
        // A receiver gone since is not an error either.
        let _ = self.changes.send(Change {
            key: key.into(),
            kind,
            value: value.into(),
            revision: state.revision,
        });
    }
}
// ANCHOR_END: kv_store

impl KvStore for KvStoreService {
    type WatchStream = KeyWatch;

    async fn get(&self, _ctx: CallContext, request: GetRequest) -> Result<GetResponse, Status> {
        let value = self.state().map.get(&request.key).cloned();
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
        let mut state = self.state();
        if state.map.len() >= MAX_KEYS && !state.map.contains_key(&request.key) {
            return Err(Status::handler(format!(
                "the store is full ({MAX_KEYS} keys)"
            )));
        }
        self.publish(&mut state, &request.key, Kind::Put, &request.value);
        let previous = state.map.insert(request.key, request.value);
        Ok(PutResponse { previous })
    }

    async fn delete(
        &self,
        _ctx: CallContext,
        request: DeleteRequest,
    ) -> Result<DeleteResponse, Status> {
        let mut state = self.state();
        let existed = state.map.remove(&request.key).is_some();
        // Deleting an absent key changes nothing, so watchers hear nothing.
        if existed {
            self.publish(&mut state, &request.key, Kind::Delete, &[]);
        }
        Ok(DeleteResponse { existed })
    }

    // ANCHOR: watch
    async fn watch(&self, _ctx: CallContext, request: WatchRequest) -> Result<KeyWatch, Status> {
        // Subscribing and reading the current value under the same lock: no
        // change can fall between the two, or be seen twice.
        let state = self.state();
        let rx = self.changes.subscribe();
        let value = state.map.get(&request.key);
        let first = WatchEvent {
            kind: if value.is_some() {
                Kind::Put
            } else {
                Kind::Delete
            } as i32,
            value: value.cloned().unwrap_or_default(),
            revision: state.revision,
        };
        Ok(KeyWatch {
            key: request.key,
            first: Some(first),
            next: Some(Box::pin(next_change(rx))),
        })
    }
    // ANCHOR_END: watch
}

/// One change of the store, shared by every watcher.
#[derive(Debug, Clone)]
struct Change {
    /// The key changed.
    key: Arc<str>,
    /// Put or delete.
    kind: Kind,
    /// The new value (empty for a delete).
    value: Arc<[u8]>,
    /// The store's revision after the change.
    revision: u64,
}

/// The pending receive of a watch: it owns the receiver, and gives it back
/// with the result, so that [`KeyWatch`] can be polled without borrowing it.
type NextChange = Pin<
    Box<
        dyn Future<Output = (Result<Change, broadcast::error::RecvError>, ReceiverOf)>
            + Send
            + 'static,
    >,
>;

/// The receiver a watch reads the store's changes from.
type ReceiverOf = broadcast::Receiver<Change>;

/// Waits for the next change of the store.
async fn next_change(
    mut rx: ReceiverOf,
) -> (Result<Change, broadcast::error::RecvError>, ReceiverOf) {
    let change = rx.recv().await;
    (change, rx)
}

// ANCHOR: key_watch
/// The stream `Watch` returns: the key's state, then its changes. The
/// provider polls it only while the caller's credit lasts; a watcher that
/// stops reading falls behind the store's [`WATCH_BACKLOG`] changes, and
/// its stream then ends with `Overloaded` (watch again to catch up) instead
/// of the store keeping every change for it.
pub struct KeyWatch {
    /// The key watched.
    key: String,
    /// The first event, until sent.
    first: Option<WatchEvent>,
    /// The receive in progress; `None` once the stream has ended.
    next: Option<NextChange>,
}

impl std::fmt::Debug for KeyWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyWatch")
            .field("key", &self.key)
            .field("ended", &self.next.is_none())
            .finish()
    }
}

impl mprpc::codegen::Stream for KeyWatch {
    type Item = Result<WatchEvent, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(first)));
        }
        loop {
            let Some(next) = self.next.as_mut() else {
                return Poll::Ready(None);
            };
            let (change, rx) = match next.as_mut().poll(cx) {
                Poll::Ready(done) => done,
                Poll::Pending => return Poll::Pending,
            };
            match change {
                Ok(change) => {
                    self.next = Some(Box::pin(next_change(rx)));
                    // Other keys' changes pass by.
                    if *change.key == *self.key {
                        return Poll::Ready(Some(Ok(WatchEvent {
                            kind: change.kind as i32,
                            value: change.value.to_vec(),
                            revision: change.revision,
                        })));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    // Dropping the receiver here, not at the stream's drop:
                    // the store stops counting this watcher at once.
                    self.next = None;
                    return Poll::Ready(Some(Err(Status::new(
                        ErrorCode::Overloaded,
                        format!(
                            "watch of {:?} fell {missed} changes behind the store; watch again",
                            self.key
                        ),
                    ))));
                }
                // The store is gone: the provider is shutting down.
                Err(broadcast::error::RecvError::Closed) => {
                    self.next = None;
                    return Poll::Ready(None);
                }
            }
        }
    }
}
// ANCHOR_END: key_watch
