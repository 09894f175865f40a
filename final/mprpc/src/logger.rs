//! An asynchronous file logger: callers put records on a queue, one
//! background thread takes them off and writes them to
//! `logs/YYYY-MM-DD-log.txt`.
//!
//! This is the course's logger (`RpcProvider` → queue → writer thread → disk),
//! with three of its mistakes fixed:
//!
//! * every record carries its **own level**; the course kept the level in a
//!   field shared by all callers and read it later on the writer thread, so a
//!   line could come out with the level of whoever logged last;
//! * the **timestamp is taken by the caller**, when the record is made; the
//!   course read the clock on the writer thread, after the record had waited
//!   in the queue;
//! * **nothing queued is lost at exit**: [`Logger::flush`], [`Logger::shutdown`],
//!   `Drop` for an owned [`Logger`] and the [`LogGuard`] returned by
//!   [`Logger::init`] wait until the writer has handed every queued line to
//!   the operating system.
//!
//! Why a queue and a thread at all: writing a file can take milliseconds
//! (a slow disk, a full page cache), and an RPC worker that waits for that is
//! not answering requests. Putting a record on a queue is a memory operation;
//! the disk I/O happens on a thread nobody waits for.
//!
//! In `final/` the logger sits behind the `log` facade: [`Logger`]
//! implements [`log::Log`], so the framework and applications log with
//! `log::info!`, `log::warn!`, … and this module decides where lines go.
//! The step crates' own `log_info!`/`log_error!` macros are not needed here.
//! Lines at `WARN` and `ERROR` are also echoed to stderr at once, so an
//! operator watching the console sees problems without tailing the file.
//!
//! A real project would not write this module. It would hand the lines to
//! `tracing-appender`, whose non-blocking writer is this same design (a
//! bounded channel, one worker thread, a `WorkerGuard` that flushes on drop)
//! and whose rolling appender does the daily files.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use chrono::{DateTime, Local, NaiveDate};
use crossbeam_channel::{Receiver, RecvTimeoutError, SendTimeoutError, Sender, TrySendError};

/// Directory the global logger writes to when nobody called [`Logger::init`]:
/// `logs` under the current directory, as in the course.
pub const DEFAULT_DIR: &str = "logs";

/// How many records may wait in the queue before new ones are dropped.
///
/// 65,536 records of ~100 bytes is a few megabytes: room for a long burst,
/// while a disk that stopped answering cannot make the process grow forever.
pub const DEFAULT_CAPACITY: usize = 65_536;

/// How long [`Logger::flush`], [`Logger::shutdown`] and the guards wait for a
/// writer that makes **no progress at all** before giving up, so a hung disk
/// cannot hang the program's exit.
///
/// The clock restarts with every record the writer takes up: a writer that is
/// merely slow (a busy machine, a debug build) is waited for, however long
/// the queue it has to get through. That wait is bounded, since a flush only
/// waits for what was queued before it, at most the queue's capacity.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a waiting flush looks at the writer's progress.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

// ANCHOR: record
/// How serious a record is: the `log` facade's five levels.
pub use log::Level;

/// One log line, complete before it enters the queue.
///
/// Level and time are fields of the record, fixed by the caller. Nothing the
/// writer thread prints comes from shared state that another caller could
/// have changed in the meantime.
#[derive(Debug)]
struct Record {
    /// The level the caller asked for.
    level: Level,
    /// When the caller logged, not when the line reached the disk.
    time: DateTime<Local>,
    /// Where it came from (the `log` target, usually the module path).
    target: String,
    /// The formatted message, without the trailing newline.
    message: String,
}
// ANCHOR_END: record

// ANCHOR: queue
/// What travels from the callers to the writer thread.
#[derive(Debug)]
enum Command {
    /// A line to write.
    Record(Record),
    /// "Write out everything queued before me, then tell me on this channel."
    Flush(Sender<()>),
    /// Like `Flush`, and then the writer thread ends.
    Shutdown(Sender<()>),
}

/// An asynchronous logger: a bounded queue and one writer thread that owns
/// the file.
///
/// `Logger` is `Sync`: share it by reference (or in an `Arc`) between all the
/// threads that log. Most code uses the process-wide logger through the
/// `log` macros (`log::info!`, …) after [`Logger::init`]; tests make their
/// own instance with [`Logger::new`].
///
/// The queue is a `crossbeam-channel` bounded channel. Sending is a few
/// atomic operations on a ring buffer: callers never take a mutex, so the
/// RPC worker threads do not queue up behind each other to log (the course's
/// reason for wanting a lock-free queue). A lock is only touched to wake the
/// writer when it was asleep on an empty queue.
///
/// When the queue is full, [`Logger::log`] drops the new record and counts
/// it instead of waiting: logging must never stall a request because the
/// disk is slow. The writer reports the count as an `ERROR` line once it has
/// caught up. (`tracing-appender` makes the same choice by default.)
#[derive(Debug)]
pub struct Logger {
    /// Sending side of the queue; the writer thread holds the receiving side.
    tx: Sender<Command>,
    /// Counters shared with the writer thread.
    shared: Arc<Shared>,
    /// The writer thread; `None` once shut down, or if it could not start.
    writer: Option<JoinHandle<()>>,
    /// Least severe level accepted through [`log::Log`] (all levels for a
    /// logger made with [`Logger::new`]).
    level: log::LevelFilter,
}

impl Logger {
    /// A logger writing daily files into `dir`, with [`DEFAULT_CAPACITY`].
    ///
    /// The directory is created by the writer thread when the first record
    /// arrives; if that fails the error is reported on stderr, not here.
    pub fn new(dir: impl Into<PathBuf>) -> Logger {
        Logger::with_capacity(dir, DEFAULT_CAPACITY)
    }

    /// A logger whose queue holds at most `capacity` records (at least 1).
    pub fn with_capacity(dir: impl Into<PathBuf>, capacity: usize) -> Logger {
        let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
        let shared = Arc::new(Shared::default());
        let writer = Writer::new(dir.into(), rx, Arc::clone(&shared));
        let writer = thread::Builder::new()
            .name("mprpc-logger".into())
            .spawn(move || writer.run());
        let writer = match writer {
            Ok(handle) => Some(handle),
            Err(err) => {
                // The receiver went away with the closure, so every later
                // send fails at once: logging becomes a no-op, not a panic.
                report(format_args!(
                    "cannot start the writer thread: {err}; log records are dropped"
                ));
                None
            }
        };
        Logger {
            tx,
            shared,
            writer,
            level: log::LevelFilter::Trace,
        }
    }

    /// Queues `message` at `level`, stamped with the current local time.
    ///
    /// Returns at once: the disk is written by the writer thread.
    pub fn log(&self, level: Level, message: impl Into<String>) {
        // Read the clock first: the line must show when this call happened.
        let time = Local::now();
        self.log_at(level, time, message);
    }

    /// Queues `message` with a timestamp chosen by the caller.
    ///
    /// The file a line goes to is a function of its own timestamp, so this is
    /// how a test shows the switch to a new day's file without waiting for
    /// midnight.
    pub fn log_at(&self, level: Level, time: DateTime<Local>, message: impl Into<String>) {
        self.push(Record {
            level,
            time,
            target: String::new(),
            message: message.into(),
        });
    }

    /// Queues a finished record, or counts it as dropped if the queue is
    /// full.
    fn push(&self, record: Record) {
        match self.tx.try_send(Command::Record(record)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
            // The writer thread is gone (it could not start); that was
            // reported once already.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}
// ANCHOR_END: queue

// ANCHOR: flush
impl Logger {
    /// Waits until every record queued before this call has been handed to
    /// the operating system (written, or dropped after a reported I/O error).
    ///
    /// Records queued by other threads before this call count too: the queue
    /// is first-in first-out. Returns `false` if the writer thread is gone or
    /// made no progress for [`STALL_TIMEOUT`].
    ///
    /// "Handed to the operating system" survives the process exiting, not
    /// the machine losing power; that would need `File::sync_data` per flush.
    pub fn flush(&self) -> bool {
        self.sync(Command::Flush)
    }

    /// Writes out everything queued, stops the writer thread and waits for
    /// it. Returns `true` if everything was written out in time.
    ///
    /// Dropping a `Logger` does the same; this spelling says so in the code
    /// and reports the outcome.
    pub fn shutdown(mut self) -> bool {
        self.stop()
    }

    /// Sends a command carrying an acknowledgement channel and waits for the
    /// writer to answer, giving up only if the writer stalls.
    fn sync(&self, command: fn(Sender<()>) -> Command) -> bool {
        let (ack_tx, ack_rx) = crossbeam_channel::bounded(1);
        let mut watchdog = Watchdog::new(&self.shared.done);
        // Unlike a record, a flush waits for room in a full queue: its
        // caller asked to wait.
        let mut command = command(ack_tx);
        loop {
            match self.tx.send_timeout(command, POLL_INTERVAL) {
                Ok(()) => break,
                Err(SendTimeoutError::Timeout(back)) if !watchdog.stalled() => command = back,
                Err(_) => return false,
            }
        }
        loop {
            match ack_rx.recv_timeout(POLL_INTERVAL) {
                Ok(()) => return true,
                Err(RecvTimeoutError::Timeout) if !watchdog.stalled() => {}
                Err(_) => return false,
            }
        }
    }

    /// Shared by [`Logger::shutdown`] and `Drop`: drain, stop, join.
    fn stop(&mut self) -> bool {
        let Some(writer) = self.writer.take() else {
            // Already stopped, or never started.
            return false;
        };
        if self.sync(Command::Shutdown) {
            // The writer has answered and is returning: joining is immediate.
            writer.join().is_ok()
        } else {
            if !writer.is_finished() {
                report(format_args!(
                    "the writer made no progress for {STALL_TIMEOUT:?}; \
                     detaching it, queued records may be lost"
                ));
            }
            // Dropping the handle detaches a thread that is still stuck in
            // I/O; joining it could hang the program.
            false
        }
    }
}

impl Drop for Logger {
    /// Drains the queue and joins the writer, so an owned logger loses
    /// nothing when it goes out of scope.
    fn drop(&mut self) {
        self.stop();
    }
}

/// Tells a slow writer from a stuck one, by watching [`Shared::done`].
struct Watchdog<'a> {
    /// The writer's progress counter.
    done: &'a AtomicU64,
    /// The counter's value when last looked at.
    last: u64,
    /// When the counter last moved (or the watch began).
    since: Instant,
}

impl<'a> Watchdog<'a> {
    /// Starts watching `done` now.
    fn new(done: &'a AtomicU64) -> Watchdog<'a> {
        Watchdog {
            done,
            last: done.load(Ordering::Relaxed),
            since: Instant::now(),
        }
    }

    /// `true` once the counter has not moved for [`STALL_TIMEOUT`].
    fn stalled(&mut self) -> bool {
        let now = self.done.load(Ordering::Relaxed);
        if now != self.last {
            self.last = now;
            self.since = Instant::now();
        }
        self.since.elapsed() >= STALL_TIMEOUT
    }
}
// ANCHOR_END: flush

/// Counters shared by the callers and the writer thread. Plain atomics: no
/// caller ever waits for another to update them.
#[derive(Debug, Default)]
struct Shared {
    /// Records refused because the queue was full, not yet reported.
    dropped: AtomicU64,
    /// Commands the writer has taken up. A flush watches it to tell a slow
    /// writer (it keeps counting) from a stuck one (it stops).
    done: AtomicU64,
}

/// The name of the file holding the lines of `date`: `YYYY-MM-DD-log.txt`.
pub fn log_file_name(date: NaiveDate) -> String {
    format!("{}-log.txt", date.format("%Y-%m-%d"))
}

// ANCHOR: writer
/// State of the writer thread. Only this thread touches the file, so the
/// file needs no lock.
struct Writer {
    /// Directory of the daily files; created on first use.
    dir: PathBuf,
    /// Receiving side of the queue.
    rx: Receiver<Command>,
    /// Counters shared with the [`Logger`].
    shared: Arc<Shared>,
    /// The open file and the date it is for; `None` before the first record
    /// and after an I/O error (the next record tries to open it again).
    file: Option<(NaiveDate, BufWriter<File>)>,
    /// Whether an I/O error was already reported: report once, not per line.
    reported: bool,
}

impl Writer {
    /// A writer that has not opened any file yet.
    fn new(dir: PathBuf, rx: Receiver<Command>, shared: Arc<Shared>) -> Writer {
        Writer {
            dir,
            rx,
            shared,
            file: None,
            reported: false,
        }
    }

    /// The thread's body. Sleeps while the queue is empty; when woken, takes
    /// everything queued without sleeping again, then flushes once. Under
    /// load many lines share one `write` system call; when idle, each line
    /// reaches the file right away.
    fn run(mut self) {
        while let Ok(first) = self.rx.recv() {
            let mut next = Some(first);
            while let Some(command) = next {
                if !self.handle(command) {
                    return;
                }
                next = self.rx.try_recv().ok();
            }
            self.end_of_burst();
        }
        // Every sender is gone (a `Logger` that gave up on a slow writer):
        // the queue is drained, write out what is buffered.
        self.end_of_burst();
    }

    /// Carries out one command; `false` means the thread should end.
    fn handle(&mut self, command: Command) -> bool {
        // Counted before the work, so a record that blocks for long in the
        // kernel shows as "no progress" to a waiting flush.
        self.shared.done.fetch_add(1, Ordering::Relaxed);
        match command {
            Command::Record(record) => {
                self.write(&record);
                true
            }
            Command::Flush(ack) => {
                self.end_of_burst();
                // The flusher may have timed out and left; nothing to do then.
                let _ = ack.send(());
                true
            }
            Command::Shutdown(ack) => {
                self.end_of_burst();
                let _ = ack.send(());
                false
            }
        }
    }

    /// Reports records dropped on a full queue, then pushes the buffered
    /// lines to the operating system.
    fn end_of_burst(&mut self) {
        let dropped = self.shared.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            self.write(&Record {
                level: Level::Error,
                time: Local::now(),
                target: "mprpc::logger".into(),
                message: format!("logger queue full: {dropped} records dropped"),
            });
        }
        if let Some((date, out)) = self.file.as_mut() {
            if let Err(err) = out.flush() {
                let path = self.dir.join(log_file_name(*date));
                self.file = None;
                self.fail(&path, &err);
            }
        }
    }

    /// Appends one line to the file of the record's own date, opening that
    /// file first if the date differs from the open one.
    ///
    /// Near midnight, lines of two threads may arrive slightly out of order
    /// and the writer switches back and forth; each line still lands in the
    /// file of the day it was logged.
    fn write(&mut self, record: &Record) {
        let date = record.time.date_naive();
        if self.file.as_ref().is_none_or(|(open, _)| *open != date) {
            self.close();
            self.open(date);
        }
        let Some((_, out)) = self.file.as_mut() else {
            // Could not open; already reported. The record is dropped.
            return;
        };
        if let Err(err) = write_line(out, record) {
            let path = self.dir.join(log_file_name(date));
            self.file = None;
            self.fail(&path, &err);
        }
    }

    /// Opens (creating the directory and file if needed) the file of `date`
    /// for appending. On failure the file stays `None` and the next record
    /// tries again, so logging resumes once the disk is writable.
    fn open(&mut self, date: NaiveDate) {
        let path = self.dir.join(log_file_name(date));
        let opened = fs::create_dir_all(&self.dir)
            .and_then(|()| OpenOptions::new().create(true).append(true).open(&path));
        match opened {
            Ok(file) => self.file = Some((date, BufWriter::new(file))),
            Err(err) => self.fail(&path, &err),
        }
    }

    /// Flushes and closes the open file, if any.
    fn close(&mut self) {
        if let Some((date, mut out)) = self.file.take() {
            if let Err(err) = out.flush() {
                let path = self.dir.join(log_file_name(date));
                self.fail(&path, &err);
            }
        }
    }

    /// Reports the first I/O error on stderr and stays quiet afterwards: a
    /// full disk would otherwise print one complaint per log call.
    fn fail(&mut self, path: &Path, err: &io::Error) {
        if !self.reported {
            self.reported = true;
            report(format_args!(
                "cannot write {}: {err}; records that cannot be written are dropped \
                 (further errors are not reported)",
                path.display()
            ));
        }
    }
}

/// Formats one record as `2026-11-25 18:05:41.123 [INFO] target: message\n`
/// (without `target: ` when the record has none).
///
/// Line breaks inside the message are written as `\n` and `\r`, so a message
/// that carries text from a peer cannot forge extra log lines.
fn write_line(out: &mut impl Write, record: &Record) -> io::Result<()> {
    write!(
        out,
        "{} [{}] ",
        record.time.format("%Y-%m-%d %H:%M:%S%.3f"),
        record.level
    )?;
    if !record.target.is_empty() {
        write!(out, "{}: ", record.target)?;
    }
    if record.message.contains(['\n', '\r']) {
        let escaped = record.message.replace('\n', "\\n").replace('\r', "\\r");
        out.write_all(escaped.as_bytes())?;
    } else {
        out.write_all(record.message.as_bytes())?;
    }
    out.write_all(b"\n")
}
// ANCHOR_END: writer

/// Prints a problem of the logger itself on stderr. `eprintln!` would panic
/// if stderr were closed; a logger must not take the program down.
fn report(args: fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr(), "mprpc logger: {args}");
}

// ANCHOR: facade
impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // Clock and level are read here, on the caller's thread, and travel
        // with the record: the course's two bugs cannot happen.
        let time = Local::now();
        let message = record.args().to_string();
        if record.level() <= Level::Warn {
            let _ = writeln!(
                io::stderr(),
                "{} {}: {message}",
                record.level(),
                record.target()
            );
        }
        self.push(Record {
            level: record.level(),
            time,
            target: record.target().to_string(),
            message,
        });
    }

    fn flush(&self) {
        Logger::flush(self);
    }
}
// ANCHOR_END: facade

// ANCHOR: guard
/// The process-wide logger installed behind the `log` facade. A `static` is
/// never dropped, so nothing drains it at exit by itself: that is the job of
/// [`LogGuard`].
static LOGGER: OnceLock<Logger> = OnceLock::new();

impl Logger {
    /// Starts the process-wide logger, writing records at `level` and more
    /// severe into daily files in `dir`, installs it as the `log` facade's
    /// logger, and returns the guard that flushes it when `main` returns.
    ///
    /// Keep the guard alive: `let _guard = Logger::init("logs", level)?;`
    /// (not `let _ = ...`, which drops it at once).
    ///
    /// # Errors
    ///
    /// [`InitError`] if a logger was already installed (by an earlier call or
    /// by another `log` backend); the existing one stays in use.
    pub fn init(dir: impl Into<PathBuf>, level: log::LevelFilter) -> Result<LogGuard, InitError> {
        let mut created = false;
        let logger = LOGGER.get_or_init(|| {
            created = true;
            let mut logger = Logger::new(dir);
            logger.level = level;
            logger
        });
        if !created || log::set_logger(logger).is_err() {
            return Err(InitError { _private: () });
        }
        log::set_max_level(level);
        Ok(LogGuard { _private: () })
    }

    /// The process-wide logger, if [`Logger::init`] ran.
    pub fn global() -> Option<&'static Logger> {
        LOGGER.get()
    }
}

/// Flushes the process-wide logger when dropped.
///
/// A `static` has no destructor, and returning from `main` ends the process
/// without waiting for other threads, so records still in the queue would be
/// lost with the writer thread. Locals of `main` *are* dropped before the
/// process exits: a guard living there turns "main returned" into "the queue
/// was drained". This is `tracing-appender`'s `WorkerGuard` design. The guard
/// only flushes and does not stop the writer: threads still running at that
/// moment may keep logging without panicking (their last lines may be lost).
#[must_use = "the guard flushes the logger when dropped; bind it with `let _guard = ...`"]
#[derive(Debug)]
pub struct LogGuard {
    /// Keeps the guard from being built outside [`Logger::init`].
    _private: (),
}

impl Drop for LogGuard {
    /// Waits until every queued record is out (or the writer is stuck for
    /// [`STALL_TIMEOUT`]).
    fn drop(&mut self) {
        if let Some(logger) = LOGGER.get() {
            logger.flush();
        }
    }
}

/// [`Logger::init`] was called after the process-wide logger already existed.
#[derive(Debug)]
pub struct InitError {
    /// Keeps the error from being built outside this module.
    _private: (),
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a logger is already installed (Logger::init called twice, \
             or another `log` backend was set up first)",
        )
    }
}

impl std::error::Error for InitError {}
// ANCHOR_END: guard

/// Flushes the process-wide logger, if one was installed: for `main`
/// functions that exit without holding a [`LogGuard`].
pub fn flush() {
    if let Some(logger) = Logger::global() {
        logger.flush();
    }
}

/// Installs the file logger the way `config` says (`log_dir`, `log_level`):
/// [`Logger::init`] with the config's values. A program that wants mprpc's
/// logger calls this once at the top of `main` and keeps the guard; one with
/// its own `log` backend never calls it.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = mprpc::MprpcConfig::load("mprpc.toml")?;
/// let _guard = mprpc::logger::init(&config)?;
/// # Ok(()) }
/// ```
pub fn init(config: &crate::MprpcConfig) -> Result<LogGuard, InitError> {
    Logger::init(&config.log_dir, config.log_level_filter())
}
