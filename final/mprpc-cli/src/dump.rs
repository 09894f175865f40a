//! Bytes, annotated: the course's `[u32 header_size][RpcHeader][args]` and
//! the framed format's preamble and frames, one row per field, with offsets
//! — the tables of the book's wire-formats chapter, for any call.

use std::fmt::Write as _;

use bytes::BytesMut;
use mprpc::frame::{self, Frame};
use prost_reflect::{Kind, MessageDescriptor};

/// Rows of `offset | bytes | field | meaning`, printed as aligned text.
#[derive(Debug, Default)]
pub struct Table {
    /// (offset, bytes, field, meaning).
    rows: Vec<(usize, Vec<u8>, String, String)>,
}

impl Table {
    /// Adds a row.
    fn row(&mut self, offset: usize, bytes: &[u8], field: &str, meaning: impl Into<String>) {
        self.rows
            .push((offset, bytes.to_vec(), field.to_string(), meaning.into()));
    }

    /// The table as text, long byte runs cut to 24 bytes (with the count).
    pub fn render(&self) -> String {
        let cells: Vec<(String, String, &str, &str)> = self
            .rows
            .iter()
            .map(|(o, b, f, m)| (o.to_string(), hex_spaced(b, 24), f.as_str(), m.as_str()))
            .collect();
        let w0 = cells.iter().map(|c| c.0.len()).max().unwrap_or(0).max(6);
        let w1 = cells.iter().map(|c| c.1.len()).max().unwrap_or(0).max(5);
        let w2 = cells.iter().map(|c| c.2.len()).max().unwrap_or(0).max(5);
        let mut out = format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  meaning\n",
            "offset", "bytes", "field"
        );
        for (o, b, f, m) in cells {
            let _ = writeln!(out, "{o:<w0$}  {b:<w1$}  {f:<w2$}  {m}");
        }
        out
    }
}

/// `0a 09 7a …` for at most `max` bytes, then `… (N bytes)`.
fn hex_spaced(bytes: &[u8], max: usize) -> String {
    let shown: Vec<String> = bytes.iter().take(max).map(|b| format!("{b:02x}")).collect();
    let mut s = shown.join(" ");
    if bytes.len() > max {
        let _ = write!(s, " … ({} bytes)", bytes.len());
    }
    s
}

/// Plain lowercase hex, no spaces (as in `proto/captures/*.hex`).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes from hex text (spaces and newlines ignored).
pub fn from_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if digits.len() % 2 != 0 {
        return Err(format!("hex {text:?} has an odd number of digits"));
    }
    digits
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).unwrap_or("??");
            u8::from_str_radix(s, 16).map_err(|_| format!("{s:?} is not a hex byte"))
        })
        .collect()
}

/// The course's request, annotated: `header_size`, each `RpcHeader` field,
/// then the arguments field by field (named when `args` is known).
pub fn course_request(bytes: &[u8], args: Option<&MessageDescriptor>) -> Table {
    let mut t = Table::default();
    if bytes.len() < 4 {
        t.row(0, bytes, "?", "shorter than the 4-byte header_size");
        return t;
    }
    let size = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    t.row(
        0,
        &bytes[..4],
        "header_size",
        format!("header_size = {size}, little-endian"),
    );
    let end = (4 + size).min(bytes.len());
    message_rows(
        &mut t,
        &bytes[4..end],
        4,
        "header",
        None,
        &["service_name", "method_name", "args_size"],
    );
    message_rows(&mut t, &bytes[end..], end, "args", args, &[]);
    t
}

/// The course's response: the bare message, field by field.
pub fn course_response(bytes: &[u8], output: Option<&MessageDescriptor>) -> Table {
    let mut t = Table::default();
    if bytes.is_empty() {
        t.row(
            0,
            bytes,
            "(none)",
            "no bytes before the close: the course's caller would parse an empty reply",
        );
    }
    message_rows(&mut t, bytes, 0, "message", output, &[]);
    t
}

/// The framed format: an 8-byte preamble, then frames; every frame's head
/// and body by kind, its payload field by field when `payload` is known.
pub fn framed(bytes: &[u8], payload: Option<&MessageDescriptor>) -> Table {
    let mut t = Table::default();
    let mut at = 0;
    if bytes.starts_with(&frame::MAGIC) && bytes.len() >= 8 {
        t.row(0, &bytes[..4], "magic", "\"MPRC\"");
        t.row(4, &bytes[4..5], "version", format!("version {}", bytes[4]));
        let flags = bytes[5];
        let meaning = match (
            flags & frame::FLAG_METADATA != 0,
            flags & frame::FLAG_STREAMS != 0,
        ) {
            (true, true) => {
                "bits 0 and 1: understands metadata (kinds 6 and 7), can stream (8 to 11)"
            }
            (true, false) => "bit 0: understands metadata (kinds 6 and 7)",
            (false, true) => "bit 1: can stream (kinds 8 to 11); no metadata",
            (false, false) => "no metadata, no streams",
        };
        t.row(5, &bytes[5..6], "flags", meaning);
        t.row(6, &bytes[6..8], "reserved", "zero");
        at = 8;
    }
    while at < bytes.len() {
        let rest = &bytes[at..];
        let mut buf = BytesMut::from(rest);
        let decoded = frame::try_decode(&mut buf, frame::MAX_FRAME_SIZE_CAP);
        let Ok(Some(f)) = decoded else {
            t.row(at, rest, "?", "not a complete frame");
            break;
        };
        let len = 4 + u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        frame_rows(&mut t, &rest[..len], at, &f, payload);
        at += len;
    }
    t
}

/// One frame's rows (`bytes` is the whole frame, starting at `base`).
fn frame_rows(
    t: &mut Table,
    bytes: &[u8],
    base: usize,
    f: &Frame,
    payload: Option<&MessageDescriptor>,
) {
    t.row(
        base,
        &bytes[..4],
        "length",
        format!("{} bytes follow", bytes.len() - 4),
    );
    let kind = bytes[4];
    let kind_name = match kind {
        1 => "request",
        2 => "response",
        3 => "cancel",
        4 => "goaway",
        5 => "connection error",
        6 => "request with metadata",
        7 => "response with metadata",
        8 => "stream open",
        9 => "stream message",
        10 => "stream end",
        11 => "credit",
        _ => "unknown",
    };
    t.row(base + 4, &bytes[4..5], "kind", kind_name);
    let id = u64::from_be_bytes(bytes[5..13].try_into().unwrap_or([0; 8]));
    t.row(base + 5, &bytes[5..13], "call id", id.to_string());
    let mut at = 13;
    let md_block = |t: &mut Table, at: &mut usize, md: &[u8]| {
        t.row(
            base + *at,
            &bytes[*at..*at + 2],
            "L",
            format!("metadata block of {} bytes", md.len()),
        );
        *at += 2;
        metadata_rows(t, &bytes[*at..*at + md.len()], base + *at);
        *at += md.len();
    };
    match f {
        Frame::Request {
            timeout_ms,
            service,
            method,
            metadata,
            ..
        } => {
            let meaning = if *timeout_ms == 0 {
                "no deadline".into()
            } else {
                timeout_ms.to_string()
            };
            t.row(base + at, &bytes[at..at + 4], "timeout_ms", meaning);
            at += 4;
            for (label, name) in [("service", service), ("method", method)] {
                t.row(
                    base + at,
                    &bytes[at..at + 1],
                    if label == "service" { "S" } else { "M" },
                    format!("{label} name of {} bytes", name.len()),
                );
                at += 1;
                t.row(
                    base + at,
                    &bytes[at..at + name.len()],
                    label,
                    format!("{:?}", String::from_utf8_lossy(name)),
                );
                at += name.len();
            }
            if kind == 6 {
                md_block(t, &mut at, metadata);
            }
            message_rows(t, &bytes[at..], base + at, "payload", payload, &[]);
        }
        Frame::Response { code, metadata, .. } => {
            t.row(
                base + at,
                &bytes[at..at + 1],
                "code",
                format!("{} ({})", *code as u8, code.as_str()),
            );
            at += 1;
            if kind == 7 {
                md_block(t, &mut at, metadata);
            }
            if *code == mprpc::ErrorCode::Ok {
                message_rows(t, &bytes[at..], base + at, "payload", payload, &[]);
            } else {
                let text = String::from_utf8_lossy(&bytes[at..]);
                t.row(base + at, &bytes[at..], "text", format!("{text:?}"));
            }
        }
        Frame::ConnectionError { code, message } => {
            t.row(
                base + at,
                &bytes[at..at + 1],
                "code",
                format!("{} ({})", *code as u8, code.as_str()),
            );
            t.row(
                base + at + 1,
                &bytes[at + 1..],
                "text",
                format!("{message:?}"),
            );
        }
        _ => {}
    }
}

/// A metadata block's entries: `u8 key length | key | u16 value length | value`.
fn metadata_rows(t: &mut Table, block: &[u8], base: usize) {
    let mut at = 0;
    while at < block.len() {
        let klen = block[at] as usize;
        let Some(key) = block.get(at + 1..at + 1 + klen) else {
            break;
        };
        t.row(
            base + at,
            &block[at..at + 1],
            "key length",
            klen.to_string(),
        );
        t.row(
            base + at + 1,
            key,
            "key",
            format!("{:?}", String::from_utf8_lossy(key)),
        );
        at += 1 + klen;
        let Some(vl) = block.get(at..at + 2) else {
            break;
        };
        let vlen = u16::from_be_bytes([vl[0], vl[1]]) as usize;
        t.row(base + at, vl, "value length", vlen.to_string());
        let Some(value) = block.get(at + 2..at + 2 + vlen) else {
            break;
        };
        t.row(
            base + at + 2,
            value,
            "value",
            format!("{:?}", String::from_utf8_lossy(value)),
        );
        at += 2 + vlen;
    }
}

/// A protobuf message's fields: one row for each key and, for LEN fields,
/// one for the length and one for the value. Names come from `desc`, else
/// from `names` (by field number, for the course's `RpcHeader`).
fn message_rows(
    t: &mut Table,
    bytes: &[u8],
    base: usize,
    part: &str,
    desc: Option<&MessageDescriptor>,
    names: &[&str],
) {
    let mut at = 0;
    while at < bytes.len() {
        let Some((key, klen)) = varint(&bytes[at..]) else {
            t.row(
                base + at,
                &bytes[at..],
                part,
                "not protobuf: a key that does not end",
            );
            return;
        };
        let (number, wire) = ((key >> 3) as u32, (key & 7) as u8);
        let field = desc.and_then(|d| d.get_field(number));
        let name = match (&field, names.get((number as usize).wrapping_sub(1))) {
            (Some(f), _) => f.name().to_string(),
            (None, Some(n)) => (*n).to_string(),
            _ => format!("field {number}"),
        };
        let wire_name =
            ["VARINT", "I64", "LEN", "SGROUP", "EGROUP", "I32", "?", "?"][wire as usize];
        t.row(
            base + at,
            &bytes[at..at + klen],
            part,
            format!("key: field {number} ({name}), wire type {wire} ({wire_name})"),
        );
        at += klen;
        let rest = &bytes[at..];
        match wire {
            0 => {
                let Some((v, n)) = varint(rest) else {
                    t.row(base + at, rest, part, "a varint that does not end");
                    return;
                };
                t.row(base + at, &rest[..n], part, format!("{name} = {v}"));
                at += n;
            }
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                let Some(v) = rest.get(..n) else {
                    t.row(base + at, rest, part, "truncated");
                    return;
                };
                t.row(base + at, v, part, format!("{name}, {n} bytes"));
                at += n;
            }
            2 => {
                let Some((len, n)) = varint(rest) else {
                    t.row(base + at, rest, part, "a length that does not end");
                    return;
                };
                t.row(base + at, &rest[..n], part, format!("length {len}"));
                at += n;
                // A peer's length may be anything up to 2^64: checked, never added blindly.
                let end = usize::try_from(len).ok().and_then(|n| at.checked_add(n));
                let Some(value) = end.and_then(|end| bytes.get(at..end)) else {
                    t.row(
                        base + at,
                        &bytes[at..],
                        part,
                        format!("truncated: {len} bytes announced"),
                    );
                    return;
                };
                let kind = field.as_ref().map(|f| f.kind());
                let meaning = match kind {
                    Some(Kind::Message(m)) => format!("{} ({} bytes)", m.full_name(), value.len()),
                    _ => match std::str::from_utf8(value) {
                        Ok(s) if s.chars().all(|c| !c.is_control()) => format!("{s:?}"),
                        _ => format!("{} bytes", value.len()),
                    },
                };
                t.row(base + at, value, part, meaning);
                at += value.len();
            }
            _ => {
                t.row(base + at, rest, part, "groups are not annotated");
                return;
            }
        }
    }
}

/// A varint at the start of `bytes`: (value, its length), or `None` if it
/// does not end within 10 bytes.
fn varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, b) in bytes.iter().take(10).enumerate() {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes a hostile or broken provider might answer with: annotated as
    /// far as they make sense, never a panic.
    #[test]
    fn hostile_bytes_are_annotated_not_panicked_on() {
        let huge_len = [
            0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        let text = course_response(&huge_len, None).render();
        assert!(text.contains("truncated"), "{text}");
        let endless_varint = [
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ];
        assert!(
            course_response(&endless_varint, None)
                .render()
                .contains("does not end")
        );
        let huge_header = [0xff, 0xff, 0xff, 0xff, 0x0a];
        assert!(!course_request(&huge_header, None).render().is_empty());
        let mut framed_garbage = frame::PREAMBLE.to_vec();
        framed_garbage.extend_from_slice(&[0xff; 20]);
        assert!(
            framed(&framed_garbage, None)
                .render()
                .contains("not a complete frame")
        );
    }
}
