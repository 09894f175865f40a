//! What must hold for *any* bytes given to the three decoders a peer can
//! reach: the framed decoder ([`mprpc::frame::try_decode`]), the course-format
//! decoder ([`mprpc::legacy::try_decode`]) and the `RpcHeader` parse inside
//! it. Each `check_*` function panics when a property fails.
//!
//! Two drivers feed these checks, so the properties are written once:
//!
//! * `tests/decoders.rs` — seeded random and mutated inputs, a few thousand
//!   per decoder, in every `cargo test` (the CI smoke run);
//! * `fuzz/fuzz_targets/*.rs` — libFuzzer, coverage-guided, millions of
//!   inputs (`cargo fuzz run`, see `fuzz/README.md`).
//!
//! The properties:
//!
//! 1. no panic, whatever the bytes;
//! 2. bounded allocation: the buffer never grows past what the input itself
//!    needs plus one frame of `max_frame_size` — a length prefix above the
//!    limit is an error, never a reservation;
//! 3. errors are honest: `TooLarge` really means larger than the limit, and
//!    a "need N bytes" answer never exceeds the limit;
//! 4. TCP may split the stream anywhere: feeding the bytes one at a time
//!    yields exactly what feeding them at once does;
//! 5. what decodes, re-encodes: a decoded frame written back (per the layout
//!    documented in `frame.rs`) gives the very bytes it came from; a decoded
//!    `RpcHeader` re-encoded decodes to the same header.

// Each driver uses a different subset.
#![allow(dead_code)]

use bytes::{BufMut, BytesMut};
use mprpc::ErrorCode;
use mprpc::frame::{self, Frame, FrameError};
use mprpc::legacy::RpcHeader;
use mprpc::legacy::{self, Decoded};
use prost::Message;

/// The default `limits.max_frame_size` (16 MiB).
pub const DEFAULT_MAX: usize = 16 << 20;

/// Picks the limit a check runs with from the input's first byte: mostly
/// small limits (64..=2104 bytes), so that inputs of a few KiB hit them
/// often, and for 1 in 16 inputs the default 16 MiB.
pub fn limit_from(selector: u8) -> usize {
    if selector < 16 {
        DEFAULT_MAX
    } else {
        64 + usize::from(selector) * 8
    }
}

/// Property 2: the most a buffer that started with `input_len` bytes may
/// have reserved. `Vec`'s growth policy may double, hence the factor.
fn capacity_bound(input_len: usize, max: usize) -> usize {
    2 * (input_len + 4 + max)
}

/// Everything the framed decoder produced for one stream.
#[derive(Debug, PartialEq)]
pub struct FrameRun {
    /// Frames decoded, each with the exact bytes it came from.
    pub frames: Vec<(Frame, Vec<u8>)>,
    /// How the run ended: `None` = waiting for more bytes.
    pub error: Option<FrameError>,
}

/// Decodes `bytes` (all present at once) with limit `max`.
pub fn frames_at_once(bytes: &[u8], max: usize) -> FrameRun {
    frames_in_reads(bytes, max, bytes.len())
}

/// Decodes `bytes` delivered one byte per read, as a trickling peer would.
pub fn frames_byte_by_byte(bytes: &[u8], max: usize) -> FrameRun {
    frames_in_reads(bytes, max, 1)
}

/// Decodes `bytes` delivered in reads of `chunk` bytes, decoding after
/// every read as the provider's connection loop does.
fn frames_in_reads(bytes: &[u8], max: usize, chunk: usize) -> FrameRun {
    let mut buf = BytesMut::new();
    let bound = capacity_bound(bytes.len(), max);
    let mut run = FrameRun {
        frames: Vec::new(),
        error: None,
    };
    // Bytes taken off the buffer so far: frame bytes are `bytes[consumed..]`.
    let mut consumed = 0;
    for piece in bytes.chunks(chunk.max(1)) {
        buf.put_slice(piece);
        loop {
            let held = buf.len();
            let result = frame::try_decode(&mut buf, max);
            assert!(
                buf.capacity() <= bound,
                "frame decoder reserved {} bytes for a {}-byte input with max_frame_size {max}",
                buf.capacity(),
                bytes.len()
            );
            match result {
                Ok(Some(f)) => {
                    let used = held - buf.len();
                    run.frames
                        .push((f, bytes[consumed..consumed + used].to_vec()));
                    consumed += used;
                }
                Ok(None) => break,
                Err(e) => {
                    // (A frame that fails to parse was already taken off
                    // the buffer; the connection is closed either way.)
                    check_frame_error(&e, &bytes[consumed..], max);
                    run.error = Some(e);
                    return run;
                }
            }
        }
    }
    run
}

/// Property 3 for the framed decoder.
fn check_frame_error(e: &FrameError, buf: &[u8], max: usize) {
    let announced = buf
        .get(..4)
        .map(|p| u32::from_be_bytes([p[0], p[1], p[2], p[3]]) as usize);
    match e {
        FrameError::TooLarge { len, max: m } => {
            assert_eq!(*m, max, "TooLarge reports the wrong limit");
            assert!(
                *len > max,
                "TooLarge for {len} bytes, within the limit {max}"
            );
            assert_eq!(announced, Some(*len), "TooLarge names the wrong length");
        }
        FrameError::Malformed(why) => {
            assert!(!why.is_empty(), "a Malformed error must say why");
            assert!(
                announced.is_some_and(|n| n <= max),
                "a frame over the limit must be TooLarge, not Malformed"
            );
        }
        other => panic!("the oracle does not know the error {other:?}"),
    }
}

/// Property 5 for one frame: its bytes, rebuilt from the decoded fields.
/// `None` where the decoder is lossy by design (ids ignored on goaway and
/// connection errors, unknown response codes folded into `Protocol`); a
/// cancel's body is ignored too, so only its kind and id come back.
pub fn reencode(f: &Frame) -> Option<Vec<u8>> {
    let mut out = BytesMut::new();
    match f {
        Frame::Request {
            id,
            timeout_ms,
            service,
            method,
            metadata,
            payload,
        } => {
            // Independent of frame::encode_request (which needs a prost
            // message): the layout as documented in frame.rs. Kind 6 when
            // there is a metadata block (an empty block sent as kind 6 is
            // lossy: see check_frame_decoder).
            let md = if metadata.is_empty() {
                0
            } else {
                2 + metadata.len()
            };
            let body = 4 + 1 + service.len() + 1 + method.len() + md + payload.len();
            out.put_u32((1 + 8 + body) as u32);
            out.put_u8(if md == 0 { 1 } else { 6 });
            out.put_u64(*id);
            out.put_u32(*timeout_ms);
            out.put_u8(service.len() as u8);
            out.put_slice(service);
            out.put_u8(method.len() as u8);
            out.put_slice(method);
            if md > 0 {
                out.put_u16(metadata.len() as u16);
                out.put_slice(metadata);
            }
            out.put_slice(payload);
        }
        Frame::Response {
            id,
            code,
            metadata,
            payload,
        } => {
            if *code == ErrorCode::Protocol {
                return None;
            }
            let md = if metadata.is_empty() {
                0
            } else {
                2 + metadata.len()
            };
            out.put_u32((1 + 8 + 1 + md + payload.len()) as u32);
            out.put_u8(if md == 0 { 2 } else { 7 });
            out.put_u64(*id);
            out.put_u8(*code as u8);
            if md > 0 {
                out.put_u16(metadata.len() as u16);
                out.put_slice(metadata);
            }
            out.put_slice(payload);
        }
        Frame::Cancel { id } => frame::encode_cancel(&mut out, *id),
        Frame::GoAway | Frame::ConnectionError { .. } => return None,
        Frame::StreamOpen {
            id,
            timeout_ms,
            window,
            service,
            method,
            metadata,
            payload,
        } => {
            // Kind 8 always carries its metadata length, empty or not.
            let body =
                4 + 4 + 1 + service.len() + 1 + method.len() + 2 + metadata.len() + payload.len();
            out.put_u32((1 + 8 + body) as u32);
            out.put_u8(8);
            out.put_u64(*id);
            out.put_u32(*timeout_ms);
            out.put_u32(*window);
            out.put_u8(service.len() as u8);
            out.put_slice(service);
            out.put_u8(method.len() as u8);
            out.put_slice(method);
            out.put_u16(metadata.len() as u16);
            out.put_slice(metadata);
            out.put_slice(payload);
        }
        Frame::StreamMessage { id, payload } => {
            out.put_u32((1 + 8 + payload.len()) as u32);
            out.put_u8(9);
            out.put_u64(*id);
            out.put_slice(payload);
        }
        Frame::StreamEnd { id, code, message } => {
            // Unknown codes fold into `Protocol`, as in responses.
            if *code == ErrorCode::Protocol {
                return None;
            }
            out.put_u32((1 + 8 + 1 + message.len()) as u32);
            out.put_u8(10);
            out.put_u64(*id);
            out.put_u8(*code as u8);
            out.put_slice(message);
        }
        Frame::Credit { id, bytes } => {
            out.put_u32(1 + 8 + 4);
            out.put_u8(11);
            out.put_u64(*id);
            out.put_u32(*bytes);
        }
        // `Frame` is non-exhaustive: a kind added to the format must be
        // taught to the oracle, not skipped by it.
        other => panic!("the oracle cannot re-encode {other:?}"),
    }
    Some(out.to_vec())
}

// ANCHOR: check_frame
/// All properties of the framed decoder for one input. The first byte picks
/// the limit; the rest is the stream.
pub fn check_frame_decoder(data: &[u8]) {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let max = limit_from(selector);
    let whole = frames_at_once(bytes, max);
    let trickled = frames_byte_by_byte(bytes, max);
    assert_eq!(whole, trickled, "split delivery changed the result");
    for (f, raw) in &whole.frames {
        assert!(
            raw.len() <= 4 + max,
            "a frame longer than the limit decoded"
        );
        // Kinds 6 and 7 with an empty metadata block decode like kinds 1
        // and 2: the kind byte is not kept.
        let empty_block = matches!(f,
            Frame::Request { metadata, .. } | Frame::Response { metadata, .. } if metadata.is_empty());
        if empty_block && matches!(raw.get(4), Some(6 | 7)) {
            continue;
        }
        if let Some(again) = reencode(f) {
            // A cancel's body is ignored (room for later extensions), so
            // only its kind and id must match.
            let (again, raw) = match f {
                Frame::Cancel { .. } => (&again[4..13], &raw[4..13]),
                _ => (&again[..], &raw[..]),
            };
            assert_eq!(again, raw, "{f:?} does not re-encode to its bytes");
        }
    }
}
// ANCHOR_END: check_frame

/// Everything the legacy decoder produced for one stream.
#[derive(Debug, PartialEq)]
pub struct LegacyRun {
    /// Requests decoded (the provider serves one per connection; the decoder
    /// itself may be asked again).
    pub requests: Vec<legacy::Request>,
    /// Bytes asked for when the run ended waiting, if it did.
    pub need: Option<usize>,
    /// The error that ended the run, if any.
    pub error: Option<String>,
}

/// Decodes legacy requests from `bytes`, delivered in reads of `chunk`
/// bytes, calling the decoder only when it has the bytes it asked for — as
/// `legacy::read_request` does.
pub fn legacy_run(bytes: &[u8], max: usize, chunk: usize) -> LegacyRun {
    let mut buf = BytesMut::new();
    let bound = capacity_bound(bytes.len(), max);
    let mut fed = 0;
    let mut run = LegacyRun {
        requests: Vec::new(),
        need: None,
        error: None,
    };
    let mut needed = 0;
    loop {
        while buf.len() < needed && fed < bytes.len() {
            let n = chunk.max(1).min(bytes.len() - fed);
            buf.put_slice(&bytes[fed..fed + n]);
            fed += n;
        }
        if buf.len() < needed {
            run.need = Some(needed);
            return run;
        }
        let result = legacy::try_decode(&mut buf, max);
        assert!(
            buf.capacity() <= bound,
            "legacy decoder reserved {} bytes for a {}-byte input with max_frame_size {max}",
            buf.capacity(),
            bytes.len()
        );
        match result {
            Ok(Decoded::NeedBytes(n)) => {
                assert!(n <= max, "asked for {n} bytes, above the limit {max}");
                assert!(
                    n > buf.len(),
                    "asked for {n} bytes while holding {}",
                    buf.len()
                );
                needed = n;
            }
            Ok(Decoded::Request(r)) => {
                let total = 4 + r.args.len();
                assert!(total <= max, "a request above the limit decoded");
                run.requests.push(r);
                needed = 0;
            }
            Err(e) => {
                assert!(!e.is_empty());
                run.error = Some(e);
                return run;
            }
            Ok(other) => panic!("the oracle does not know {other:?}"),
        }
    }
}

/// All properties of the legacy decoder for one input. The first byte picks
/// the limit; the rest is the stream.
pub fn check_legacy_decoder(data: &[u8]) {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let max = limit_from(selector);
    let whole = legacy_run(bytes, max, usize::MAX);
    let trickled = legacy_run(bytes, max, 1);
    assert_eq!(whole, trickled, "split delivery changed the result");
    for r in &whole.requests {
        // Re-encoded canonically, the request decodes to itself.
        let header = RpcHeader {
            service_name: r.service.clone(),
            method_name: r.method.clone(),
            args_size: r.args.len() as u32,
        }
        .encode_to_vec();
        let mut again = BytesMut::new();
        again.put_u32_le(header.len() as u32);
        again.put_slice(&header);
        again.put_slice(&r.args);
        match legacy::try_decode(&mut again, DEFAULT_MAX) {
            Ok(Decoded::Request(back)) => assert_eq!(&back, r),
            other => panic!("re-encoded {r:?} decodes to {other:?}"),
        }
    }
}

/// Properties of the `RpcHeader` parse: no panic; the names it allocates
/// fit in the input; the header round-trips; its canonical encoding is no
/// longer than the bytes it came from.
pub fn check_rpc_header(data: &[u8]) {
    let Ok(h) = RpcHeader::decode(data) else {
        return;
    };
    assert!(
        h.service_name.len() + h.method_name.len() <= data.len(),
        "names longer than the input"
    );
    let canonical = h.encode_to_vec();
    assert!(canonical.len() <= data.len(), "canonical form is longer");
    match RpcHeader::decode(&canonical[..]) {
        Ok(back) => assert_eq!(back, h),
        Err(e) => panic!("re-encoded header does not decode: {e}"),
    }
}
