//! The asynchronous logger, against real files in a temporary directory
//! (and, on Unix, a FIFO standing in for a disk that is stuck), in this
//! process and in a child process that exits.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::Duration;

use chrono::{Local, TimeZone};
use step::logger::{Level, Logger, log_file_name};

use support::log_file::{Line, log_files, parse, read_all, read_file};
use testkit::{Target, cargo_build};

/// Threads and calls per thread of the concurrency test.
const THREADS: usize = 8;
/// Calls per thread of the concurrency test.
const PER_THREAD: usize = 10_000;

/// The level thread `t` intends for its `seq`-th line: a mix of both.
fn intended(t: usize, seq: usize) -> Level {
    if (t + seq) % 3 == 0 {
        Level::Error
    } else {
        Level::Info
    }
}

/// Makes a FIFO at `path`. A writer opening it blocks until a reader opens
/// it: a disk that does not answer, under the test's control.
#[cfg(unix)]
fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// The timestamp is the time of the call: the writer is held up for 1.5 s
/// before it can write, and the line still shows the time of `log`.
#[cfg(unix)]
#[test]
fn timestamp_is_taken_when_logging_not_when_writing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let today = Local::now().date_naive();
    let path = tmp.path().join(log_file_name(today));
    mkfifo(&path);
    let logger = Logger::new(tmp.path());

    let before = Local::now();
    logger.log(Level::Info, "logged before the wait");
    let after = Local::now();
    if after.date_naive() != today {
        // Midnight passed: the line went to tomorrow's regular file.
        return;
    }
    // The writer is now blocked opening the FIFO.
    thread::sleep(Duration::from_millis(1500));
    let reader = {
        let path = path.clone();
        thread::spawn(move || fs::read_to_string(path))
    };
    assert!(logger.shutdown());
    let text = reader.join().expect("reader thread").expect("read fifo");

    let lines = parse(&text);
    assert_eq!(lines.len(), 1, "{text:?}");
    let written = lines[0].time;
    // The file keeps milliseconds, so allow `before` to be rounded down.
    assert!(written >= before.naive_local() - chrono::Duration::milliseconds(1));
    assert!(
        written <= after.naive_local(),
        "line says {written}, but log() returned at {after}"
    );
}

/// The file is chosen by each record's own date: records on both sides of
/// midnight land in two files, and going back to a day appends to its file.
#[test]
fn date_change_switches_to_a_new_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let logger = Logger::new(tmp.path());
    let at = |d, h, m, s| {
        Local
            .with_ymd_and_hms(2026, 11, d, h, m, s)
            .single()
            .expect("unambiguous local time")
    };
    logger.log_at(Level::Info, at(25, 23, 59, 59), "last of the 25th");
    logger.log_at(Level::Error, at(26, 0, 0, 0), "first of the 26th");
    // A late record from another thread, stamped just before midnight.
    logger.log_at(Level::Info, at(25, 23, 59, 59), "late for the 25th");
    assert!(logger.shutdown());

    assert_eq!(
        log_files(tmp.path()),
        ["2026-11-25-log.txt", "2026-11-26-log.txt"]
    );
    let day1 = read_file(&tmp.path().join("2026-11-25-log.txt"));
    let day2 = read_file(&tmp.path().join("2026-11-26-log.txt"));
    let messages =
        |lines: &[Line]| -> Vec<String> { lines.iter().map(|l| l.message.clone()).collect() };
    assert_eq!(messages(&day1), ["last of the 25th", "late for the 25th"]);
    assert_eq!(messages(&day2), ["first of the 26th"]);
    assert_eq!(day2[0].level, "ERROR");
    assert_eq!(day2[0].time.to_string(), "2026-11-26 00:00:00");
}

/// The exact line format, and a message cannot break a line in two.
#[test]
fn line_format_and_newlines_escaped() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let logger = Logger::new(tmp.path());
    let time = Local
        .with_ymd_and_hms(2026, 11, 25, 18, 5, 41)
        .single()
        .expect("unambiguous local time")
        + chrono::Duration::milliseconds(123);
    logger.log_at(Level::Info, time, "hello");
    logger.log_at(
        Level::Error,
        time,
        "forged\n2026-11-25 18:05:41.123 [INFO] ok\r",
    );
    assert!(logger.shutdown());
    let text = fs::read_to_string(tmp.path().join("2026-11-25-log.txt")).expect("read log file");
    assert_eq!(
        text,
        "2026-11-25 18:05:41.123 [INFO] hello\n\
         2026-11-25 18:05:41.123 [ERROR] forged\\n2026-11-25 18:05:41.123 [INFO] ok\\r\n"
    );
}

/// An owned logger going out of scope drains its queue first.
#[test]
fn dropping_a_logger_writes_everything() {
    let tmp = tempfile::tempdir().expect("tempdir");
    {
        let logger = Logger::new(tmp.path());
        for i in 0..5_000 {
            logger.log(Level::Info, format!("line {i}"));
        }
    }
    assert_eq!(read_all(tmp.path()).len(), 5_000);
}

/// `flush` returns once earlier records are in the file; the logger keeps
/// working afterwards.
#[test]
fn flush_makes_lines_visible_and_logging_continues() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let logger = Logger::new(tmp.path());
    logger.log(Level::Info, "one");
    assert!(logger.flush());
    assert_eq!(read_all(tmp.path()).len(), 1);
    logger.log(Level::Error, "two");
    assert!(logger.flush());
    let lines = read_all(tmp.path());
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1].level, "ERROR");
}

/// Runs the `log_lines` helper program (`examples/log_lines.rs`, built by
/// testkit): `threads` threads log `per_thread` lines each, then `main`
/// returns.
fn run_child(dir: &Path, threads: usize, per_thread: usize) -> std::process::Output {
    let program = cargo_build(env!("CARGO_PKG_NAME"), Target::Example("log_lines"))
        .expect("build examples/log_lines.rs");
    Command::new(program)
        .arg(dir)
        .arg(threads.to_string())
        .arg(per_thread.to_string())
        .output()
        .expect("run log_lines")
}

/// Lines the logger itself printed on stderr.
fn logger_complaints(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| l.starts_with("mprpc logger:"))
        .map(str::to_owned)
        .collect()
}

/// A real process: 8 threads log 10,000 lines each through the macros
/// and `main` returns (the course's shared level is the bug this catches). The guard drains the queue, so all 80,000 lines are
/// on disk when the process has exited, each with the level it was logged
/// with, each thread's lines in its order.
#[test]
fn child_process_loses_nothing_at_exit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("logs");
    let out = run_child(&dir, THREADS, PER_THREAD);
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = read_all(&dir);
    assert_eq!(lines.len(), THREADS * PER_THREAD);
    check_levels_and_order(&lines);
}

/// Every line is `t=<t> seq=<seq> want=<LEVEL>`, written at level `LEVEL`,
/// which is the level thread `t` meant for its `seq`-th line; and each
/// thread's lines appear in the order it logged them, none missing.
fn check_levels_and_order(lines: &[Line]) {
    let mut next_seq = [0usize; THREADS];
    for line in lines {
        let mut parts = line.message.split(' ');
        let (Some(t), Some(seq), Some(want), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            panic!("unexpected message {:?}", line.message);
        };
        let t: usize = t
            .strip_prefix("t=")
            .and_then(|v| v.parse().ok())
            .expect("t=");
        let seq: usize = seq
            .strip_prefix("seq=")
            .and_then(|v| v.parse().ok())
            .expect("seq=");
        let want = want.strip_prefix("want=").expect("want=");
        assert_eq!(line.level, want, "line {:?}", line.message);
        assert_eq!(want, intended(t, seq).as_str());
        assert_eq!(seq, next_seq[t], "thread {t}'s lines stay in order");
        next_seq[t] += 1;
    }
    assert_eq!(next_seq, [PER_THREAD; THREADS]);
}

/// In a real process, a full disk is reported once on stderr.
#[cfg(target_os = "linux")]
#[test]
fn child_process_reports_full_disk_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join(log_file_name(Local::now().date_naive()));
    std::os::unix::fs::symlink("/dev/full", &path).expect("symlink to /dev/full");
    let out = run_child(tmp.path(), 1, 20_000);
    assert!(out.status.success(), "{out:?}");
    let complaints = logger_complaints(&out.stderr);
    assert_eq!(complaints.len(), 1, "{complaints:?}");
    assert!(complaints[0].contains("No space left"), "{complaints:?}");
}
