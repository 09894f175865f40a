//! Loading the config file, good and bad, through the library and through
//! the real binary.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::process::Command;
use std::time::Duration;
use step::application::{InitError, MprpcApplication};
use step::config::{ConfigError, MprpcConfig};

const GOOD: &str = r#"
rpcserverip = "127.0.0.1"
rpcserverport = 8000
zookeeperip = "127.0.0.1"
zookeeperport = 2181
"#;

fn file_with(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("create a temp file");
    file.write_all(text.as_bytes())
        .expect("write the temp file");
    file
}

fn init_with(text: &str) -> (tempfile::NamedTempFile, Result<MprpcApplication, InitError>) {
    let file = file_with(text);
    let args = ["-i".to_string(), file.path().display().to_string()];
    let result = MprpcApplication::init(args);
    (file, result)
}

/// The message of a failed init, which must name the file.
fn error_text(text: &str) -> String {
    let (file, result) = init_with(text);
    let message = result.expect_err("init must fail").to_string();
    assert!(
        message.contains(&file.path().display().to_string()),
        "{message}"
    );
    message
}

#[test]
fn default_config_is_the_steps_own_file() {
    let app = MprpcApplication::init(Vec::<String>::new()).unwrap();
    assert!(app.config_path().ends_with("mprpc.toml"));
    assert_eq!(app.config().rpc_server_addr().to_string(), "127.0.0.1:8000");
}

#[test]
fn dash_i_loads_the_named_file() {
    let (_file, result) = init_with(&GOOD.replace("8000", "9001"));
    let config = result.unwrap().config().clone();
    assert_eq!(
        config,
        MprpcConfig {
            rpcserverip: "127.0.0.1".parse().unwrap(),
            rpcserverport: 9001,
            zookeeperip: "127.0.0.1".to_string(),
            zookeeperport: 2181,
            zk_session_timeout_ms: 30_000,
        }
    );
    assert_eq!(config.zookeeper_addr(), "127.0.0.1:2181");
}

#[test]
fn the_session_timeout_is_optional_and_defaults_to_the_courses_30_s() {
    // GOOD has no zk_session_timeout_ms, like every config of earlier steps.
    let config = MprpcConfig::parse(GOOD).unwrap();
    assert_eq!(config.zk_session_timeout(), Duration::from_secs(30));
    let config = MprpcConfig::parse(&format!("{GOOD}zk_session_timeout_ms = 2000\n")).unwrap();
    assert_eq!(config.zk_session_timeout(), Duration::from_secs(2));
    let message = error_text(&format!("{GOOD}zk_session_timeout_ms = \"30s\"\n"));
    assert!(message.contains("zk_session_timeout_ms"), "{message}");
}

#[test]
fn missing_file_names_the_file() {
    let result = MprpcApplication::init(["-i".to_string(), "/no/such/mprpc.toml".to_string()]);
    match result {
        Err(InitError::Config(ConfigError::Read { path, .. })) => {
            assert_eq!(path.to_str(), Some("/no/such/mprpc.toml"))
        }
        other => panic!("expected a read error, got {other:?}"),
    }
}

#[test]
fn bad_toml_is_reported() {
    let message = error_text("rpcserverip = \"127.0.0.1\nthis is not toml");
    assert!(message.starts_with("bad config file"), "{message}");
}

#[test]
fn missing_key_is_named() {
    let message = error_text(&GOOD.replace("rpcserverport = 8000", ""));
    assert!(
        message.contains("missing field `rpcserverport`"),
        "{message}"
    );
}

#[test]
fn out_of_range_port_is_named() {
    let message = error_text(&GOOD.replace("2181", "70000"));
    assert!(message.contains("zookeeperport"), "{message}");
    assert!(message.contains("70000"), "{message}");
}

#[test]
fn bad_ip_and_unknown_key_are_named() {
    let message = error_text(&GOOD.replace(
        "\"127.0.0.1\"\nrpcserverport",
        "\"localhost:80\"\nrpcserverport",
    ));
    assert!(message.contains("rpcserverip"), "{message}");
    let message = error_text(&format!("{GOOD}rpcserverpot = 1\n"));
    assert!(message.contains("rpcserverpot"), "{message}");
}

#[test]
fn bad_arguments_are_a_usage_error() {
    let error = MprpcApplication::init(["-i".to_string()]).unwrap_err();
    assert!(matches!(error, InitError::Usage(_)));
    let error = MprpcApplication::init(["--config".to_string()]).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("usage: <program> [-i <configfile>]")
    );
}

/// This step's own program: the binary named like the package, so this test
/// needs no change from one step to the next.
const PROGRAM: &str = env!(concat!("CARGO_BIN_EXE_", env!("CARGO_PKG_NAME")));

/// The real program: a bad file gives a message and exit status 1, never a
/// panic; with the default file it runs and exits 0.
#[test]
fn binary_exits_non_zero_with_a_clear_message() {
    let file =
        file_with(&GOOD.replace("rpcserverport = 8000", "rpcserverport = \"eight thousand\""));
    let output = Command::new(PROGRAM)
        .arg("-i")
        .arg(file.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("rpcserverport"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // A file name that is not UTF-8 is still just a file that does not exist.
    let not_utf8 = std::ffi::OsStr::from_bytes(b"/tmp/no-such-\xff.toml");
    let output = Command::new(PROGRAM)
        .arg("-i")
        .arg(not_utf8)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot read config file /tmp/no-such-"),
        "{stderr}"
    );

    // Run elsewhere: the program writes its log to logs/ in its directory.
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(PROGRAM)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
}
