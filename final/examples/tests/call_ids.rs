//! Call ids are unique among a connection's calls in flight: a second
//! request under an id still running is refused at once with `BadRequest`,
//! the first keeps running, and a cancel for that id reaches the one call
//! it names. Raw frames, written as the wire-format chapter lays them out.

mod spin;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mprpc::ErrorCode;
use spin::{Raw, cancel, spin};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_id_in_flight_is_refused_and_a_cancel_names_one_call() {
    let running = spin::provider(mprpc::MprpcConfig::default()).await;
    let addr = running.local_addr().to_string();
    let mut raw = Raw::connect(&addr).await;

    // Call 5 sleeps 1.5 s; a second call 5 arrives while it runs.
    let started = Instant::now();
    raw.send(&spin(5, "Sleep", 1500)).await;
    raw.send(&spin(5, "Sleep", 1500)).await;
    let first = raw.response(Duration::from_secs(1)).await;
    let took = started.elapsed();
    let (id, code, text) = match first {
        Some(r) => r,
        None => panic!("the duplicate was not answered within 1 s"),
    };
    let text = String::from_utf8_lossy(&text).into_owned();
    println!("duplicate id answered in {took:?}: {code:?} {text}");
    assert_eq!((id, code), (5, ErrorCode::BadRequest), "{text}");
    assert!(text.contains("already in flight"), "{text}");

    // Let the handler start (its drop counter exists from its first poll).
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The cancel names the one call 5 still running: it is dropped, and no
    // response for id 5 ever comes (the old behaviour answered at 1.5 s).
    let dropped_before = spin::DROPPED.load(Ordering::SeqCst);
    raw.send(&cancel(5)).await;
    let late = raw.response(Duration::from_secs(2)).await;
    assert!(late.is_none(), "a cancelled call answered: {late:?}");
    assert_eq!(
        spin::DROPPED.load(Ordering::SeqCst),
        dropped_before + 1,
        "the cancelled handler was not dropped"
    );

    // Once a call has finished its id may be used again.
    raw.send(&spin(5, "Sleep", 10)).await;
    let again = raw.response(Duration::from_secs(2)).await;
    assert!(
        matches!(&again, Some((5, ErrorCode::Ok, p)) if p == b"slept"),
        "{again:?}"
    );
    // Distinct ids in flight together are all served.
    for id in 10..20 {
        raw.send(&spin(id, "Sleep", 100)).await;
    }
    let mut ids = Vec::new();
    for _ in 10..20 {
        match raw.response(Duration::from_secs(2)).await {
            Some((id, ErrorCode::Ok, _)) => ids.push(id),
            other => panic!("{other:?}"),
        }
    }
    ids.sort_unstable();
    assert_eq!(ids, (10..20).collect::<Vec<_>>());
    drop(raw);
    running.shutdown().await.ok();
}
