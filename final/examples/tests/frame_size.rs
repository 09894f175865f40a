//! `max_frame_size` counts what the length field counts — kind, id and
//! body, not the field itself — on both sides: the provider sends a
//! response whose length is exactly `max_frame_size`, and answers
//! `FrameTooLarge` for one byte more (it used to count the field too, and
//! refused four bytes earlier than the decoder accepted).

mod spin;

use std::time::Duration;

use mprpc::ErrorCode;
use spin::{Raw, spin};

const MAX: usize = 4096;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_of_exactly_max_frame_size_is_sent() {
    let mut config = mprpc::MprpcConfig::default();
    config.limits.max_frame_size = MAX;
    let running = spin::provider(config).await;
    let mut raw = Raw::connect(&running.local_addr().to_string()).await;
    // A response's length field: 1 kind + 8 id + 1 code + payload.
    let fits = (MAX - 10) as u32;
    raw.send(&spin(1, "Echo", fits)).await;
    let r = raw.response(Duration::from_secs(2)).await;
    assert!(
        matches!(&r, Some((1, ErrorCode::Ok, p)) if p.len() == MAX - 10),
        "{:?}",
        r.map(|(id, code, p)| (id, code, p.len()))
    );
    raw.send(&spin(2, "Echo", fits + 1)).await;
    let r = raw.response(Duration::from_secs(2)).await;
    assert!(
        matches!(&r, Some((2, ErrorCode::FrameTooLarge, _))),
        "{:?}",
        r.map(|(id, code, p)| (id, code, String::from_utf8_lossy(&p).into_owned()))
    );
    drop(raw);
    running.shutdown().await.ok();
}
