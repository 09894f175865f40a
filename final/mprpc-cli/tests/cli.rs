//! The `mprpc` binary run as a user runs it, against real providers over
//! real TCP: the examples' KvStore (framed, with metadata and TLS, and its
//! schema from the provider's reflection service), step 07's, 08's and step
//! 12's providers in the course's format, and providers found
//! through a real ZooKeeper in both layouts. Every bad input ends with a
//! non-zero exit and one line on stderr.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mprpc::interceptor::ServerCall;
use mprpc::{MprpcConfig, RpcProvider, RunningProvider, StaticRegistry};
use mprpc_examples::kv::KvStoreServer;
use testkit::{ChildProcess, Target, TestPki, ZkServer};

/// What one run of the binary left.
#[derive(Debug)]
struct Run {
    /// The exit code.
    code: i32,
    /// Standard output.
    out: String,
    /// Standard error.
    err: String,
}

/// Runs `mprpc args…` in the repository's root (so `proto/…` paths work).
fn mprpc(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_mprpc"))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("running mprpc: {e}"));
    Run {
        code: output.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&output.stdout).into_owned(),
        err: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// [`mprpc`] from async code, off the runtime's threads (the providers the
/// binary calls run on them).
async fn mprpc_async(args: Vec<String>) -> Run {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        mprpc(&args)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Owned arguments.
fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The repository's root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A capture of `proto/captures/`, as its hex text.
fn capture(name: &str) -> String {
    testkit::to_hex(&testkit::capture(name))
}

/// "zhang san" / "123456" as protobuf JSON (bytes are base64).
const LOGIN: &str = r#"{"name": "emhhbmcgc2Fu", "pwd": "MTIzNDU2"}"#;

/// The course's user.proto, relative to the repository.
const USER_PROTO: &str = "proto/user.proto";

/// The examples' kv.proto, relative to the repository.
const KV_PROTO: &str = "final/examples/proto/kv.proto";

/// Fails unless the run failed with `code` and said why on one line.
fn assert_refused(run: &Run, code: i32, words: &str) {
    assert_eq!(run.code, code, "{run:?}");
    assert_eq!(run.err.lines().count(), 1, "not one line: {run:?}");
    assert!(run.err.starts_with("mprpc: "), "{run:?}");
    assert!(run.err.contains(words), "{words:?} missing: {run:?}");
}

#[test]
fn the_course_login_dumps_as_its_capture() {
    let from_json = mprpc(&[
        "dump",
        "--course",
        "UserServiceRpc/Login",
        LOGIN,
        "--proto",
        USER_PROTO,
        "--raw",
    ]);
    assert_eq!(from_json.code, 0, "{from_json:?}");
    assert_eq!(from_json.out.trim(), capture("request"));
    // The arguments as hex (the capture's last 19 bytes) give the same bytes.
    let expected = capture("request");
    let args_hex = &expected[expected.len() - 38..];
    let raw = mprpc(&[
        "dump",
        "--course",
        "UserServiceRpc/Login",
        "--args-hex",
        args_hex,
        "--raw",
    ]);
    assert_eq!(raw.out.trim(), expected, "{raw:?}");
    let annotated = mprpc(&[
        "dump",
        "--course",
        "UserServiceRpc/Login",
        LOGIN,
        "--proto",
        USER_PROTO,
    ]);
    for row in [
        "header_size = 25, little-endian",
        "args_size = 19",
        "\"UserServiceRpc\"",
        "\"zhang san\"",
    ] {
        assert!(
            annotated.out.contains(row),
            "{row:?} missing:\n{}",
            annotated.out
        );
    }
}

#[test]
fn the_framed_dump_is_the_wire_format_chapters_worked_example() {
    // The chapter's "A login call, byte by byte": preamble, then the frame.
    let chapter = std::fs::read_to_string(repo().join("book/src/reference/wire-formats.md"))
        .unwrap_or_else(|e| panic!("{e}"));
    let section = chapter
        .split("### A login call, byte by byte")
        .nth(1)
        .unwrap_or_else(|| panic!("the chapter has no worked example"));
    let frame: String = section
        .split("```text")
        .nth(1)
        .and_then(|block| block.split("```").next())
        .unwrap_or_else(|| panic!("no byte block"))
        .split_whitespace()
        .collect();
    let run = mprpc(&[
        "dump",
        "UserServiceRpc/Login",
        LOGIN,
        "--proto",
        USER_PROTO,
        "--timeout",
        "5s",
        "--raw",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    // Flags 03: metadata and streams.
    assert_eq!(run.out.trim(), format!("4d50524301030000{frame}"));
}

/// A config for a provider on 127.0.0.1, on a port the system picks.
fn any_port_config() -> MprpcConfig {
    let mut config = MprpcConfig::default();
    config.rpcserverport = 0;
    config
}

/// An interceptor: a check each call passes first.
type Guard = fn(&mut ServerCall) -> Result<(), mprpc::Status>;

/// A KvStore provider started with `config`, with no registry; `guard`
/// runs on every call first (none: every call is let through).
async fn kv_serve(config: MprpcConfig, guard: Option<Guard>) -> RunningProvider {
    let mut provider = RpcProvider::new(config).with_registry(Arc::new(StaticRegistry::default()));
    provider.notify_service(KvStoreServer::new(mprpc_examples::KvStoreService::default()));
    if let Some(guard) = guard {
        provider.add_interceptor(guard);
    }
    provider
        .start()
        .await
        .unwrap_or_else(|e| panic!("provider: {e}"))
}

/// A KvStore provider on 127.0.0.1 (optionally with `tls`: cert, key) that
/// refuses calls without `authorization: Bearer s3cret` and answers with
/// `served-by: kv` metadata.
async fn kv_provider(tls: Option<(PathBuf, PathBuf)>) -> RunningProvider {
    let mut config = any_port_config();
    if let Some((cert, key)) = tls {
        config.tls.cert = Some(cert);
        config.tls.key = Some(key);
    }
    kv_serve(
        config,
        Some(|call: &mut ServerCall| {
            if call.metadata.get("authorization") != Some("Bearer s3cret") {
                return Err(mprpc::Status::new(
                    mprpc::ErrorCode::Unauthenticated,
                    "no valid token",
                ));
            }
            call.response_metadata.insert("served-by", "kv")
        }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_calls_carry_metadata_both_ways_and_statuses_become_exit_codes() {
    let p = kv_provider(None).await;
    let addr = p.local_addr().to_string();
    let token = "authorization:Bearer s3cret";
    let put = mprpc_async(args(&[
        "call",
        &addr,
        "kv.KvStore/Put",
        r#"{"key": "k", "value": "dg=="}"#,
        "--proto",
        KV_PROTO,
        "-H",
        token,
    ]))
    .await;
    assert_eq!(put.code, 0, "{put:?}");
    let get = mprpc_async(args(&[
        "call",
        &addr,
        "KvStore/Get",
        r#"{"key": "k"}"#,
        "--proto",
        KV_PROTO,
        "-H",
        token,
        "-v",
    ]))
    .await;
    assert_eq!(get.code, 0, "{get:?}");
    let json: serde_json::Value =
        serde_json::from_str(&get.out).unwrap_or_else(|e| panic!("{e}: {get:?}"));
    assert_eq!(json["found"], true, "{get:?}");
    assert_eq!(json["value"], "dg==", "{get:?}");
    assert!(
        get.err.contains("> authorization: Bearer s3cret"),
        "{get:?}"
    );
    assert!(get.err.contains("< served-by: kv"), "{get:?}");
    // The provider's status: exit code 8 (unauthenticated), its text on stderr.
    let refused = mprpc_async(args(&[
        "call",
        &addr,
        "kv.KvStore/Get",
        r#"{"key": "k"}"#,
        "--proto",
        KV_PROTO,
    ]))
    .await;
    assert_refused(&refused, 8, "unauthenticated: no valid token");
    // The same call's bytes, both ways, with the metadata block.
    let dump = mprpc_async(args(&[
        "call",
        &addr,
        "kv.KvStore/Get",
        r#"{"key": "k"}"#,
        "--proto",
        KV_PROTO,
        "-H",
        token,
        "--dump",
    ]))
    .await;
    assert_eq!(dump.code, 0, "{dump:?}");
    for row in [
        "request with metadata",
        "\"authorization\"",
        "response with metadata",
        "\"served-by\"",
        "found = 1",
    ] {
        assert!(dump.out.contains(row), "{row:?} missing:\n{}", dump.out);
    }
    // Load, briefly: figures and the honest label.
    let bench = mprpc_async(args(&[
        "bench",
        &addr,
        "kv.KvStore/Get",
        r#"{"key": "k"}"#,
        "--proto",
        KV_PROTO,
        "-H",
        token,
        "-c",
        "4",
        "-d",
        "1s",
    ]))
    .await;
    assert_eq!(bench.code, 0, "{bench:?}");
    assert!(
        bench.out.contains("calls/s")
            && bench.out.contains("p999")
            && bench.out.contains("client-side"),
        "{bench:?}"
    );
    assert!(!bench.out.starts_with("0 calls"), "{bench:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_calls_go_over_tls() {
    let pki = TestPki::new().unwrap_or_else(|e| panic!("{e}"));
    let p = kv_provider(Some((pki.path("provider.pem"), pki.path("provider.key")))).await;
    let addr = format!("localhost:{}", p.local_addr().port());
    let ca = pki.path("ca.pem").display().to_string();
    let token = "authorization:Bearer s3cret";
    let ok = mprpc_async(args(&[
        "call",
        &addr,
        "kv.KvStore/Get",
        "{}",
        "--proto",
        KV_PROTO,
        "-H",
        token,
        "--tls-ca",
        &ca,
    ]))
    .await;
    assert_eq!(ok.code, 0, "{ok:?}");
    assert!(ok.out.contains("\"found\": false"), "{ok:?}");
    // Without the CA the provider's certificate is not trusted.
    let plain = mprpc_async(args(&[
        "call",
        &addr,
        "kv.KvStore/Get",
        "{}",
        "--proto",
        KV_PROTO,
        "-H",
        token,
        "--timeout",
        "2s",
    ]))
    .await;
    assert_ne!(plain.code, 0, "{plain:?}");
    assert_eq!(plain.err.lines().count(), 1, "{plain:?}");
}

/// Writes `config` to a fresh directory and starts `binary` of `package`
/// with `-i mprpc.toml`, waiting (at most 60 s) until `port` accepts
/// connections — not for a line of its output, which the steps' demos may
/// word differently from one version of the book to the next.
fn start_step(package: &str, binary: &str, config: &str, port: u16) -> ChildProcess {
    let exe = testkit::cargo_build(package, Target::Bin(binary)).unwrap_or_else(|e| panic!("{e}"));
    let dir = ChildProcess::workdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("mprpc.toml"), config).unwrap_or_else(|e| panic!("{e}"));
    let mut child = ChildProcess::spawn(&exe, &["-i", "mprpc.toml"], dir, |_| {})
        .unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{package} {binary} exited with {status}:\n{}",
                child.output()
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{package} {binary} not listening after 60 s:\n{}",
            child.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

#[test]
fn step_08s_provider_answers_in_the_course_format() {
    let port = testkit::free_port().unwrap_or_else(|e| panic!("{e}"));
    // Step 08 reads the course's four keys; ZooKeeper is not used until 11.
    let config = format!(
        "rpcserverip = \"127.0.0.1\"\nrpcserverport = {port}\nzookeeperip = \"127.0.0.1\"\nzookeeperport = 2181\n"
    );
    let _callee = start_step("step-08", "callee", &config, port);
    let addr = format!("course://127.0.0.1:{port}");
    let run = mprpc(&[
        "call",
        &addr,
        "UserServiceRpc/Login",
        LOGIN,
        "--proto",
        USER_PROTO,
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.out.contains("\"success\""), "{run:?}");
    // --course on a plain address is the same; --dump shows both directions.
    let dump = mprpc(&[
        "call",
        "--course",
        &format!("127.0.0.1:{port}"),
        "UserServiceRpc/Login",
        LOGIN,
        "--proto",
        USER_PROTO,
        "--dump",
    ]);
    assert_eq!(dump.code, 0, "{dump:?}");
    assert!(
        dump.out
            .contains(&format!("> 48 bytes to 127.0.0.1:{port}")),
        "{dump:?}"
    );
    assert!(dump.out.contains("header_size = 25"), "{dump:?}");
}

#[test]
fn providers_are_found_through_zookeeper_in_both_layouts() {
    let zk = ZkServer::start().unwrap_or_else(|e| panic!("{e}"));
    let zk_addr = format!("zk://{}", zk.addr());
    // The course's layout: step 12's callee registers /UserServiceRpc/Login.
    let port = testkit::free_port().unwrap_or_else(|e| panic!("{e}"));
    let config = format!(
        "rpcserverip = \"127.0.0.1\"\nrpcserverport = {port}\nzookeeperip = \"127.0.0.1\"\nzookeeperport = {}\n",
        zk.port()
    );
    let _step12 = start_step("step-12", "callee", &config, port);
    // mprpc's layout: a final/ KvStore provider registered under /mprpc.
    let runtime = testkit::runtime().unwrap_or_else(|e| panic!("{e}"));
    let kv = runtime.block_on(async {
        let mut config = MprpcConfig::default();
        config.rpcserverport = 0;
        config.zookeeperip = Some(zk.addr());
        let mut provider = RpcProvider::new(config);
        provider.notify_service(KvStoreServer::new(mprpc_examples::KvStoreService::default()));
        provider
            .start()
            .await
            .unwrap_or_else(|e| panic!("provider: {e}"))
    });
    let kv_addr = kv.local_addr().to_string();
    // Step 12 registers after it listens: wait (bounded) for its node.
    let started = Instant::now();
    let course_addr = format!("127.0.0.1:{port}");
    while !mprpc(&["providers", &zk_addr, "UserServiceRpc"])
        .out
        .contains(&course_addr)
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "step 12 never registered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let login = mprpc(&[
        "call",
        &zk_addr,
        "UserServiceRpc/Login",
        LOGIN,
        "--proto",
        USER_PROTO,
    ]);
    assert_eq!(login.code, 0, "{login:?}");
    let get = mprpc(&[
        "call",
        &zk_addr,
        "kv.KvStore/Get",
        r#"{"key": "x"}"#,
        "--proto",
        KV_PROTO,
    ]);
    assert_eq!(get.code, 0, "{get:?}");
    let table = mprpc(&["providers", &zk_addr]);
    assert_eq!(table.code, 0, "{table:?}");
    let row = |layout: &str, service: &str, addr: &str| {
        table.out.lines().any(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.first() == Some(&layout)
                && cols.get(1) == Some(&service)
                && cols.contains(&addr)
                && l.contains("0x")
        })
    };
    assert!(row("mprpc", "kv.KvStore", &kv_addr), "{}", table.out);
    assert!(
        row("course", "UserServiceRpc", &format!("127.0.0.1:{port}")),
        "{}",
        table.out
    );
    let only = mprpc(&["providers", &zk_addr, "KvStore"]);
    assert!(
        only.out.contains("kv.KvStore") && !only.out.contains("UserServiceRpc"),
        "{only:?}"
    );
    let _ = runtime.block_on(kv.shutdown());
}

#[test]
fn describe_and_list_read_the_proto() {
    let list = mprpc(&["list", "127.0.0.1:1", "--proto", KV_PROTO]);
    assert_eq!(list.code, 0, "{list:?}");
    assert!(list.out.contains("kv.KvStore/Delete"), "{list:?}");
    let service = mprpc(&["describe", "127.0.0.1:1", "KvStore", "--proto", KV_PROTO]);
    assert!(
        service
            .out
            .contains("rpc Put(kv.PutRequest) returns (kv.PutResponse);"),
        "{service:?}"
    );
    assert!(
        service
            .out
            .contains("rpc Watch(kv.WatchRequest) returns (stream kv.WatchEvent);"),
        "{service:?}"
    );
    assert!(
        service
            .out
            .contains("message kv.PutResponse {\n  bytes previous = 1;"),
        "{service:?}"
    );
    let method = mprpc(&[
        "describe",
        "127.0.0.1:1",
        "fixbug.UserServiceRpc/Login",
        "--proto",
        USER_PROTO,
    ]);
    assert!(
        method.out.contains("message fixbug.ResultCode"),
        "{method:?}"
    );
}

#[test]
fn bad_input_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let bad = dir.path().join("bad.proto");
    std::fs::write(&bad, "syntax = \"proto3\";\nmessage {\n").unwrap_or_else(|e| panic!("{e}"));
    let bad = bad.display().to_string();
    let free = format!(
        "127.0.0.1:{}",
        testkit::free_port().unwrap_or_else(|e| panic!("{e}"))
    );
    let no_zk = format!("zk://{free}");
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec![
                "call",
                &free,
                "KvStore/Get",
                r#"{"kee": "x"}"#,
                "--proto",
                KV_PROTO,
            ],
            64,
            "unrecognized field name 'kee'",
        ),
        (
            vec![
                "call",
                &free,
                "KvStore/Get",
                r#"{"key": 5}"#,
                "--proto",
                KV_PROTO,
            ],
            64,
            "not a valid kv.GetRequest",
        ),
        (
            vec!["call", &free, "KvStore/Fetch", "{}", "--proto", KV_PROTO],
            64,
            "has no method \"Fetch\"",
        ),
        (
            vec!["call", &free, "Nope/Get", "{}", "--proto", KV_PROTO],
            64,
            "unknown service",
        ),
        (
            vec!["call", &free, "A/B", "{}", "--proto", &bad],
            64,
            "bad.proto:2:",
        ),
        // No --proto: the provider's reflection is asked, and nobody answers.
        (vec!["call", &free, "KvStore/Get", "{}"], 100, "--proto"),
        (
            vec!["call", "nowhere", "KvStore/Get", "{}", "--proto", KV_PROTO],
            64,
            "not host:port",
        ),
        (
            vec![
                "call",
                "http://x:1",
                "KvStore/Get",
                "{}",
                "--proto",
                KV_PROTO,
            ],
            64,
            "unknown scheme",
        ),
        (
            vec![
                "call",
                &free,
                "KvStore/Get",
                "{}",
                "--proto",
                KV_PROTO,
                "-H",
                "Bad Key:v",
            ],
            64,
            "metadata key",
        ),
        (
            vec![
                "call",
                &free,
                "KvStore/Get",
                "{}",
                "--proto",
                KV_PROTO,
                "--timeout",
                "2s",
            ],
            100,
            "transport error",
        ),
        (
            vec![
                "dump",
                "--course",
                "UserServiceRpc/Login",
                "--args-hex",
                "0g",
            ],
            64,
            "not a hex byte",
        ),
        (vec!["providers", &free], 64, "zk://"),
        // No ZooKeeper there: refused within the call's deadline, not the
        // minute a provider would keep retrying.
        (
            vec![
                "call",
                &no_zk,
                "KvStore/Get",
                "{}",
                "--proto",
                KV_PROTO,
                "--timeout",
                "2s",
            ],
            64,
            "ZooKeeper",
        ),
    ];
    for (argv, code, words) in cases {
        let started = Instant::now();
        let run = mprpc(&argv);
        assert_refused(&run, code, words);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{argv:?} took {:?}",
            started.elapsed()
        );
    }
}

/// A KvStore provider on 127.0.0.1 without interceptors, its reflection
/// service on or off.
async fn kv_reflecting(reflection: bool) -> RunningProvider {
    let mut config = any_port_config();
    config.reflection.enabled = reflection;
    kv_serve(config, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_gives_the_schema_the_proto_gives() {
    let p = kv_reflecting(true).await;
    let addr = p.local_addr().to_string();
    // Every view of the schema, from the file and from the provider.
    for view in [
        vec!["list", &addr],
        vec!["describe", &addr, "kv.KvStore"],
        vec!["describe", &addr, "KvStore/Put"],
        vec!["describe", &addr, "kv.GetResponse"],
    ] {
        let mut with_proto = view.clone();
        with_proto.extend(["--proto", KV_PROTO]);
        let from_file = mprpc_async(args(&with_proto)).await;
        let from_provider = mprpc_async(args(&view)).await;
        assert_eq!(from_file.code, 0, "{from_file:?}");
        assert_eq!(from_provider.code, 0, "{from_provider:?}");
        assert!(from_file.out.contains("kv."), "{from_file:?}");
        assert_eq!(from_provider.out, from_file.out, "{view:?}");
    }
    // A call without --proto: the request is encoded and the response
    // decoded with the provider's own schema.
    let put = mprpc_async(args(&[
        "call",
        &addr,
        "kv.KvStore/Put",
        r#"{"key": "k", "value": "dg=="}"#,
    ]))
    .await;
    assert_eq!(put.code, 0, "{put:?}");
    let get = mprpc_async(args(&["call", &addr, "KvStore/Get", r#"{"key": "k"}"#])).await;
    assert_eq!(get.code, 0, "{get:?}");
    assert!(
        get.out.contains("\"found\": true") && get.out.contains("\"value\": \"dg==\""),
        "{get:?}"
    );
    // The schema still refuses what it does not define.
    let bad = mprpc_async(args(&["call", &addr, "KvStore/Get", r#"{"kee": "k"}"#])).await;
    assert_refused(&bad, 64, "unrecognized field name 'kee'");
    let _ = p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_reflection_the_tool_says_to_pass_the_proto() {
    let p = kv_reflecting(false).await;
    let addr = p.local_addr().to_string();
    let why =
        "the provider does not serve reflection; pass --proto or set [reflection] enabled = true";
    for argv in [
        vec!["list", &addr],
        vec!["describe", &addr, "kv.KvStore"],
        vec!["call", &addr, "kv.KvStore/Get", "{}"],
    ] {
        let run = mprpc_async(args(&argv)).await;
        // 1: the provider's UnknownService, as for any service it lacks.
        assert_refused(&run, 1, why);
    }
    // Reflection is asked of one provider in mprpc's format only.
    let course = mprpc_async(args(&["list", &format!("course://{addr}")])).await;
    assert_refused(&course, 64, "--proto");
    let zk = mprpc_async(args(&["list", &format!("zk://{addr}")])).await;
    assert_refused(&zk, 64, "host:port");
    let _ = p.shutdown().await;
}

#[test]
fn step_07s_provider_answers_the_course_login() {
    // Step 07 has no provider binary (its main plays the caller by hand):
    // its library's provider runs here, on a port the system picks.
    let config = step::config::MprpcConfig {
        rpcserverip: std::net::Ipv4Addr::LOCALHOST.into(),
        rpcserverport: 0,
        zookeeperip: "127.0.0.1".into(),
        zookeeperport: 2181,
    };
    let mut provider = step::provider::RpcProvider::new(&config);
    provider
        .notify_service(step::fixbug::UserServiceRpcServer(
            step::user_service::UserService::default(),
        ))
        .unwrap_or_else(|e| panic!("{e}"));
    let handle = provider
        .start("127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("step 07's provider: {e}"));
    let addr = handle.local_addr().to_string();
    // Step 07's UserService starts with no users: Login fails until
    // Register has run, on the same provider.
    let course = |method: &str, json: &str| {
        mprpc(&[
            "call", "--course", &addr, method, json, "--proto", USER_PROTO,
        ])
    };
    let pwd_888888 = r#"{"name": "emhhbmcgc2Fu", "pwd": "ODg4ODg4"}"#;
    let before = course("UserServiceRpc/Login", pwd_888888);
    assert_eq!(before.code, 0, "{before:?}");
    assert!(before.out.contains("\"success\": false"), "{before:?}");
    let register = course(
        "UserServiceRpc/Register",
        r#"{"id": 4099, "name": "emhhbmcgc2Fu", "pwd": "ODg4ODg4"}"#,
    );
    assert_eq!(register.code, 0, "{register:?}");
    assert!(register.out.contains("\"success\": true"), "{register:?}");
    let after = course("UserServiceRpc/Login", pwd_888888);
    assert!(after.out.contains("\"success\": true"), "{after:?}");
    // --dump shows the 25-byte header the course sends, both directions.
    let dump = mprpc(&[
        "call",
        "--course",
        &addr,
        "UserServiceRpc/Login",
        LOGIN,
        "--proto",
        USER_PROTO,
        "--dump",
    ]);
    assert_eq!(dump.code, 0, "{dump:?}");
    assert!(dump.out.contains("header_size = 25"), "{dump:?}");
    assert!(
        dump.out.contains(&format!("> 48 bytes to {addr}")),
        "{dump:?}"
    );
    handle.shutdown();
}
