//! Runs `scripts/cluster.sh --smoke`: seven hosts in network namespaces
//! (three ZooKeeper, three providers, one caller), three faults under load.
//! About 30 s. Without root or `ip netns` the script says "skipped" and exits
//! 0; this test then passes only outside CI and when not root, and says so.

mod support;

use std::fs::{self, File};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::provider_process::{example_binary, send_signal};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A hang guard only: the smoke run takes about 30 s.
const BUDGET: Duration = Duration::from_secs(120);

/// From the script's summary line `fault N at ...: ..., F failed, last
/// failure X ms after the fault, ...`: (F, X), X = 0 for "none".
fn fault_figures(output: &str, n: usize) -> Option<(u64, u64)> {
    let line = output
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("fault {n} at")))?;
    let failed = line
        .split(", ")
        .find(|part| part.ends_with(" failed"))?
        .trim_end_matches(" failed")
        .parse()
        .ok()?;
    let last = match line.split("last failure ").nth(1)? {
        rest if rest.starts_with("none") => 0,
        rest => rest.split(' ').next()?.parse().ok()?,
    };
    Some((failed, last))
}

#[test]
fn cluster_script_smoke_run() -> TestResult {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/cluster.sh");
    let dir = tempfile::tempdir()?;
    let log_path = dir.path().join("cluster.out");
    let log = File::create(&log_path)?;
    let mut child = Command::new("bash")
        .arg(&script)
        .arg("--smoke")
        .env("MPRPC_CALLEE", example_binary("callee")?)
        .env("MPRPC_CLUSTER_LOAD", example_binary("cluster_load")?)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > BUDGET {
            // SIGTERM lets the script's trap remove what it made.
            let _ = send_signal(child.id(), "TERM");
            std::thread::sleep(Duration::from_secs(10));
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "cluster.sh --smoke ran longer than {BUDGET:?}:\n{}",
                fs::read_to_string(&log_path)?
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = fs::read_to_string(&log_path)?;
    eprintln!("{output}");
    if output.contains("cluster.sh: skipped") {
        // A skip is only acceptable where the script cannot run at all: not
        // as root, and not in CI (which runs as root). Anywhere else a skip
        // would hide a broken cluster behind a passing test.
        let uid = Command::new("id").arg("-u").output()?;
        let root = String::from_utf8_lossy(&uid.stdout).trim() == "0";
        if root || std::env::var_os("CI").is_some() {
            return Err("cluster.sh skipped although this run is root or CI".into());
        }
        eprintln!("SKIPPED: cluster.sh needs root; this test checked nothing");
        return Ok(());
    }
    assert!(status.success(), "cluster.sh failed with {status}");
    assert!(output.contains("healthy at the end"));
    // Nothing left behind: the namespaces carry the script's pid.
    let namespaces = Command::new("ip").args(["netns", "list"]).output()?;
    let prefix = format!("mprpc{}-", child.id());
    assert!(
        !String::from_utf8_lossy(&namespaces.stdout).contains(&prefix),
        "cluster.sh left namespaces {prefix}* behind"
    );

    let (_, last1) = fault_figures(&output, 1).ok_or("no figures for fault 1")?;
    let (_, last2) = fault_figures(&output, 2).ok_or("no figures for fault 2")?;
    let (failed3, _) = fault_figures(&output, 3).ok_or("no figures for fault 3")?;
    // 1: a killed process resets its connections: failures end at once.
    assert!(last1 < 1_000, "kill -9: calls failed until {last1} ms");
    // 2: a host gone silent is avoided after one missed deadline (1 s),
    // not after its ZooKeeper session (4 s) expires. Calls sent to it before
    // that first deadline still wait out their own: up to two deadlines.
    assert!(
        last2 < 2_500,
        "host off the network: failures until {last2} ms"
    );
    // 3: calls never touch ZooKeeper.
    assert_eq!(failed3, 0, "calls failed while ZooKeeper elected a leader");
    Ok(())
}
