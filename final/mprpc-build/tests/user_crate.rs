//! A user's crate, outside this workspace, on `mprpc` + `mprpc-build` alone:
//! its own Cargo.toml (path dependencies on the two crates, `tokio`, and no
//! prost or bytes), its own `.proto` files, a build.rs calling
//! `compile_protos`. The test writes it into a temporary directory, builds
//! and runs it; the program starts a provider and calls it over TCP with the
//! async and the blocking stubs (see `tests/fixture-crate/src/main.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (this file is in `final/mprpc-build/tests`).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Copies the fixture crate's files (all but its Cargo.toml, which names
/// absolute paths and is written by the test) into `dir`.
fn copy_fixture(from: &Path, dir: &Path) {
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.unwrap_or_else(|e| panic!("{}: {e}", from.display()));
        let target = dir.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target)
                .unwrap_or_else(|e| panic!("{}: {e}", target.display()));
            copy_fixture(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("{}: {e}", target.display()));
        }
    }
}

#[test]
fn a_crate_outside_the_workspace_builds_and_calls() {
    let repo = repo()
        .canonicalize()
        .unwrap_or_else(|e| panic!("repository root: {e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let krate = dir.path().join("kv-user");
    std::fs::create_dir_all(&krate).unwrap_or_else(|e| panic!("{e}"));
    copy_fixture(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixture-crate"),
        &krate,
    );
    let manifest = format!(
        r#"[package]
name = "kv-user"
version = "0.1.0"
edition = "2024"
publish = false

# Not a member of any workspace around the temporary directory.
[workspace]

[dependencies]
mprpc = {{ path = "{mprpc}" }}
tokio = {{ version = "1", features = ["rt-multi-thread", "macros"] }}

[build-dependencies]
mprpc-build = {{ path = "{build}" }}
"#,
        mprpc = repo.join("final/mprpc").display(),
        build = repo.join("final/mprpc-build").display(),
    );
    std::fs::write(krate.join("Cargo.toml"), manifest).unwrap_or_else(|e| panic!("{e}"));
    // The workspace's lock file pins the same versions the workspace was
    // tested with (cargo drops what the crate does not use), so the build
    // needs no new downloads and no new resolution.
    std::fs::copy(repo.join("Cargo.lock"), krate.join("Cargo.lock"))
        .unwrap_or_else(|e| panic!("{e}"));

    // A target directory kept between runs, so only the first build of a
    // machine compiles tokio & co.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("target"))
        .join("user-crate");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["run", "--quiet"])
        .current_dir(&krate)
        .env("CARGO_TARGET_DIR", &target)
        // No debug info in a build only run once: CI's disk is not ours.
        .env("CARGO_PROFILE_DEV_DEBUG", "false")
        // Whatever protoc the caller has: the vendored one must be used.
        .env_remove("PROTOC")
        .output()
        .unwrap_or_else(|e| panic!("running cargo: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the user's crate failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    // Generated code must not make a user's build noisy.
    assert!(
        !stderr.contains("warning"),
        "building the user's crate printed warnings:\n{stderr}"
    );
    for check in [
        "ok: full name kv.KvStore",
        "ok: async get",
        "ok: handler status reaches the caller",
        "ok: backup.KvStore is not kv.KvStore",
        "ok: blocking get",
        "ok: ambiguous short name refused in the course format",
        "all checks passed",
    ] {
        assert!(
            stdout.contains(check),
            "missing {check:?} in:\n{stdout}\n{stderr}"
        );
    }
}
