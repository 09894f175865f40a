//! [`Metadata`]: a small map of text keys to text values that travels with a
//! call's request and with its response, beside the protobuf message.
//!
//! It carries what is about the call rather than in it — a bearer token, a
//! trace id, the caller's name, a server's version — the way HTTP headers
//! and gRPC metadata do. Callers set it on the controller
//! ([`MprpcController::set_metadata`](crate::MprpcController::set_metadata))
//! or in a [`ClientInterceptor`](crate::interceptor::ClientInterceptor);
//! handlers read it from [`CallContext::metadata`](crate::CallContext) and
//! may answer with some of their own
//! ([`CallContext::set_response_metadata`](crate::CallContext::set_response_metadata)).
//!
//! It is bounded twice: by the wire format (at most 255 bytes of key and
//! 65,535 bytes of value per entry) and by the receiver's config,
//! `limits.max_metadata_entries` and `limits.max_metadata_bytes` — a peer
//! cannot make us hold more than that per call. The course's format has no
//! place for it: calls in that format arrive with none, and their responses
//! carry none.
//!
//! On the wire (kinds 6 and 7 in [`crate::frame`]) a metadata block is
//! entries back to back, each `u8 key length | key | u16 value length
//! (big-endian) | value`.

use std::fmt;

// Nothing from `crate::error` here: a `Status` carries a `Metadata`, so this
// module sits below `error` and reports its own error, [`InvalidMetadata`];
// `Metadata::insert`, which answers with a `Status`, is written in
// `error.rs` for that reason.

/// Longest key, in bytes (its length travels in one byte).
pub const MAX_KEY_LEN: usize = 255;
/// Longest value, in bytes (its length travels in two bytes).
pub const MAX_VALUE_LEN: usize = u16::MAX as usize;

// ANCHOR: metadata
/// Keys and values sent with a request or a response. Keys are lowercase
/// ASCII letters, digits and `-`, `_`, `.` (as HTTP/2 requires of header
/// names, so a gateway can map them); values are UTF-8 text. One value per
/// key: inserting a key again replaces its value. Order is kept as inserted.
#[derive(Clone, Default)]
pub struct Metadata {
    /// Entries in insertion order. Calls carry a handful, so a vector
    /// searched linearly is faster than any map. Boxed, and `None` while
    /// empty: most calls carry none, and a `Metadata` sits in every
    /// request's context and every `Status`, which are moved on each call —
    /// one word, not three.
    #[allow(clippy::box_collection)] // the extra allocation is the point: one word here
    entries: Option<Box<Vec<(String, String)>>>,
}
// ANCHOR_END: metadata

/// Why a key or value cannot be metadata: the key is not a valid name, or
/// a part is too long for the wire. Its text says which and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidMetadata(String);

impl InvalidMetadata {
    /// The explanation, as the caller or handler will see it.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InvalidMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidMetadata {}

impl PartialEq for Metadata {
    fn eq(&self, other: &Metadata) -> bool {
        // No box and an emptied box are the same empty map.
        self.list() == other.list()
    }
}

impl Eq for Metadata {}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A value may be a credential: logs see keys only.
        f.debug_set()
            .entries(self.list().iter().map(|(k, _)| k))
            .finish()
    }
}

impl Metadata {
    /// An empty map.
    pub fn new() -> Metadata {
        Metadata::default()
    }

    /// The entries, as a slice.
    fn list(&self) -> &[(String, String)] {
        self.entries.as_deref().map_or(&[], Vec::as_slice)
    }

    /// The entries, for adding one (boxed now if there were none).
    fn list_mut(&mut self) -> &mut Vec<(String, String)> {
        self.entries.get_or_insert_with(Box::default)
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.list()
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `key` to `value`, replacing an earlier value. Fails, changing
    /// nothing, if the key is not a valid name or either part is too long
    /// for the wire. [`Metadata::insert`] is the same, failing with a
    /// [`Status`](crate::Status) (code `BadRequest`) for a handler's `?`.
    pub fn try_insert(
        &mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<(), InvalidMetadata> {
        let (key, value) = (key.into(), value.into());
        check_key(key.as_bytes()).map_err(InvalidMetadata)?;
        if value.len() > MAX_VALUE_LEN {
            return Err(InvalidMetadata(format!(
                "metadata value of {key:?} is {} bytes; at most {MAX_VALUE_LEN}",
                value.len()
            )));
        }
        let entries = self.list_mut();
        match entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => entries.push((key, value)),
        }
        Ok(())
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let entries = self.entries.as_mut()?;
        let i = entries.iter().position(|(k, _)| k == key)?;
        Some(entries.remove(i).1)
    }

    /// Entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.list().iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.list().len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.list().is_empty()
    }

    /// Adds every entry of `other`, replacing values of keys present in both.
    pub fn extend_from(&mut self, other: Metadata) {
        let Some(theirs) = other.entries else {
            return;
        };
        if self.is_empty() {
            self.entries = Some(theirs);
            return;
        }
        let entries = self.list_mut();
        for (k, v) in *theirs {
            match entries.iter_mut().find(|(key, _)| *key == k) {
                Some(entry) => entry.1 = v,
                None => entries.push((k, v)),
            }
        }
    }

    /// Bytes of the encoded block (without the `u16` block length that
    /// precedes it in a frame).
    pub fn encoded_len(&self) -> usize {
        self.list()
            .iter()
            .map(|(k, v)| 1 + k.len() + 2 + v.len())
            .sum()
    }

    /// Appends the encoded block to `buf`.
    pub(crate) fn encode(&self, buf: &mut impl bytes::BufMut) {
        for (k, v) in self.list() {
            // Lengths were checked on insert.
            buf.put_u8(k.len() as u8);
            buf.put_slice(k.as_bytes());
            buf.put_u16(v.len() as u16);
            buf.put_slice(v.as_bytes());
        }
    }

    /// Checks that this map is within `limits` (what a receiver would
    /// accept), so a sender can fail a call before it leaves.
    pub(crate) fn check(&self, limits: MetadataLimits) -> Result<(), String> {
        if self.len() > limits.max_entries {
            return Err(format!(
                "{} metadata entries; limits.max_metadata_entries is {}",
                self.len(),
                limits.max_entries
            ));
        }
        let len = self.encoded_len();
        if len > limits.max_bytes {
            return Err(format!(
                "metadata of {len} bytes; limits.max_metadata_bytes is {}",
                limits.max_bytes
            ));
        }
        Ok(())
    }

    // ANCHOR: decode
    /// Decodes a block received from a peer, within `limits`. Every length
    /// is checked against what remains before anything is copied, so a
    /// hostile block costs at most its own size.
    pub fn decode(mut block: &[u8], limits: MetadataLimits) -> Result<Metadata, String> {
        if block.len() > limits.max_bytes {
            return Err(format!(
                "metadata block of {} bytes exceeds limits.max_metadata_bytes = {}",
                block.len(),
                limits.max_bytes
            ));
        }
        let mut md = Metadata::new();
        while !block.is_empty() {
            if md.len() == limits.max_entries {
                return Err(format!(
                    "more than limits.max_metadata_entries = {} metadata entries",
                    limits.max_entries
                ));
            }
            let klen = usize::from(block[0]);
            let key = block
                .get(1..1 + klen)
                .ok_or("metadata key runs past the end of its block")?;
            check_key(key)?;
            let rest = &block[1 + klen..];
            let vlen = match rest {
                [hi, lo, ..] => usize::from(u16::from_be_bytes([*hi, *lo])),
                _ => return Err("metadata value length runs past the end of its block".into()),
            };
            let value = rest
                .get(2..2 + vlen)
                .ok_or("metadata value runs past the end of its block")?;
            let value = std::str::from_utf8(value)
                .map_err(|_| format!("metadata value of {:?} is not UTF-8", lossy(key)))?;
            let key = lossy(key);
            if md.get(&key).is_some() {
                return Err(format!("metadata key {key:?} appears twice"));
            }
            md.list_mut().push((key, value.to_owned()));
            block = &rest[2 + vlen..];
        }
        Ok(md)
    }
    // ANCHOR_END: decode
}

/// A key's bytes as a string (already checked to be ASCII).
fn lossy(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

/// Checks a key: 1 to 255 bytes of `a-z 0-9 - _ .`.
fn check_key(key: &[u8]) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(format!(
            "metadata key must be 1 to {MAX_KEY_LEN} bytes, not {}",
            key.len()
        ));
    }
    if let Some(bad) = key
        .iter()
        .find(|b| !(b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(b)))
    {
        return Err(format!(
            "metadata key {:?} contains {:?}; keys are lowercase letters, digits, '-', '_' and '.'",
            String::from_utf8_lossy(key),
            char::from(*bad)
        ));
    }
    Ok(())
}

/// How much metadata a receiver accepts per request or response
/// (`limits.max_metadata_entries`, `limits.max_metadata_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetadataLimits {
    /// Most entries.
    pub max_entries: usize,
    /// Most bytes of encoded block.
    pub max_bytes: usize,
}

impl MetadataLimits {
    /// Limits of `max_entries` entries in `max_bytes` bytes.
    pub const fn new(max_entries: usize, max_bytes: usize) -> MetadataLimits {
        MetadataLimits {
            max_entries,
            max_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: MetadataLimits = MetadataLimits::new(4, 256);

    #[test]
    fn round_trip_keeps_order_and_replaces() {
        let mut md = Metadata::new();
        assert!(md.insert("authorization", "Bearer abc").is_ok());
        assert!(md.insert("x-trace", "7").is_ok());
        assert!(md.insert("authorization", "Bearer xyz").is_ok());
        let mut buf = Vec::new();
        md.encode(&mut buf);
        assert_eq!(buf.len(), md.encoded_len());
        let back = Metadata::decode(&buf, LIMITS);
        assert_eq!(back.as_ref(), Ok(&md));
        let keys: Vec<_> = md.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["authorization", "x-trace"]);
        assert_eq!(md.get("authorization"), Some("Bearer xyz"));
    }

    #[test]
    fn a_map_emptied_equals_an_empty_one() {
        let mut md = Metadata::new();
        assert!(md.insert("k", "v").is_ok());
        assert_ne!(md, Metadata::new());
        assert_eq!(md.remove("k").as_deref(), Some("v"));
        assert_eq!(md, Metadata::new());
        assert!(md.is_empty() && md.encoded_len() == 0);
        let mut both = Metadata::new();
        both.extend_from(Metadata::new());
        assert_eq!(both, Metadata::new());
        let mut other = Metadata::new();
        assert!(other.insert("a", "1").is_ok());
        both.extend_from(other.clone());
        assert_eq!(both, other);
    }

    #[test]
    fn bad_keys_are_refused() {
        let mut md = Metadata::new();
        for key in ["", "Upper", "a b", "é"] {
            assert!(md.insert(key, "v").is_err(), "{key:?}");
        }
        assert!(md.insert("k".repeat(256), "v").is_err());
        assert!(md.insert("k", "v".repeat(MAX_VALUE_LEN + 1)).is_err());
        assert!(md.is_empty());
    }

    #[test]
    fn hostile_blocks_are_errors() {
        // Key length past the end, value length past the end, bad UTF-8,
        // a duplicate key, too many entries, too many bytes.
        let cases: [&[u8]; 5] = [
            &[9, b'a'],
            &[1, b'a', 0xff, 0xff, b'x'],
            &[1, b'a', 0, 1, 0xff],
            &[1, b'a', 0, 0, 1, b'a', 0, 0],
            &[
                1, b'a', 0, 0, 1, b'b', 0, 0, 1, b'c', 0, 0, 1, b'd', 0, 0, 1, b'e', 0, 0,
            ],
        ];
        for block in cases {
            assert!(Metadata::decode(block, LIMITS).is_err(), "{block:?}");
        }
        assert!(Metadata::decode(&[0; 300], LIMITS).is_err());
    }

    #[test]
    fn debug_hides_values() {
        let mut md = Metadata::new();
        assert!(md.insert("authorization", "Bearer secret").is_ok());
        assert!(!format!("{md:?}").contains("secret"));
    }
}
