//! A user's crate, outside this workspace, on `mprpc` + `mprpc-build` alone:
//! its own Cargo.toml (path dependencies on the two crates, `tokio`, and no
//! prost or bytes), its own `.proto` files, a build.rs calling
//! `compile_protos`. The test writes it into a temporary directory, builds
//! and runs it; the program starts a provider and calls it over TCP with the
//! async and the blocking stubs (see `tests/fixture-crate/src/main.rs`).

use std::path::Path;

mod support;

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
    let repo = support::repo();
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
    let output = support::cargo_outside_workspace(&krate, "user-crate", &["run", "--quiet"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    for check in [
        "ok: full name kv.KvStore",
        "ok: descriptor set embedded",
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
