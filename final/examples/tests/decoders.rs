//! The CI smoke run of the decoder properties in `decoder_oracle`: a few
//! thousand seeded random and mutated inputs per decoder, plus round trips
//! of valid frames. The same properties run under libFuzzer, coverage-guided
//! and by the million, in `final/fuzz` (see `fuzz/README.md`).
//!
//! Inputs come from a fixed-seed xorshift generator, so a failure reproduces
//! exactly; the failing input is printed in hex. Set `MPRPC_DECODER_SEED`
//! to explore other seeds.

mod decoder_oracle;
mod support;

use bytes::{BufMut, BytesMut};
use mprpc::ErrorCode;
use mprpc::frame::{self, Frame, FrameError};
use mprpc::legacy::RpcHeader;
use mprpc::legacy::{self, Decoded};
use mprpc_examples::fixbug::LoginRequest;
use prost::Message;

/// Random inputs per decoder and test.
const CASES: usize = 3_000;

/// Small deterministic generator (xorshift64*): no dependency, same inputs
/// on every run.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("MPRPC_DECODER_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x6d70_7270_635f_6675);
        Rng(seed | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    fn bytes_upto(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max);
        self.bytes(n)
    }
}

/// Lengths worth writing into a length field: around the limits and the
/// boundaries the decoders test.
const INTERESTING: [u32; 10] = [
    0,
    8,
    9,
    13,
    255,
    2104,
    2105,
    16 << 20,
    (16 << 20) + 1,
    u32::MAX,
];

/// A copy of `seed` with a few random edits: flipped bits, overwritten
/// bytes, a length field set to an interesting value, truncation,
/// duplication, or splicing.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(7) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            2 if v.len() >= 4 => {
                let i = rng.below(v.len() - 3);
                let n = INTERESTING[rng.below(INTERESTING.len())];
                let b = if rng.below(2) == 0 {
                    n.to_be_bytes()
                } else {
                    n.to_le_bytes()
                };
                v[i..i + 4].copy_from_slice(&b);
            }
            3 => v.truncate(rng.below(v.len() + 1)),
            4 => {
                let copy = v.clone();
                v.extend_from_slice(&copy);
            }
            5 => {
                let at = rng.below(v.len() + 1);
                let extra = rng.bytes_upto(16);
                v.splice(at..at, extra);
            }
            _ => {}
        }
    }
    v
}

/// Runs `check` on `CASES` inputs: random bytes, and mutations of `seeds`.
/// The first byte of every input selects the limit (see the oracle).
fn drive(check: fn(&[u8]), seeds: &[Vec<u8>]) {
    let mut rng = Rng::new();
    for case in 0..CASES {
        let mut input = vec![rng.next() as u8];
        if case % 3 == 0 || seeds.is_empty() {
            input.extend(rng.bytes_upto(300));
        } else {
            let seed = &seeds[rng.below(seeds.len())];
            input.extend(mutate(&mut rng, seed));
        }
        if std::panic::catch_unwind(|| check(&input)).is_err() {
            let shown: String = input.iter().map(|b| format!("{b:02x}")).collect();
            panic!("case {case} failed; input (hex): {shown}");
        }
    }
}

fn login(name: &[u8], pwd: &[u8]) -> LoginRequest {
    LoginRequest {
        name: name.to_vec(),
        pwd: pwd.to_vec(),
    }
}

/// A stream of valid frames of every kind.
fn valid_frames(rng: &mut Rng) -> Vec<u8> {
    let mut wire = BytesMut::new();
    let msg = login(&rng.bytes_upto(40), &rng.bytes_upto(10));
    let id = rng.next();
    let ok = frame::encode_request(
        &mut wire,
        id,
        rng.next() as u32,
        "fixbug.UserServiceRpc",
        "Login",
        &msg,
        1 << 20,
    );
    assert!(ok.is_ok());
    // Kinds 6 and 7: with metadata.
    let mut md = mprpc::Metadata::new();
    assert!(md.insert("authorization", "Bearer t0k3n").is_ok());
    let ok = frame::encode_request_with_metadata(
        &mut wire,
        id + 1,
        rng.next() as u32,
        "kv.KvStore",
        "Get",
        Some(&md),
        &msg,
        1 << 20,
    );
    assert!(ok.is_ok());
    frame::encode_response(&mut wire, id, ErrorCode::Ok, &rng.bytes_upto(30));
    frame::encode_response_with_metadata(
        &mut wire,
        id + 1,
        ErrorCode::Ok,
        Some(&md),
        &rng.bytes_upto(30),
    );
    frame::encode_response(
        &mut wire,
        id ^ 1,
        ErrorCode::UnknownMethod,
        b"no such method",
    );
    frame::encode_cancel(&mut wire, id);
    frame::encode_goaway(&mut wire);
    frame::encode_connection_error(&mut wire, ErrorCode::Overloaded, "busy");
    // Kinds 8 to 11: a stream's open (with and without metadata), a
    // message, credit, and its end with and without an error.
    let sid = rng.next();
    for md in [None, Some(&md)] {
        let ok = frame::encode_stream_open(
            &mut wire,
            sid,
            rng.next() as u32,
            rng.next() as u32,
            ("feed.Feed", "Watch"),
            md,
            &msg,
            1 << 20,
        );
        assert!(ok.is_ok());
    }
    frame::encode_stream_message(&mut wire, sid, &rng.bytes_upto(30));
    frame::encode_credit(&mut wire, sid, rng.next() as u32);
    frame::encode_stream_end(&mut wire, sid, ErrorCode::Ok, &[]);
    frame::encode_stream_end(&mut wire, sid ^ 1, ErrorCode::HandlerError, b"no more");
    wire.to_vec()
}

/// The course's captured requests plus a few encoded here.
fn legacy_seeds(rng: &mut Rng) -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = [
        "request.hex",
        "register_request.hex",
        "login_request_lisi.hex",
    ]
    .iter()
    .map(|name| support::capture(name))
    .collect();
    for _ in 0..5 {
        let msg = login(&rng.bytes_upto(40), &rng.bytes_upto(10));
        seeds.push(legacy::encode_request("UserServiceRpc", "Login", &msg));
    }
    seeds
}

#[test]
fn frame_decoder_survives_random_and_mutated_input() {
    let mut rng = Rng::new();
    let seeds: Vec<Vec<u8>> = (0..8).map(|_| valid_frames(&mut rng)).collect();
    drive(decoder_oracle::check_frame_decoder, &seeds);
}

#[test]
fn legacy_decoder_survives_random_and_mutated_input() {
    let mut rng = Rng::new();
    let seeds = legacy_seeds(&mut rng);
    drive(decoder_oracle::check_legacy_decoder, &seeds);
}

#[test]
fn rpc_header_parse_survives_random_and_mutated_input() {
    let mut rng = Rng::new();
    // The header part of each legacy seed.
    let seeds: Vec<Vec<u8>> = legacy_seeds(&mut rng)
        .into_iter()
        .map(|r| {
            let n = u32::from_le_bytes([r[0], r[1], r[2], r[3]]) as usize;
            r[4..4 + n].to_vec()
        })
        .collect();
    // The oracle's RpcHeader check takes the whole input: drop the limit
    // selector byte the driver adds.
    drive(|d| decoder_oracle::check_rpc_header(&d[1..]), &seeds);
}

#[test]
fn valid_frames_round_trip_in_any_split() {
    let mut rng = Rng::new();
    for _ in 0..300 {
        let name = rng.bytes_upto(200);
        let msg = login(&name, b"pw");
        let (id, timeout) = (rng.next(), rng.next() as u32);
        let mut wire = BytesMut::new();
        let ok = frame::encode_request(&mut wire, id, timeout, "S", "M", &msg, 4096);
        assert!(ok.is_ok());
        let bytes = wire.to_vec();
        let run = decoder_oracle::frames_byte_by_byte(&bytes, 4096);
        assert_eq!(run.error, None);
        assert_eq!(run.frames.len(), 1);
        assert_eq!(run.frames[0].1, bytes);
        match &run.frames[0].0 {
            Frame::Request {
                id: i,
                timeout_ms,
                service,
                method,
                payload,
                ..
            } => {
                assert_eq!((*i, *timeout_ms), (id, timeout));
                assert_eq!((&service[..], &method[..]), (&b"S"[..], &b"M"[..]));
                assert_eq!(LoginRequest::decode(&payload[..]).ok(), Some(msg));
            }
            other => panic!("decoded {other:?}"),
        }
    }
}

#[test]
fn stream_frames_round_trip_in_any_split() {
    let mut rng = Rng::new();
    for _ in 0..300 {
        let msg = login(&rng.bytes_upto(200), b"pw");
        let (id, timeout, window) = (rng.next(), rng.next() as u32, rng.next() as u32);
        let payload = rng.bytes_upto(100);
        let grant = rng.next() as u32;
        let mut wire = BytesMut::new();
        let ok =
            frame::encode_stream_open(&mut wire, id, timeout, window, ("S", "M"), None, &msg, 4096);
        assert!(ok.is_ok());
        frame::encode_stream_message(&mut wire, id, &payload);
        frame::encode_credit(&mut wire, id, grant);
        frame::encode_stream_end(&mut wire, id, ErrorCode::DeadlineExceeded, b"late");
        let run = decoder_oracle::frames_byte_by_byte(&wire, 4096);
        assert_eq!(run.error, None);
        assert_eq!(run.frames.len(), 4);
        assert!(matches!(&run.frames[0].0,
            Frame::StreamOpen { id: i, timeout_ms, window: w, service, method, metadata, payload }
                if (*i, *timeout_ms, *w) == (id, timeout, window)
                    && &service[..] == b"S" && &method[..] == b"M" && metadata.is_empty()
                    && LoginRequest::decode(&payload[..]).ok().as_ref() == Some(&msg)));
        assert!(matches!(&run.frames[1].0,
            Frame::StreamMessage { id: i, payload: p } if *i == id && p[..] == payload[..]));
        assert_eq!(run.frames[2].0, Frame::Credit { id, bytes: grant });
        assert!(matches!(&run.frames[3].0,
            Frame::StreamEnd { id: i, code: ErrorCode::DeadlineExceeded, message }
                if *i == id && &message[..] == b"late"));
    }
    // Bodies the layout forbids are refused, not guessed at.
    for (kind, body) in [
        (8u8, &b"\0\0\0\0\0\0\0\0"[..]),
        (10, &b""[..]),
        (11, &b"\0\0\0"[..]),
    ] {
        let mut wire = BytesMut::new();
        wire.put_u32((9 + body.len()) as u32);
        wire.put_u8(kind);
        wire.put_u64(1);
        wire.put_slice(body);
        let run = decoder_oracle::frames_at_once(&wire, 4096);
        assert!(
            matches!(run.error, Some(FrameError::Malformed(_))),
            "kind {kind}: {run:?}"
        );
    }
}

#[test]
fn valid_legacy_requests_round_trip_in_any_split() {
    let mut rng = Rng::new();
    for _ in 0..300 {
        let msg = login(&rng.bytes_upto(200), &rng.bytes_upto(20));
        let bytes = legacy::encode_request("UserServiceRpc", "Register", &msg);
        let chunk = 1 + rng.below(bytes.len());
        let run = decoder_oracle::legacy_run(&bytes, 4096, chunk);
        assert_eq!((run.need, run.error), (Some(4), None));
        assert_eq!(run.requests.len(), 1);
        let r = &run.requests[0];
        assert_eq!(r.service, b"UserServiceRpc");
        assert_eq!(r.method, b"Register");
        assert_eq!(LoginRequest::decode(&r.args[..]).ok(), Some(msg));
    }
}

/// The two lengths a peer controls most directly, at their worst: refused
/// before any reservation, in both formats.
#[test]
fn length_prefix_of_4_gib_reserves_nothing() {
    let mut buf = BytesMut::with_capacity(64);
    buf.extend_from_slice(&[0xff; 9]);
    let cap = buf.capacity();
    assert!(matches!(
        frame::try_decode(&mut buf, decoder_oracle::DEFAULT_MAX),
        Err(FrameError::TooLarge { len, .. }) if len == u32::MAX as usize
    ));
    assert!(legacy::try_decode(&mut buf, decoder_oracle::DEFAULT_MAX).is_err());
    assert_eq!(buf.capacity(), cap);

    // A legacy header that is small but announces 4 GiB of args.
    let header = RpcHeader {
        service_name: b"UserServiceRpc".to_vec(),
        method_name: b"Login".to_vec(),
        args_size: u32::MAX,
    }
    .encode_to_vec();
    let mut buf = BytesMut::with_capacity(64);
    buf.extend_from_slice(&(header.len() as u32).to_le_bytes());
    buf.extend_from_slice(&header);
    let cap = buf.capacity();
    match legacy::try_decode(&mut buf, decoder_oracle::DEFAULT_MAX) {
        Err(e) => assert!(e.contains("exceeds max_frame_size"), "{e}"),
        Ok(d) => panic!("accepted {d:?}"),
    }
    assert_eq!(buf.capacity(), cap);
    // And a legal size is reserved once, in full.
    let mut buf = BytesMut::from(&(1000u32.to_le_bytes())[..]);
    assert_eq!(
        legacy::try_decode(&mut buf, 4096),
        Ok(Decoded::NeedBytes(1004))
    );
    assert!(buf.capacity() >= 1004);
}

// ANCHOR: worked_example_client_stream
/// The bytes of the client stream the book walks through: stream 1 of
/// `feed.Feed/Upload` with a 5 s deadline and a 256 KiB window, no
/// payload; the provider's grant of 32 KiB; the caller's one chunk and
/// its half-close; the provider's response and its end. They decode back
/// to the same frames in any split, and are the fuzzer's `client_stream`
/// seed.
#[test]
fn client_stream_bytes() {
    use mprpc_examples::feed::{Chunk, UploadSummary};
    let mut caller = BytesMut::new();
    let ok = frame::encode_stream_open(
        &mut caller,
        1,
        5000,
        256 << 10,
        ("feed.Feed", "Upload"),
        None,
        &(),
        1 << 20,
    );
    assert!(ok.is_ok());
    let chunk = Chunk {
        data: b"ab".to_vec(),
        value: 3,
    };
    let mut provider = BytesMut::new();
    frame::encode_credit(&mut provider, 1, 32 << 10);
    frame::encode_stream_message(&mut caller, 1, &chunk.encode_to_vec());
    frame::encode_stream_end(&mut caller, 1, ErrorCode::Ok, &[]);
    let summary = UploadSummary {
        bytes: 2,
        chunks: 1,
        sum: 3,
    };
    frame::encode_stream_message(&mut provider, 1, &summary.encode_to_vec());
    frame::encode_stream_end(&mut provider, 1, ErrorCode::Ok, &[]);
    let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let from_caller = [
        "00000024",           // length: 36 bytes follow
        "08",                 // kind: stream open
        "0000000000000001",   // stream id 1
        "00001388",           // timeout 5000 ms
        "00040000",           // window 262,144 bytes (for the response)
        "09",                 // service name: 9 bytes
        "666565642e46656564", // "feed.Feed"
        "06",                 // method name: 6 bytes
        "55706c6f6164",       // "Upload"
        "0000",               // metadata block: 0 bytes; no payload
        "0000000f",           // length: 15 bytes follow
        "09",                 // kind: stream message (from the caller)
        "0000000000000001",   // stream id 1
        "0a0261621003",       // Chunk{data: "ab", value: 3}
        "0000000a",           // length: 10 bytes follow
        "0a",                 // kind: stream end
        "0000000000000001",   // stream id 1
        "00",                 // code 0 from the caller: half-close
    ];
    let from_provider = [
        "0000000d",         // length: 13 bytes follow
        "0b",               // kind: credit (from the provider)
        "0000000000000001", // stream id 1
        "00008000",         // 32,768 bytes the caller may send
        "0000000f",         // length: 15 bytes follow
        "09",               // kind: stream message
        "0000000000000001", // stream id 1
        "080210011803",     // UploadSummary{bytes: 2, chunks: 1, sum: 3}
        "0000000a",         // length: 10 bytes follow
        "0a",               // kind: stream end
        "0000000000000001", // stream id 1
        "00",               // code 0: the message before is the response
    ];
    assert_eq!(hex(&caller), from_caller.concat());
    assert_eq!(hex(&provider), from_provider.concat());
    for (wire, kinds) in [(&caller, [8u8, 9, 10]), (&provider, [11, 9, 10])] {
        let run = decoder_oracle::frames_byte_by_byte(wire, 4096);
        assert_eq!(run.error, None);
        let got: Vec<u8> = run
            .frames
            .iter()
            .map(|(f, _)| match f {
                Frame::StreamOpen { payload, .. } if payload.is_empty() => 8,
                Frame::StreamMessage { id: 1, .. } => 9,
                Frame::StreamEnd {
                    id: 1,
                    code: ErrorCode::Ok,
                    ..
                } => 10,
                Frame::Credit { id: 1, bytes } if *bytes == 32 << 10 => 11,
                other => panic!("decoded {other:?}"),
            })
            .collect();
        assert_eq!(got, kinds);
    }
    // The fuzzer starts from the same bytes (limit selector 0, then both
    // directions back to back).
    let seed = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/seeds/frame_decode/client_stream"),
    );
    let mut want = vec![0u8];
    want.extend_from_slice(&caller);
    want.extend_from_slice(&provider);
    assert_eq!(seed.ok(), Some(want));
}
// ANCHOR_END: worked_example_client_stream
