//! Turns `proto/kv.proto` into Rust (messages, the `KvStore` trait, the
//! server wrapper and the stubs) in cargo's `OUT_DIR`.

fn main() -> std::io::Result<()> {
    // The files to compile, then the directories their imports are found in.
    mprpc_build::compile_protos(&["proto/kv.proto"], &["proto"])
}
