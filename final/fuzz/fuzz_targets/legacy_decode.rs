//! libFuzzer target: the properties of `oracle::check_legacy_decoder` (shared with the
//! seeded smoke test `tests/decoders.rs`) on coverage-guided inputs.
#![no_main]

#[path = "../../examples/tests/decoder_oracle/mod.rs"]
mod oracle;

libfuzzer_sys::fuzz_target!(|data: &[u8]| oracle::check_legacy_decoder(data));
