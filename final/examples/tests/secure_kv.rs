//! The commands of the book's TLS, interceptor, tracing and metrics
//! chapters, run as the reader runs them: `make_certs`, then `kv_server`
//! with `kv-secure.toml`, `--tokens` and `--trace`, then `kv_client` with
//! and without `KV_TOKEN`, then a scrape of `/metrics` — real processes,
//! real TLS, the committed config and token file (ports moved to free
//! ones).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use testkit::{ChildProcess, Target};

/// The repository's `final/examples` directory.
fn examples_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `kv_client` in `dir` with `args`; (success, stdout + stderr).
fn kv_client(exe: &Path, dir: &Path, token: Option<&str>, args: &[&str]) -> (bool, String) {
    let mut command = Command::new(exe);
    command
        .current_dir(dir)
        .args(["-i", "kv-secure.toml"])
        .args(args);
    match token {
        Some(t) => command.env("KV_TOKEN", t),
        None => command.env_remove("KV_TOKEN"),
    };
    match command.output() {
        Ok(out) => (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ),
        Err(e) => panic!("running kv_client: {e}"),
    }
}

/// `GET /metrics` on `port`, by hand.
fn scrape(port: u16) -> String {
    use std::io::{Read, Write};
    let mut s = match std::net::TcpStream::connect(("127.0.0.1", port)) {
        Ok(s) => s,
        Err(e) => panic!("admin endpoint: {e}"),
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text
}

#[test]
fn the_secure_kv_store_runs_as_the_book_says() {
    let build = |name| {
        testkit::cargo_build("mprpc-examples", Target::Example(name))
            .unwrap_or_else(|e| panic!("building {name}: {e}"))
    };
    let (make_certs, server, client) =
        (build("make_certs"), build("kv_server"), build("kv_client"));
    let dir = ChildProcess::workdir().unwrap_or_else(|e| panic!("{e}"));
    let ok = Command::new(&make_certs)
        .current_dir(dir.path())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "make_certs failed");
    let port = testkit::free_port().unwrap_or_else(|e| panic!("{e}"));
    let admin = testkit::free_port().unwrap_or_else(|e| panic!("{e}"));
    let config = std::fs::read_to_string(examples_dir().join("kv-secure.toml"))
        .unwrap_or_else(|e| panic!("{e}"))
        .replace("127.0.0.1:8003", &format!("127.0.0.1:{port}"))
        .replace("rpcserverport = 8003", &format!("rpcserverport = {port}"))
        .replace("127.0.0.1:9464", &format!("127.0.0.1:{admin}"));
    assert!(config.contains(&port.to_string()) && config.contains(&admin.to_string()));
    let write = |name: &str, text: &str| {
        std::fs::write(dir.path().join(name), text).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    write("kv-secure.toml", &config);
    let tokens = std::fs::read_to_string(examples_dir().join("kv-tokens.example"))
        .unwrap_or_else(|e| panic!("{e}"));
    write("kv-tokens.example", &tokens);
    let token = tokens
        .lines()
        .find(|l| l.starts_with("alice "))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("no token for alice"))
        .to_string();
    let workdir = dir.path().to_path_buf();
    let args = [
        "-i",
        "kv-secure.toml",
        "--tokens",
        "kv-tokens.example",
        "--trace",
    ];
    let mut provider = ChildProcess::spawn(&server, &args, dir, |_| {})
        .unwrap_or_else(|e| panic!("starting kv_server: {e}"));
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", admin)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "kv_server did not start:\n{}",
            provider.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (ok, out) = kv_client(
        &client,
        &workdir,
        Some(&token),
        &["put", "greeting", "hello"],
    );
    assert!(ok && out.contains("greeting set"), "{out}");
    let (ok, out) = kv_client(&client, &workdir, Some(&token), &["get", "greeting"]);
    assert!(ok && out.contains("greeting = hello"), "{out}");
    let (ok, out) = kv_client(&client, &workdir, None, &["get", "greeting"]);
    assert!(!ok && out.contains("unauthenticated"), "{out}");
    let (ok, out) = kv_client(&client, &workdir, Some("wrong"), &["get", "greeting"]);
    assert!(
        !ok && out.contains("unknown bearer token") && !out.contains("greeting ="),
        "{out}"
    );
    let metrics = scrape(admin);
    assert!(metrics.starts_with("HTTP/1.1 200 OK"), "{metrics}");
    for line in [
        r#"mprpc_server_calls_total{service="kv.KvStore",method="Put"} 1"#,
        r#"mprpc_server_calls_total{service="kv.KvStore",method="Get"} 3"#,
        r#"mprpc_server_errors_total{service="kv.KvStore",method="Get",code="unauthenticated"} 2"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line}:\n{metrics}"
        );
    }
    // --trace: every call's span closes on stderr with its fields.
    provider
        .wait_for(
            r#"rpc.server{service="kv.KvStore" method="Put""#,
            Duration::from_secs(5),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let output = provider.output();
    assert!(output.contains("status=\"unauthenticated\""), "{output}");
    // `watch`: the key's state (revision 1, the put above) over TLS with
    // the token, then the end of the time asked for.
    let (ok, out) = kv_client(
        &client,
        &workdir,
        Some(&token),
        &["watch", "greeting", "--for-secs", "1"],
    );
    assert!(ok && out.contains("1 greeting = hello"), "{out}");
    let _ = provider.kill();
}
