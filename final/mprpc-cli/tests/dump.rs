//! Runs the built `mprpc` binary as a user would.

use std::process::Command;

/// The course's captured Login request, from `proto/captures/`.
fn capture(name: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto/captures/");
    std::fs::read_to_string(format!("{path}{name}"))
        .expect("capture readable")
        .trim()
        .to_string()
}

#[test]
fn course_login_dump_equals_capture() {
    let expected = capture("request.hex");
    // The args are the capture's last 19 bytes (args_size 19).
    let args = &expected[expected.len() - 38..];
    let out = Command::new(env!("CARGO_BIN_EXE_mprpc"))
        .args([
            "dump",
            "--course",
            "UserServiceRpc/Login",
            "--raw",
            "--args-hex",
            args,
        ])
        .output()
        .expect("binary runs");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), expected);

    let out = Command::new(env!("CARGO_BIN_EXE_mprpc"))
        .args([
            "dump",
            "--course",
            "UserServiceRpc/Login",
            "--args-hex",
            args,
        ])
        .output()
        .expect("binary runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("header_size = 25"), "{text}");
    assert!(text.contains("args_size: 19"), "{text}");
}

#[test]
fn bad_hex_is_one_line_and_nonzero() {
    let out = Command::new(env!("CARGO_BIN_EXE_mprpc"))
        .args([
            "dump",
            "--course",
            "UserServiceRpc/Login",
            "--args-hex",
            "0g",
        ])
        .output()
        .expect("binary runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
}
