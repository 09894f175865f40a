//! A helper the logger's tests run as a child process: logs from several
//! threads through the process-wide logger, then returns from `main`.
//!
//!     log_lines DIR THREADS PER_THREAD
//!
//! Thread `t` logs `t=<t> seq=<seq> want=<LEVEL>` for `seq` in
//! `0..PER_THREAD`, at `ERROR` when `(t + seq) % 3 == 0` and `INFO`
//! otherwise. The tests then count the lines in `DIR` and check each one's
//! level: what they show is that the `LogGuard` in `main` writes out the
//! whole queue before the process exits.

use std::process::ExitCode;
use step::logger::{Level, Logger};
use step::{log_error, log_info};

/// Reads the arguments, logs, and returns (dropping the guard).
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, threads, per_thread] = args.as_slice() else {
        eprintln!("usage: log_lines DIR THREADS PER_THREAD");
        return ExitCode::from(2);
    };
    let (Ok(threads), Ok(per_thread)) = (threads.parse::<usize>(), per_thread.parse::<usize>())
    else {
        eprintln!("THREADS and PER_THREAD must be whole numbers");
        return ExitCode::from(2);
    };
    // Room for every line: this program is about losing nothing at exit,
    // not about the full-queue policy (the tests cover that separately).
    let capacity = threads.saturating_mul(per_thread);
    let _guard = match Logger::init_with_capacity(dir, capacity) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    std::thread::scope(|scope| {
        for t in 0..threads {
            scope.spawn(move || {
                for seq in 0..per_thread {
                    if (t + seq) % 3 == 0 {
                        log_error!("t={t} seq={seq} want={}", Level::Error);
                    } else {
                        log_info!("t={t} seq={seq} want={}", Level::Info);
                    }
                }
            });
        }
    });
    // Returning drops `_guard`, which waits for the writer to drain.
    ExitCode::SUCCESS
}
