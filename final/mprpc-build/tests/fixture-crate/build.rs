// A user's build script: mprpc-build is its only build dependency.
fn main() -> std::io::Result<()> {
    mprpc_build::compile_protos(&["proto/kv.proto", "proto/backup.proto"], &["proto"])?;

    // The builder: blocking stubs off, output elsewhere, prost's own Config
    // reachable. Checked here, where the generated text is at hand.
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").map_err(std::io::Error::other)?)
        .join("no-blocking");
    std::fs::create_dir_all(&out)?;
    let mut builder = mprpc_build::configure()
        .out_dir(&out)
        .build_blocking_stubs(false)
        .emit_rerun_if_changed(false);
    builder
        .prost_config()
        .type_attribute(".kv.GetRequest", "#[doc = \"set through prost_config\"]");
    builder.compile_protos(&["proto/kv.proto"], &["proto"])?;
    let text = std::fs::read_to_string(out.join("kv.rs"))?;
    assert!(text.contains("pub struct KvStoreStub"), "async stub missing");
    assert!(!text.contains("BlockingKvStoreStub"), "blocking stub generated although turned off");
    assert!(text.contains("set through prost_config"), "prost_config attribute missing");
    // Every path into prost or bytes goes through ::mprpc.
    let outside = text.replace("::mprpc::prost::", "mprpc-prost/").replace("::mprpc::", "mprpc/");
    assert!(
        !outside.contains("::prost") && !outside.contains("::bytes"),
        "generated code names prost or bytes directly"
    );
    Ok(())
}
