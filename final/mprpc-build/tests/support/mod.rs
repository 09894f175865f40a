//! What the tests that build a crate outside the workspace share: where the
//! repository is, and how cargo is run there.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (this file is in `final/mprpc-build/tests/support`),
/// canonical.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|e| panic!("repository root: {e}"))
}

/// Runs `cargo <args>` in `krate`, a crate outside the workspace, the way
/// its reader would: the workspace's lock file copied in first (it pins the
/// versions the workspace is tested with, so the build needs no new
/// resolution), a target directory `target/<target>` of its own, kept
/// between runs so only a machine's first build compiles tokio & co., no
/// debug info (a build only run once: CI's disk is not ours), and the
/// vendored protoc whatever `PROTOC` the caller has. Panics with cargo's
/// output unless it succeeded without a warning.
pub fn cargo_outside_workspace(krate: &Path, target: &str, args: &[&str]) -> Output {
    let repo = repo();
    std::fs::copy(repo.join("Cargo.lock"), krate.join("Cargo.lock"))
        .unwrap_or_else(|e| panic!("copying Cargo.lock to {}: {e}", krate.display()));
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("target"))
        .join(target);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(args)
        .current_dir(krate)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("CARGO_PROFILE_DEV_DEBUG", "false")
        .env_remove("PROTOC")
        .output()
        .unwrap_or_else(|e| panic!("running cargo: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "cargo {args:?} in {} failed ({}):\n{stdout}\n{stderr}",
        krate.display(),
        output.status
    );
    // Generated code must not make a user's build noisy.
    assert!(
        !stderr.contains("warning"),
        "cargo {args:?} in {} printed warnings:\n{stderr}",
        krate.display()
    );
    output
}
