//! `log_lines DIR THREADS PER_THREAD`: a helper the logger's tests run as a
//! child process (built by `testkit::cargo_build`). Thread `t` logs
//! `t=<t> seq=<seq> want=<LEVEL>` through the process-wide logger, at
//! `ERROR` when `(t + seq) % 3 == 0`, then `main` returns: the tests check
//! that the `LogGuard` wrote out every line, each with its own level (and
//! that a second `Logger::init` is refused).

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
    let _guard = match Logger::init(dir) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    if Logger::init(dir).is_ok() {
        eprintln!("a second Logger::init was accepted");
        return ExitCode::FAILURE;
    }
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
