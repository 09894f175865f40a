//! `timeouts.frame_ms` bounds one frame, not a connection: a caller that
//! streams requests for much longer than `frame_ms`, its writes split at
//! so that the provider always holds part of a frame, is
//! served throughout; a frame that itself takes longer is closed with a
//! `DeadlineExceeded` connection error.

mod spin;

use std::time::{Duration, Instant};

use mprpc::ErrorCode;
use mprpc::frame::Frame;
use spin::{Raw, spin};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_longer_than_frame_ms_is_served_and_one_slow_frame_is_not() {
    let mut config = mprpc::MprpcConfig::default();
    config.timeouts.frame_ms = 300;
    let running = spin::provider(config).await;
    let addr = running.local_addr().to_string();

    let raw = Raw::connect(&addr).await;
    let (mut rd, mut wr) = raw.stream.into_split();
    // Writer: 1.5 s of requests, each write ending 5 bytes into the next
    // frame, so that after every read the provider holds part of a frame.
    let writer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let started = Instant::now();
        let mut id = 1u64;
        let mut next = spin(id, "Echo", 3);
        if wr.write_all(&next[..5]).await.is_err() {
            return (id, false);
        }
        while started.elapsed() < Duration::from_millis(1500) {
            let mut piece = next[5..].to_vec();
            id += 1;
            next = spin(id, "Echo", 3);
            piece.extend_from_slice(&next[..5]);
            if wr.write_all(&piece).await.is_err() {
                return (id, false);
            }
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        let ok = wr.write_all(&next[5..]).await.is_ok();
        (id, ok)
    });
    // Reader: count responses until the writer is done and all are in.
    let mut buf = bytes::BytesMut::new();
    let mut answered = 0u64;
    let reader = async {
        use tokio::io::AsyncReadExt;
        loop {
            while let Ok(Some(f)) = mprpc::frame::try_decode(&mut buf, 1 << 20) {
                match f {
                    Frame::Response {
                        code: ErrorCode::Ok,
                        ..
                    } => answered += 1,
                    other => return Err(format!("{other:?}")),
                }
            }
            match tokio::time::timeout(Duration::from_secs(3), rd.read_buf(&mut buf)).await {
                Ok(Ok(0)) => return Err("closed".to_string()),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e.to_string()),
                Err(_) => return Ok(()),
            }
        }
    };
    let read = reader.await;
    let (sent, write_ok) = match writer.await {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    println!(
        "streamed {sent} requests over 1.5 s with frame_ms = 300: {answered} answered, {read:?}"
    );
    assert!(write_ok, "the provider closed the streaming connection");
    assert_eq!(answered, sent, "{read:?}");

    // One frame trickled over longer than frame_ms: closed with an error.
    let mut raw = Raw::connect(&addr).await;
    let frame = spin(1, "Echo", 3);
    raw.send(&frame[..5]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    raw.send(&frame[5..8]).await;
    let started = Instant::now();
    let end = raw.next(Duration::from_secs(3)).await;
    println!(
        "a frame trickled past frame_ms: {end:?} after {:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            end,
            Some(Frame::ConnectionError {
                code: ErrorCode::DeadlineExceeded,
                ..
            })
        ),
        "{end:?}"
    );
    drop(raw);
    running.shutdown().await.ok();
}
