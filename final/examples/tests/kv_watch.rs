//! `kv.KvStore/Watch` over real TCP: a watcher sees its key's state, then
//! its key's puts and deletes in order and no other key's; two watchers see
//! the same; a watcher that stops reading holds up no `Put` and is ended
//! with `Overloaded` once it falls behind; dropping a watcher ends the
//! store's side of the watch.

mod support;

use std::sync::Arc;
use std::time::Duration;

use mprpc::{ErrorCode, MprpcChannel, MprpcConfig, MprpcController, Status, Streaming};
use mprpc_examples::KvStoreService;
use mprpc_examples::kv::watch_event::Kind;
use mprpc_examples::kv::{
    DeleteRequest, KvStoreServer, KvStoreStub, PutRequest, WatchEvent, WatchRequest,
};

/// Starts a provider of a new store with `config`; the test keeps the
/// store, to count its watchers.
async fn kv_provider(config: MprpcConfig) -> (Arc<KvStoreService>, mprpc::RunningProvider) {
    let store = Arc::new(KvStoreService::default());
    let mut provider = support::provider(config);
    provider.notify_service(KvStoreServer::from_arc(Arc::clone(&store)));
    (store, support::start(provider).await)
}

/// A stub on a channel (a connection) of its own to `p`.
fn stub(config: &MprpcConfig, p: &mprpc::RunningProvider) -> KvStoreStub {
    KvStoreStub::new(MprpcChannel::direct_with(
        config,
        &p.local_addr().to_string(),
    ))
}

/// Opens a watch of `key` with a deadline long enough for the test.
async fn watch(stub: &KvStoreStub, key: &str) -> Streaming<WatchEvent> {
    let controller = MprpcController::with_timeout(Duration::from_secs(60));
    match stub
        .watch_with(&controller, &WatchRequest { key: key.into() })
        .await
    {
        Ok(s) => s,
        Err(e) => panic!("watch {key}: {e}"),
    }
}

/// Puts `key` = `value`, failing the test if the store does not answer.
async fn put(stub: &KvStoreStub, key: &str, value: &[u8]) {
    let r = stub
        .put(&PutRequest {
            key: key.into(),
            value: value.to_vec(),
        })
        .await;
    assert!(r.is_ok(), "put {key}: {r:?}");
}

/// Deletes `key`.
async fn delete(stub: &KvStoreStub, key: &str) {
    let r = stub.delete(&DeleteRequest { key: key.into() }).await;
    assert!(r.is_ok(), "delete {key}: {r:?}");
}

/// The next event as (kind, value, revision), within 5 s.
async fn next(events: &mut Streaming<WatchEvent>) -> Result<(Kind, Vec<u8>, u64), Status> {
    match tokio::time::timeout(Duration::from_secs(5), events.message()).await {
        Ok(Ok(Some(e))) => Ok((e.kind(), e.value, e.revision)),
        Ok(Ok(None)) => Err(Status::new(ErrorCode::Ok, "the watch ended")),
        Ok(Err(s)) => Err(s),
        Err(_) => Err(Status::new(ErrorCode::DeadlineExceeded, "no event in 5 s")),
    }
}

// ANCHOR: in_order
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_sees_its_keys_state_then_its_changes_in_order() {
    let config = support::local_config();
    let (_store, p) = kv_provider(config.clone()).await;
    let stub = stub(&config, &p);
    put(&stub, "a", b"1").await; // revision 1
    let mut a = watch(&stub, "a").await;
    let mut absent = watch(&stub, "z").await;
    // First the state when the watch began.
    assert_eq!(next(&mut a).await, Ok((Kind::Put, b"1".to_vec(), 1)));
    assert_eq!(next(&mut absent).await, Ok((Kind::Delete, Vec::new(), 1)));
    put(&stub, "b", b"other").await; // 2, not a's
    put(&stub, "a", b"2").await; // 3
    delete(&stub, "a").await; // 4
    delete(&stub, "a").await; // absent already: no change
    delete(&stub, "b").await; // 5, not a's
    put(&stub, "a", b"3").await; // 6
    assert_eq!(next(&mut a).await, Ok((Kind::Put, b"2".to_vec(), 3)));
    assert_eq!(next(&mut a).await, Ok((Kind::Delete, Vec::new(), 4)));
    assert_eq!(next(&mut a).await, Ok((Kind::Put, b"3".to_vec(), 6)));
    // Nothing more for either: "z" never changed.
    for events in [&mut a, &mut absent] {
        let more = tokio::time::timeout(Duration::from_millis(200), events.message()).await;
        assert!(more.is_err(), "{more:?}");
    }
    drop((a, absent));
    p.shutdown().await.ok();
}
// ANCHOR_END: in_order

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_watchers_on_two_connections_see_the_same_changes() {
    let config = support::local_config();
    let (store, p) = kv_provider(config.clone()).await;
    let writer = stub(&config, &p);
    let mut first = watch(&stub(&config, &p), "k").await;
    let mut second = watch(&stub(&config, &p), "k").await;
    for events in [&mut first, &mut second] {
        assert_eq!(next(events).await, Ok((Kind::Delete, Vec::new(), 0)));
    }
    assert_eq!(store.watchers(), 2);
    for i in 0..50u32 {
        put(&writer, "k", &i.to_be_bytes()).await;
    }
    delete(&writer, "k").await;
    for events in [&mut first, &mut second] {
        for i in 0..50u32 {
            assert_eq!(
                next(events).await,
                Ok((Kind::Put, i.to_be_bytes().to_vec(), u64::from(i) + 1))
            );
        }
        assert_eq!(next(events).await, Ok((Kind::Delete, Vec::new(), 51)));
    }
    drop((first, second));
    p.shutdown().await.ok();
}

// ANCHOR: lagging
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_stops_reading_holds_up_no_put_and_is_ended() {
    let mut config = support::local_config();
    // A small window, so the provider stops taking the watcher's events
    // after a few: the rest wait in the store's bounded backlog.
    config.limits.stream_window_bytes = 4096;
    let (store, p) = kv_provider(config.clone()).await;
    let stub = stub(&config, &p);
    let mut slow = watch(&stub, "k").await;
    assert!(next(&mut slow).await.is_ok());
    // Ten times the backlog, 1 KiB each, on the same connection as the
    // watch: every Put answers.
    let puts = 10 * mprpc_examples::kv_store::WATCH_BACKLOG;
    let started = std::time::Instant::now();
    for i in 0..puts {
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            put(&stub, "k", &[(i % 251) as u8; 1024]),
        )
        .await;
        assert!(r.is_ok(), "put {i} did not answer");
    }
    assert!(started.elapsed() < Duration::from_secs(60));
    // Reading again: what the window let through, then the end, because
    // the watcher fell behind what the store keeps.
    let mut read = 0;
    let end = loop {
        match next(&mut slow).await {
            Ok(_) => read += 1,
            Err(s) => break s,
        }
    };
    assert!(
        end.code == ErrorCode::Overloaded && end.message.contains("behind"),
        "{end:?} after {read}"
    );
    assert!(read < puts, "read {read} of {puts}");
    // The store no longer counts it.
    assert_eq!(store.watchers(), 0);
    p.shutdown().await.ok();
}
// ANCHOR_END: lagging

// ANCHOR: dropped
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_watcher_ends_the_stores_side_of_the_watch() {
    let config = support::local_config();
    let (store, p) = kv_provider(config.clone()).await;
    let stub = stub(&config, &p);
    let mut events = watch(&stub, "k").await;
    assert!(next(&mut events).await.is_ok());
    assert_eq!(store.watchers(), 1);
    drop(events);
    let mut left = store.watchers();
    for _ in 0..250 {
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        left = store.watchers();
    }
    assert_eq!(left, 0, "the store still has the dropped watch");
    // The connection serves the next call, and a Put has nobody to tell.
    put(&stub, "k", b"v").await;
    p.shutdown().await.ok();
}
// ANCHOR_END: dropped
