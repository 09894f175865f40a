//! The crate of the book's chapter "Your own service" (`book/your-own-service`),
//! built and tested the way a reader builds theirs: on its own, outside the
//! workspace (the root Cargo.toml excludes it), with `cargo test` in its
//! directory. Every listing of the chapter is a file of that crate, so this
//! test is what keeps the chapter true.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (this file is in `final/mprpc-build/tests`).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_chapters_crate_builds_and_passes_its_tests() {
    let repo = repo()
        .canonicalize()
        .unwrap_or_else(|e| panic!("repository root: {e}"));
    let krate = repo.join("book/your-own-service");
    // The workspace's lock file pins the versions the workspace is tested
    // with, so the build needs no new resolution. The copy is git-ignored:
    // a committed lock file of its own would drift from the workspace's.
    std::fs::copy(repo.join("Cargo.lock"), krate.join("Cargo.lock"))
        .unwrap_or_else(|e| panic!("copying Cargo.lock: {e}"));
    // A target directory of its own, kept between runs: the crate is not in
    // the workspace, so it cannot share the workspace's.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("target"))
        .join("your-own-service");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["test", "--color", "never"])
        .current_dir(&krate)
        .env("CARGO_TARGET_DIR", &target)
        // No debug info in a build only tested: CI's disk is not ours.
        .env("CARGO_PROFILE_DEV_DEBUG", "false")
        // Whatever protoc the caller has: the vendored one must be used.
        .env_remove("PROTOC")
        .output()
        .unwrap_or_else(|e| panic!("running cargo: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "book/your-own-service failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        !stderr.contains("warning"),
        "building book/your-own-service printed warnings:\n{stderr}"
    );
    // The tests the chapter describes ran (a filter or a renamed test would
    // otherwise pass with nothing run).
    for test in [
        "put_then_get_over_tcp",
        "the_blocking_stub_from_a_plain_thread",
        "a_missing_key_is_an_answer_not_an_error",
        "a_full_store_refuses_with_a_status",
        "the_chapters_config_names_the_providers_own_address",
        "the_server_and_the_client_programs",
        "a_call_after_shutdown_fails_fast",
    ] {
        assert!(
            stdout.contains(&format!("test {test} ... ok")),
            "{test} did not pass:\n{stdout}\n{stderr}"
        );
    }
}
