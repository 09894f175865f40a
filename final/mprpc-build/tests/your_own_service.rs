//! The crate of the book's chapter "Your own service" (`book/your-own-service`),
//! built and tested the way a reader builds theirs: on its own, outside the
//! workspace (the root Cargo.toml excludes it), with `cargo test` in its
//! directory. Every listing of the chapter is a file of that crate, so this
//! test is what keeps the chapter true.

mod support;

#[test]
fn the_chapters_crate_builds_and_passes_its_tests() {
    let krate = support::repo().join("book/your-own-service");
    // The lock file copied in is git-ignored: a committed lock file of its
    // own would drift from the workspace's. The crate is not in the
    // workspace, so it cannot share the workspace's target directory.
    let output =
        support::cargo_outside_workspace(&krate, "your-own-service", &["test", "--color", "never"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
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
    // Not a workspace member, so `cargo clippy --workspace` never sees it;
    // a reader copies this code, so it is held to the workspace's rules.
    // (After the tests, not in a test of its own: both copy the lock file
    // into the same directory.)
    support::cargo_outside_workspace(
        &krate,
        "your-own-service",
        &[
            "clippy",
            "--all-targets",
            "--color",
            "never",
            "--",
            "-D",
            "warnings",
        ],
    );
}
