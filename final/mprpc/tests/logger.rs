//! The asynchronous logger behind the `log` facade, against real files.

use std::thread;

use log::Log;
use mprpc::logger::{Logger, log_file_name};

/// Reads every line of every file in `dir`.
fn lines(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if let Ok(text) = std::fs::read_to_string(e.path()) {
                out.extend(text.lines().map(str::to_string));
            }
        }
    }
    out
}

#[test]
fn records_from_many_threads_keep_their_own_level_and_none_is_lost() {
    let tmp = match tempfile::tempdir() {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    let logger = Logger::with_capacity(tmp.path(), 40_000);
    let levels = [
        log::Level::Error,
        log::Level::Warn,
        log::Level::Info,
        log::Level::Debug,
    ];
    thread::scope(|s| {
        for t in 0..4 {
            let logger = &logger;
            s.spawn(move || {
                for i in 0..5_000 {
                    let level = levels[(t + i) % 4];
                    Log::log(
                        logger,
                        &log::Record::builder()
                            .level(level)
                            .target("test")
                            .args(format_args!("t={t} i={i} want={level}"))
                            .build(),
                    );
                }
            });
        }
    });
    assert!(logger.shutdown());
    let lines = lines(tmp.path());
    assert_eq!(lines.len(), 20_000);
    for line in &lines {
        // "<date> <time> [LEVEL] test: t=.. i=.. want=LEVEL"
        let Some(want) = line.rsplit("want=").next() else {
            panic!("bad line {line}");
        };
        assert!(
            line.contains(&format!("[{want}] test: ")),
            "level mixed up: {line}"
        );
    }
    let today = chrono::Local::now().date_naive();
    assert!(tmp.path().join(log_file_name(today)).is_file());
}

#[test]
fn the_program_installs_the_file_logger_from_its_config() {
    let tmp = match tempfile::tempdir() {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    let logs = tmp.path().join("logs");
    let config = tmp.path().join("app.toml");
    let text = format!(
        "log_dir = {:?}\nlog_level = \"info\"\n",
        logs.display().to_string()
    );
    if let Err(e) = std::fs::write(&config, text) {
        panic!("{e}");
    }
    let args = [
        "prog".to_string(),
        "-i".into(),
        config.display().to_string(),
    ];
    let loaded = match mprpc::MprpcApplication::init_from(args, "unused.toml") {
        Ok(config) => config,
        Err(e) => panic!("{e}"),
    };
    // Loading the config installs nothing: logging is the program's choice.
    log::info!("before the logger: goes nowhere");
    let guard = mprpc::logger::init(loaded);
    assert!(guard.is_ok(), "{:?}", guard.err());
    log::info!("hello from the facade");
    log::debug!("below the level: not written");
    mprpc::logger::flush();
    let lines = lines(&logs);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("[INFO]") && l.ends_with("hello from the facade")),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.contains("below the level")));
    assert!(!lines.iter().any(|l| l.contains("before the logger")));
}
