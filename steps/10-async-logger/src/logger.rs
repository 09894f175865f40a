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
//! A queue and a thread, because an RPC worker waiting for the disk is not
//! answering requests. A real project would use `tracing-appender`, the same
//! design; it and `final/` also drop (and count) lines when the queue is
//! full, and give up on a writer that makes no progress (a hung disk).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::thread::{self, JoinHandle};

use chrono::{DateTime, Local, NaiveDate};
use crossbeam_channel::{Receiver, Sender};

/// Directory the global logger writes to when nobody called [`Logger::init`]:
/// `logs` under the current directory, as in the course.
pub const DEFAULT_DIR: &str = "logs";

/// How many records may wait in the queue (a few megabytes); a caller
/// logging into a full queue waits for room.
pub const CAPACITY: usize = 65_536;

// ANCHOR: record
/// How serious a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// Normal operation: a connection came or went, a call was served.
    Info,
    /// Something failed: a bad request, a lost connection.
    Error,
}

impl Level {
    /// The word written between brackets in the log line.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Error => "ERROR",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One log line, complete before it enters the queue: level and time are
/// fixed by the caller, so nothing the writer prints comes from shared state
/// another caller could have changed meanwhile.
#[derive(Debug)]
struct Record {
    /// The level the caller asked for.
    level: Level,
    /// When the caller logged, not when the line reached the disk.
    time: DateTime<Local>,
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

/// An asynchronous logger: a bounded `crossbeam-channel` queue (callers never
/// wait for a mutex: the course's reason for a lock-free queue) and one
/// writer thread that owns the file. Most code uses the process-wide one
/// through [`log_info!`](crate::log_info) and [`log_error!`](crate::log_error).
#[derive(Debug)]
pub struct Logger {
    /// Sending side of the queue; the writer thread holds the receiving side.
    tx: Sender<Command>,
    /// The writer thread; `None` once shut down, or if it could not start.
    writer: Option<JoinHandle<()>>,
}

impl Logger {
    /// A logger writing daily files into `dir`, created when the first
    /// record arrives (a failure is reported on stderr, not here).
    pub fn new(dir: impl Into<PathBuf>) -> Logger {
        let (tx, rx) = crossbeam_channel::bounded(CAPACITY);
        let writer = Writer {
            dir: dir.into(),
            rx,
            file: None,
            reported: false,
        };
        let writer = thread::Builder::new()
            .name("mprpc-logger".into())
            .spawn(move || writer.run());
        let writer = match writer {
            Ok(handle) => Some(handle),
            Err(err) => {
                // Every later send fails at once: a no-op, not a panic.
                report(format_args!(
                    "cannot start the writer thread: {err}; log records are dropped"
                ));
                None
            }
        };
        Logger { tx, writer }
    }

    // ANCHOR_END: queue
    // ANCHOR: queue_log
    /// Queues `message` at `level`, stamped with the current local time.
    /// Returns at once (unless the queue is full): the writer thread writes.
    pub fn log(&self, level: Level, message: impl Into<String>) {
        // Read the clock first: the line must show when this call happened.
        let time = Local::now();
        self.log_at(level, time, message);
    }

    /// Queues `message` with a timestamp chosen by the caller: the file a
    /// line goes to follows from its own timestamp, so a test can show the
    /// switch to a new day's file without waiting for midnight.
    pub fn log_at(&self, level: Level, time: DateTime<Local>, message: impl Into<String>) {
        let message = message.into();
        // An error means the writer thread is gone (it could not start);
        // that was reported once already.
        let _ = self.tx.send(Command::Record(Record {
            level,
            time,
            message,
        }));
    }
}
// ANCHOR_END: queue_log

// ANCHOR: flush
impl Logger {
    /// Waits until every record queued before this call (by any thread: the
    /// queue is first-in first-out) has been handed to the operating system.
    /// Returns `false` if the writer thread is gone.
    pub fn flush(&self) -> bool {
        self.sync(Command::Flush)
    }

    /// Writes out everything queued, stops the writer thread and waits for
    /// it; `true` if everything was written out. Dropping does the same.
    pub fn shutdown(mut self) -> bool {
        self.stop()
    }

    /// Sends a command carrying an acknowledgement channel and waits for the
    /// writer's answer, which comes after everything queued before it.
    fn sync(&self, command: fn(Sender<()>) -> Command) -> bool {
        let (ack_tx, ack_rx) = crossbeam_channel::bounded(1);
        self.tx.send(command(ack_tx)).is_ok() && ack_rx.recv().is_ok()
    }

    /// Shared by [`Logger::shutdown`] and `Drop`: drain, stop, join.
    fn stop(&mut self) -> bool {
        let Some(writer) = self.writer.take() else {
            // Already stopped, or never started.
            return false;
        };
        self.sync(Command::Shutdown) && writer.join().is_ok()
    }
}

impl Drop for Logger {
    /// Drains the queue and joins the writer: an owned logger loses nothing
    /// when it goes out of scope.
    fn drop(&mut self) {
        self.stop();
    }
}
// ANCHOR_END: flush

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
    /// The open file and the date it is for; `None` before the first record
    /// and after an I/O error (the next record tries to open it again).
    file: Option<(NaiveDate, BufWriter<File>)>,
    /// Whether an I/O error was already reported: report once, not per line.
    reported: bool,
}

impl Writer {
    /// The thread's body: takes everything queued, then flushes once (under
    /// load many lines share one `write`), then sleeps until there is more.
    fn run(mut self) {
        while let Ok(first) = self.rx.recv() {
            let mut next = Some(first);
            while let Some(command) = next {
                match command {
                    Command::Record(record) => self.write(&record),
                    Command::Flush(ack) => {
                        self.flush();
                        // If the flusher is gone, there is nobody to tell.
                        let _ = ack.send(());
                    }
                    Command::Shutdown(ack) => {
                        self.flush();
                        let _ = ack.send(());
                        return;
                    }
                }
                next = self.rx.try_recv().ok();
            }
            self.flush();
        }
    }

    // ANCHOR_END: writer
    // ANCHOR: writer_file
    /// Appends one line to the file of the record's own date, opening that
    /// file first if it is not the open one.
    fn write(&mut self, record: &Record) {
        let date = record.time.date_naive();
        if self.file.as_ref().is_none_or(|(open, _)| *open != date) {
            self.flush();
            self.file = None;
            let opened = fs::create_dir_all(&self.dir).and_then(|()| {
                let path = self.dir.join(log_file_name(date));
                OpenOptions::new().create(true).append(true).open(path)
            });
            match opened {
                Ok(file) => self.file = Some((date, BufWriter::new(file))),
                // The record is dropped; the next one tries again, so logging
                // resumes once the disk is writable.
                Err(err) => return self.fail(date, &err),
            }
        }
        if let Some((_, out)) = self.file.as_mut() {
            if let Err(err) = write_line(out, record) {
                self.fail(date, &err);
            }
        }
    }

    /// Pushes the buffered lines to the operating system.
    fn flush(&mut self) {
        if let Some((date, out)) = self.file.as_mut() {
            if let Err(err) = out.flush() {
                let date = *date;
                self.fail(date, &err);
            }
        }
    }

    // ANCHOR_END: writer_file
    // ANCHOR: writer_errors
    /// Closes the file after an I/O error; reports only the first error (a
    /// full disk would otherwise complain once per line).
    fn fail(&mut self, date: NaiveDate, err: &io::Error) {
        self.file = None;
        if !self.reported {
            self.reported = true;
            report(format_args!(
                "cannot write {}: {err}; records that cannot be written are dropped \
                 (further errors are not reported)",
                self.dir.join(log_file_name(date)).display()
            ));
        }
    }
}

/// Formats one record as `2026-11-25 18:05:41.123 [INFO] message\n`. Line
/// breaks inside the message are written as `\n` and `\r`, so a message that
/// carries text from a peer cannot forge extra log lines.
fn write_line(out: &mut impl Write, record: &Record) -> io::Result<()> {
    let message = record.message.replace('\n', "\\n").replace('\r', "\\r");
    writeln!(
        out,
        "{} [{}] {message}",
        record.time.format("%Y-%m-%d %H:%M:%S%.3f"),
        record.level
    )
}
// ANCHOR_END: writer_errors

/// Prints a problem of the logger itself on stderr. `eprintln!` would panic
/// if stderr were closed; a logger must not take the program down.
fn report(args: fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr(), "mprpc logger: {args}");
}

// ANCHOR: guard
/// The process-wide logger behind the macros. A `static` is never dropped,
/// so nothing drains it at exit by itself: that is the job of [`LogGuard`].
static LOGGER: OnceLock<Logger> = OnceLock::new();

impl Logger {
    /// Starts the process-wide logger, writing into `dir`, and returns the
    /// guard that flushes it when `main` returns: `let _guard = ...`.
    ///
    /// # Errors
    ///
    /// [`InitError`] if the process-wide logger already exists.
    pub fn init(dir: impl Into<PathBuf>) -> Result<LogGuard, InitError> {
        let mut created = false;
        LOGGER.get_or_init(|| {
            created = true;
            Logger::new(dir)
        });
        if created {
            Ok(LogGuard { _private: () })
        } else {
            Err(InitError { _private: () })
        }
    }

    /// The process-wide logger, created in [`DEFAULT_DIR`] on first use if
    /// [`Logger::init`] was not called (then there is no guard, and the last
    /// records before exit may be lost).
    pub fn global() -> &'static Logger {
        LOGGER.get_or_init(|| Logger::new(DEFAULT_DIR))
    }
}

/// Flushes the process-wide logger when dropped. Returning from `main` ends
/// the process without dropping statics, but locals of `main` are dropped:
/// a guard there turns "main returned" into "the queue was drained".
#[must_use = "the guard flushes the logger when dropped; bind it with `let _guard = ...`"]
#[derive(Debug)]
pub struct LogGuard {
    /// Keeps the guard from being built outside [`Logger::init`].
    _private: (),
}

impl Drop for LogGuard {
    /// Waits until every queued record is out.
    fn drop(&mut self) {
        if let Some(logger) = LOGGER.get() {
            logger.flush();
        }
    }
}
// ANCHOR_END: guard

/// [`Logger::init`] was called after the process-wide logger already existed.
#[derive(Debug)]
pub struct InitError {
    /// Keeps the error from being built outside this module.
    _private: (),
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "the global logger already exists (Logger::init called twice, \
             or a log macro was used before Logger::init)",
        )
    }
}

impl std::error::Error for InitError {}

// ANCHOR: macros
/// Logs an `INFO` line through the process-wide logger; arguments as for
/// `format!`, formatted on the caller's thread. Expects this file to be the
/// crate's `logger` module.
#[macro_export]
macro_rules! log_info {
    ($($arg:tt)+) => {
        $crate::logger::Logger::global()
            .log($crate::logger::Level::Info, ::std::format!($($arg)+))
    };
}

/// Logs an `ERROR` line through the process-wide logger; arguments as for
/// `format!`.
#[macro_export]
macro_rules! log_error {
    ($($arg:tt)+) => {
        $crate::logger::Logger::global()
            .log($crate::logger::Level::Error, ::std::format!($($arg)+))
    };
}
// ANCHOR_END: macros
