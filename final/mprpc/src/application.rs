//! [`MprpcApplication`]: process-wide initialisation, as in the course.
//!
//! The course's `MprpcApplication::Init(argc, argv)` parsed `-i <file>` and
//! loaded the config into a singleton that every other class read. We keep
//! the entry point for `main` functions, but the framework's types take the
//! config as an argument: globals make tests that run several providers in
//! one process impossible.

use std::sync::OnceLock;

use clap::Parser;

use crate::config::MprpcConfig;
use crate::error::Error;

/// The process-wide config, set once by [`MprpcApplication::init`].
static CONFIG: OnceLock<MprpcConfig> = OnceLock::new();

/// Command line shared by mprpc programs.
#[derive(Debug, Parser)]
#[command(about = "An mprpc program")]
struct Args {
    /// Config file (TOML).
    #[arg(short = 'i', long = "config")]
    config: Option<std::path::PathBuf>,
}

/// Process-wide initialisation (the course's `MprpcApplication`).
#[derive(Debug)]
pub struct MprpcApplication;

impl MprpcApplication {
    /// Parses the process's command line (`-i <file>`, default
    /// `default_config`), loads the config, installs the asynchronous file
    /// logger (`log_dir`, `log_level`), and returns the config. Calling it
    /// again returns the first config. Call [`crate::logger::flush`] before
    /// `main` returns so no queued log line is lost.
    pub fn init(default_config: &str) -> Result<&'static MprpcConfig, Error> {
        Self::init_from(std::env::args_os(), default_config)
    }

    /// [`init`](Self::init) for a `main` that cannot do anything without its
    /// config, used the way the course used `Init(argc, argv)`: on a bad
    /// command line or config file it prints the error to stderr and exits
    /// with status 2 (a usage error), so `main` needs no error handling of
    /// its own. Nothing is logged: the logger is not installed yet. A program
    /// that can recover (or a library) calls [`init`](Self::init) instead.
    pub fn init_or_exit(default_config: &str) -> &'static MprpcConfig {
        match Self::init(default_config) {
            Ok(config) => config,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        }
    }

    /// Like [`init`](Self::init) with explicit arguments (`args[0]` is the
    /// program name).
    pub fn init_from<I, T>(args: I, default_config: &str) -> Result<&'static MprpcConfig, Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        if let Some(config) = CONFIG.get() {
            return Ok(config);
        }
        let args = Args::try_parse_from(args).map_err(|e| Error::Config(e.render().to_string()))?;
        let path = args.config.unwrap_or_else(|| default_config.into());
        let config = MprpcConfig::load(&path)?;
        // A second init (or another `log` backend) keeps the first logger.
        if let Ok(guard) = crate::logger::Logger::init(&config.log_dir, config.log_level_filter()) {
            // The guard would flush when dropped, but we return the config,
            // not the guard: `main` calls `mprpc::logger::flush()` instead.
            std::mem::forget(guard);
        }
        log::info!("loaded {}", path.display());
        Ok(CONFIG.get_or_init(|| config))
    }

    /// The config loaded by [`init`](Self::init), if it ran.
    pub fn config() -> Option<&'static MprpcConfig> {
        CONFIG.get()
    }
}
