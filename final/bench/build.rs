//! Build script: compiles `proto/user.proto` (and the `common.proto` it
//! imports) once, and `final/examples/proto/streams.proto`, with tonic's generator, so every variant of the benchmark
//! sends the very same prost message types. tonic additionally gets its
//! client and server glue; the other variants only use the messages.
//!
//! It also records the compiler that built the benchmark, because a number
//! without the toolchain that produced it is hard to compare later.

use std::path::PathBuf;
use std::process::Command;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_dir = manifest.join("..").join("..").join("proto");
    let user = proto_dir.join("user.proto");
    println!("cargo:rerun-if-changed={}", user.display());
    println!(
        "cargo:rerun-if-changed={}",
        proto_dir.join("common.proto").display()
    );

    // protoc comes from a crate, so nothing has to be installed on the machine.
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure().compile_with_config(config, &[user], &[proto_dir])?;

    // The streaming section's service, `feed.Feed` (the chapter "Streams"'
    // test service, from final/examples), for the tonic variant and the
    // floor; `final` uses the types mprpc-build makes from the same file.
    let examples_proto = manifest.join("..").join("examples").join("proto");
    let streams = examples_proto.join("streams.proto");
    println!("cargo:rerun-if-changed={}", streams.display());
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure().compile_with_config(config, &[streams], &[examples_proto])?;

    // `RUSTC` is the compiler cargo is using for this very build.
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=BENCH_RUSTC_VERSION={version}");
    Ok(())
}
