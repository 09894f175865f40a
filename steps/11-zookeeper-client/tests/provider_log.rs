//! The framework's own lines reach the log file: the step's program runs a
//! provider with its default sink, sends it a call it cannot serve, fails a
//! call without a controller, and reads this run's `ERROR` lines back from
//! `logs/` (in a temporary directory here).

mod support;

use std::process::Command;

/// This step's own program.
const PROGRAM: &str = env!(concat!("CARGO_BIN_EXE_", env!("CARGO_PKG_NAME")));

#[test]
fn a_bad_request_and_an_unreported_failure_land_in_the_log_file_as_errors() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(PROGRAM)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let read_back = stdout.split("== this run's ERROR lines in logs/").nth(1);
    let read_back = read_back.unwrap_or_else(|| panic!("no read-back in:\n{stdout}"));
    for error in [
        "[ERROR] 127.0.0.1:",
        "no service FriendServiceRpc is published; closing without a reply",
        "[ERROR] rpc UserServiceRpc.Login: cannot connect",
    ] {
        assert!(read_back.contains(error), "{error:?} not in:\n{read_back}");
    }
    // The file itself, parsed: the provider's INFO lines are there too.
    let lines = support::log_file::read_all(&dir.path().join("logs"));
    let listening = |l: &&support::log_file::Line| {
        l.level == "INFO" && l.message.starts_with("RpcProvider listening on 127.0.0.1:")
    };
    assert!(lines.iter().any(|l| listening(&l)), "{lines:#?}");
}
