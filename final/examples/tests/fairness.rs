//! Handler fairness: a handler that computes without awaiting must not hold
//! up the other calls on its connection. With the default config
//! (`handlers.mode = "adaptive"`) four 300 ms CPU-bound calls sent together
//! on one connection run on tasks of their own and finish in ≤ 0.8 s on two
//! cores; forced inline they take ≥ 1.2 s (which is what shows this test can
//! tell the two apart). A method that was learned quick and then runs long
//! is sent back to its own tasks.
//!
//! The provider runs in this process on a 2-worker runtime, as on the
//! project's 2-core machine.

mod spin;

use std::time::{Duration, Instant};

use mprpc::ErrorCode;
use mprpc::config::HandlerMode;
use spin::{Raw, spin};

/// The figure from the issue: four 300 ms calls in at most 0.8 s.
const FAIR_WITHIN: Duration = Duration::from_millis(800);

/// The tests of this file measure CPU time on a 2-core machine: run side by
/// side (cargo runs a binary's tests in parallel) their burns would share
/// the cores and each would measure the other. They take turns.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Sends four `Burn(300)` calls in one write and waits for all answers.
async fn four_burns(raw: &mut Raw, first_id: u64) -> Duration {
    let mut batch = Vec::new();
    for id in first_id..first_id + 4 {
        batch.extend(spin(id, "Burn", 300));
    }
    let started = Instant::now();
    raw.send(&batch).await;
    for _ in 0..4 {
        match raw.response(Duration::from_secs(5)).await {
            Some((_, ErrorCode::Ok, _)) => {}
            other => panic!("{other:?}"),
        }
    }
    started.elapsed()
}

fn config(mode: HandlerMode) -> mprpc::MprpcConfig {
    let mut c = mprpc::MprpcConfig::default();
    c.handlers.mode = mode;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_bound_calls_on_one_connection_run_side_by_side_by_default() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let running = spin::provider(mprpc::MprpcConfig::default()).await;
    let mut raw = Raw::connect(&running.local_addr().to_string()).await;
    let adaptive = four_burns(&mut raw, 1).await;

    // Learned quick: many calls of Burn(0) stay far under the budget, so
    // Burn is then polled inline. One long call sends it back.
    for id in 100..140 {
        raw.send(&spin(id, "Burn", 0)).await;
        assert!(raw.response(Duration::from_secs(2)).await.is_some());
    }
    let started = Instant::now();
    raw.send(&spin(200, "Burn", 300)).await;
    assert!(raw.response(Duration::from_secs(2)).await.is_some());
    let demoting = started.elapsed();
    let relearned = four_burns(&mut raw, 300).await;
    drop(raw);
    running.shutdown().await.ok();

    let running = spin::provider(config(HandlerMode::Inline)).await;
    let mut raw = Raw::connect(&running.local_addr().to_string()).await;
    let inline = four_burns(&mut raw, 1).await;
    drop(raw);
    running.shutdown().await.ok();

    println!(
        "four 300 ms CPU-bound calls on one connection: adaptive {adaptive:?}, \
         after re-learning {relearned:?} (the demoting call: {demoting:?}), forced inline {inline:?}"
    );
    assert!(
        inline >= Duration::from_millis(1200),
        "forced inline took {inline:?}: the calls were not serialised, so this test cannot tell"
    );
    assert!(adaptive <= FAIR_WITHIN, "adaptive took {adaptive:?}");
    assert!(relearned <= FAIR_WITHIN, "after re-learning: {relearned:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_mode_serves_calls_deadlines_and_cancels() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let running = spin::provider(config(HandlerMode::Spawn)).await;
    let mut raw = Raw::connect(&running.local_addr().to_string()).await;
    assert!(four_burns(&mut raw, 1).await <= FAIR_WITHIN);
    // A deadline on a spawned call: answered DeadlineExceeded at 100 ms.
    raw.send(&spin::request(
        9,
        100,
        spin::wire_name(),
        "Sleep",
        &5000u32.to_be_bytes(),
    ))
    .await;
    let r = raw.response(Duration::from_secs(2)).await;
    assert!(
        matches!(r, Some((9, ErrorCode::DeadlineExceeded, _))),
        "{r:?}"
    );
    drop(raw);
    running.shutdown().await.ok();
}
