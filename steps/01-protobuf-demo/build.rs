//! Turns `proto/demo.proto` into Rust structs at build time.
//!
//! The C++ course runs `protoc test.proto --cpp_out=./` by hand and commits the
//! generated `.pb.cc`/`.pb.h`. Cargo runs this script before compiling the
//! crate instead, so the generated code can never go stale.

// ANCHOR: build
fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A protoc binary shipped inside a crate: a fresh clone builds with cargo
    // alone, no system package needed.
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    prost_build::Config::new()
        .protoc_executable(protoc)
        // Only for this demo: derive serde so we can print the very same value
        // as JSON and compare the sizes.
        .type_attribute(".", "#[derive(serde::Serialize, serde::Deserialize)]")
        // A BTreeMap keeps map entries sorted, so the encoded bytes (and this
        // step's printed output) are the same on every run. prost's default,
        // HashMap, iterates in a random order.
        .btree_map(["."])
        .compile_protos(&["../../proto/demo.proto"], &["../../proto"])?;
    Ok(())
}
// ANCHOR_END: build
