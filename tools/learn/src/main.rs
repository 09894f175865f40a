//! Type-along mode for the book: the learner writes each step's new piece.
//!
//! ```text
//! cargo run -q -p learn -- list
//! cargo run -q -p learn -- start NN [--dir DIR] [--force]
//! cargo run -q -p learn -- check NN [--dir DIR]
//! cargo run -q -p learn -- solution NN [--dir DIR]
//! ```
//!
//! `start` writes step NN as a crate of its own with the functions the
//! chapter teaches replaced by `todo!(…)`; `check` runs the step's own tests
//! on it; `solution` shows the difference to the reference step.

mod holes;
mod layout;

use holes::{STEPS, Step};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output, Stdio};
use std::time::{Duration, Instant};

/// How long `check` waits for the build and the tests. A hole written so
/// that it never returns (a read loop waiting for bytes that never come)
/// would otherwise hang the check; the steps' tests take far less.
const CHECK_DEADLINE: Duration = Duration::from_secs(600);

/// Exit code of a wrong command line or an unknown step.
const USAGE_ERROR: u8 = 2;

/// The command line, parsed.
#[derive(Debug)]
struct Args {
    /// `list`, `start`, `check`, `solution` or the hidden `fill`.
    command: String,
    /// The step, for every command but `list`.
    step: Option<&'static Step>,
    /// `--dir DIR`, else `learn/NN-name` in the repository.
    dir: Option<PathBuf>,
    /// `--force`: `start` replaces an existing directory.
    force: bool,
    /// `--keep-hole FUNCTION`: `fill` leaves that one hole cut.
    keep_hole: Option<String>,
}

/// Why a command failed: the message and the exit code.
#[derive(Debug)]
struct Failure {
    /// What went wrong, for the learner.
    message: String,
    /// 1 for a failed check or I/O error, 2 for a wrong command line.
    code: u8,
}

impl Failure {
    /// A wrong command line (exit 2).
    fn usage(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            code: USAGE_ERROR,
        }
    }

    /// Anything else (exit 1).
    fn other(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            code: 1,
        }
    }
}

const USAGE: &str = "usage: learn list
       learn start NN [--dir DIR] [--force]   write step NN with holes to fill
       learn check NN [--dir DIR]             run step NN's tests on your code
       learn solution NN [--dir DIR]          show the reference code for the holes";

fn main() -> ExitCode {
    match parse(std::env::args().skip(1).collect()).and_then(|args| run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("learn: {}", failure.message);
            if failure.code == USAGE_ERROR {
                eprintln!("{USAGE}");
            }
            ExitCode::from(failure.code)
        }
    }
}

/// Reads the command line: a command, a step number, `--dir DIR`, `--force`.
fn parse(raw: Vec<String>) -> Result<Args, Failure> {
    let mut words = raw.into_iter();
    let command = words
        .next()
        .ok_or_else(|| Failure::usage("no command given"))?;
    let mut step = None;
    let mut dir = None;
    let mut force = false;
    let mut keep_hole = None;
    while let Some(word) = words.next() {
        match word.as_str() {
            "--dir" => {
                let value = words
                    .next()
                    .ok_or_else(|| Failure::usage("--dir needs a directory"))?;
                dir = Some(PathBuf::from(value));
            }
            "--force" => force = true,
            "--keep-hole" => {
                let value = words
                    .next()
                    .ok_or_else(|| Failure::usage("--keep-hole needs a function"))?;
                keep_hole = Some(value);
            }
            _ if step.is_none() && !word.starts_with('-') => {
                step = Some(holes::find(&word).ok_or_else(|| {
                    let known: Vec<_> = STEPS.iter().map(|s| s.number).collect();
                    Failure::usage(format!(
                        "unknown step {word:?}; the steps are {}",
                        known.join(", ")
                    ))
                })?);
            }
            _ => return Err(Failure::usage(format!("unexpected argument {word:?}"))),
        }
    }
    match command.as_str() {
        "list" => {}
        "start" | "check" | "solution" | "fill" if step.is_none() => {
            return Err(Failure::usage(format!("{command} needs a step number")));
        }
        "start" | "check" | "solution" | "fill" => {}
        _ => return Err(Failure::usage(format!("unknown command {command:?}"))),
    }
    Ok(Args {
        command,
        step,
        dir,
        force,
        keep_hole,
    })
}

/// Runs one parsed command.
fn run(args: &Args) -> Result<(), Failure> {
    let Some(step) = args.step else {
        list();
        return Ok(());
    };
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| layout::repo_root().join("learn").join(step.dir));
    match args.command.as_str() {
        "start" => start(step, &dir, args.force),
        "check" => check(step, &dir),
        "solution" => solution(step, &dir),
        // Hidden: copies the reference files into the holes, for the round
        // trip test (and for a learner who wants to compare runs); with
        // `--keep-hole FUNCTION`, into all holes but that one.
        _ => layout::fill(step, &dir, args.keep_hole.as_deref()).map_err(Failure::other),
    }
}

/// Prints every step and its holes.
fn list() {
    // Written, not `println!`ed: `learn list | head` closes the pipe early,
    // and that ends the listing instead of panicking.
    let mut out = std::io::stdout().lock();
    for step in STEPS {
        let mut text = format!("{}\n", step.dir);
        for hole in step.holes {
            text.push_str(&format!(
                "    {} {}: {}\n",
                hole.file, hole.function, hole.task
            ));
            text.push_str(&format!("        see book/src/{}\n", hole.section));
        }
        if out.write_all(text.as_bytes()).is_err() {
            return;
        }
    }
}

/// Writes the learner's crate for `step` into `dir`.
fn start(step: &Step, dir: &Path, force: bool) -> Result<(), Failure> {
    if dir.exists() && !force {
        return Err(Failure::other(format!(
            "{} already exists; check it, or pass --force to start again from scratch",
            dir.display()
        )));
    }
    layout::write_crate(step, dir, force).map_err(Failure::other)?;
    println!("wrote step {} to {}", step.number, dir.display());
    println!("fill in:");
    for hole in step.holes {
        println!("    {} {}", hole.file, hole.function);
    }
    println!(
        "then: cargo run -q -p learn -- check {}{}",
        step.number,
        dir_flag(step, dir)
    );
    Ok(())
}

/// ` --dir DIR` when `dir` is not the default, for the hints printed.
fn dir_flag(step: &Step, dir: &Path) -> String {
    if dir == layout::repo_root().join("learn").join(step.dir) {
        String::new()
    } else {
        format!(" --dir {}", dir.display())
    }
}

/// Runs the step's tests in `dir`; names failing tests and what to reread.
fn check(step: &Step, dir: &Path) -> Result<(), Failure> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(Failure::other(format!(
            "{} has no Cargo.toml; run `cargo run -q -p learn -- start {}{}` first",
            dir.display(),
            step.number,
            dir_flag(step, dir)
        )));
    }
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .args(["test", "--no-fail-fast", "--manifest-path"])
        .arg(&manifest)
        // One target directory for every learner crate: the dependencies
        // (tokio, prost, the ZooKeeper client) are built once, not twelve times.
        .env("CARGO_TARGET_DIR", layout::target_dir());
    let output = run_with_deadline(cargo, CHECK_DEADLINE)?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.success() {
        let passed = stdout
            .lines()
            .filter(|line| line.starts_with("test ") && line.ends_with(" ... ok"))
            .count();
        println!(
            "step {}: all tests pass ({passed} tests). Compare with the reference: \
             cargo run -q -p learn -- solution {}{}",
            step.number,
            step.number,
            dir_flag(step, dir)
        );
        return Ok(());
    }
    print!("{stdout}");
    eprint!("{stderr}");
    let failed: Vec<&str> = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("test ")?.strip_suffix(" ... FAILED"))
        .collect();
    let mut report = String::new();
    if failed.is_empty() {
        report.push_str(&format!(
            "step {}: the crate does not build or its tests did not run (see cargo's errors above)\n",
            step.number
        ));
    } else {
        report.push_str(&format!(
            "step {}: {} test(s) failed:\n",
            step.number,
            failed.len()
        ));
        for test in &failed {
            report.push_str(&format!("    {test}\n"));
        }
    }
    report.push_str("reread:\n");
    for hole in step.holes {
        report.push_str(&format!(
            "    book/src/{} ({} in {})\n",
            hole.section, hole.function, hole.file
        ));
    }
    Err(Failure::other(report.trim_end().to_string()))
}

/// Prints the difference from the learner's `src/` to the reference step's.
fn solution(step: &Step, dir: &Path) -> Result<(), Failure> {
    let ours = dir.join("src");
    if !ours.is_dir() {
        return Err(Failure::other(format!(
            "{} has no src/; run start first",
            dir.display()
        )));
    }
    let reference = layout::step_dir(step).join("src");
    let output = Command::new("diff")
        .arg("-ruN")
        // The book's `// ANCHOR:` markers (some inside a hole's body) are no
        // part of the code: a difference in them alone is not shown.
        .args(["-I", r"^\s*// ANCHOR"])
        .arg(&ours)
        .arg(&reference)
        .output()
        .map_err(|e| Failure::other(format!("cannot run diff: {e}")))?;
    // diff exits 0 for no difference, 1 for differences, 2 for trouble.
    match output.status.code() {
        Some(0) => {
            println!("no difference: your src/ is the reference");
            Ok(())
        }
        Some(1) => {
            print!("{}", String::from_utf8_lossy(&output.stdout));
            Ok(())
        }
        _ => Err(Failure::other(format!(
            "diff failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ))),
    }
}

/// Runs `command` to its end, its output captured, or kills it (and every
/// process it started: cargo, the test binaries, their children) once
/// `deadline` has passed.
fn run_with_deadline(mut command: Command, deadline: Duration) -> Result<Output, Failure> {
    use std::os::unix::process::CommandExt;
    let mut child = command
        // Its own process group, so the whole tree can be stopped at once.
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Failure::other(format!("cannot run cargo: {e}")))?;
    // Read both pipes while waiting: a full pipe would stop cargo.
    let stdout = child.stdout.take().map(read_all);
    let stderr = child.stderr.take().map(read_all);
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Ok(None) => {
                let group = format!("-{}", child.id());
                let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
                let _ = child.wait();
                return Err(Failure::other(format!(
                    "the tests did not finish within {} s and were stopped: a function \
                     that never returns, or a test waiting for an answer that never comes",
                    deadline.as_secs()
                )));
            }
            Err(e) => return Err(Failure::other(format!("cannot wait for cargo: {e}"))),
        }
    };
    let collect = |reader: Option<std::thread::JoinHandle<Vec<u8>>>| {
        reader.and_then(|r| r.join().ok()).unwrap_or_default()
    };
    Ok(Output {
        status,
        stdout: collect(stdout),
        stderr: collect(stderr),
    })
}

/// Reads a pipe to its end on a thread of its own.
fn read_all(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        // A read error ends the output early; what was read is still shown.
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}
