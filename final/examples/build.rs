//! Generates the demo's messages and services, as any user's build script
//! would: the course's `.proto` files (shared with the tutorial's steps, in the
//! repository's `proto/`) and this crate's own `proto/kv.proto`.

fn main() -> std::io::Result<()> {
    mprpc_build::compile_protos(
        &[
            "../../proto/user.proto",
            "../../proto/friend.proto",
            "proto/kv.proto",
            "proto/streams.proto",
        ],
        &["../../proto", "proto"],
    )
}
