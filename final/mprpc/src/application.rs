//! [`MprpcApplication`] and [`ConfigArgs`]: getting a program's config, as
//! the course's `MprpcApplication::Init(argc, argv)` did.
//!
//! The course parsed `-i <file>` itself and kept the config in a singleton
//! that every other class read. Here the program owns `main` and its command
//! line: [`ConfigArgs`] is the `-i` flag as a clap argument group that a
//! program embeds in its own parser with `#[command(flatten)]`, and the
//! framework's types take the config as an argument (globals would make tests
//! that run several providers in one process impossible). Installing the
//! file logger is a separate, explicit call ([`crate::logger::init`]): a
//! program with its own `log` backend simply does not make it.
//! [`MprpcApplication`] remains for programs whose whole command line is
//! mprpc's, as the course's were.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use clap::Parser;
use tokio::sync::watch;

use crate::config::MprpcConfig;
use crate::error::Error;

/// The process-wide config, set once by [`MprpcApplication::init`].
static CONFIG: OnceLock<MprpcConfig> = OnceLock::new();

// ANCHOR: config_args
/// mprpc's command-line flag, `-i <file>` (long form `--config`), for a
/// program's own clap parser:
///
/// ```
/// use clap::Parser;
///
/// #[derive(Parser)]
/// struct Cli {
///     #[command(flatten)]
///     mprpc: mprpc::ConfigArgs,
///     /// The program's own flag.
///     #[arg(long)]
///     verbose: bool,
/// }
///
/// let cli = Cli::parse_from(["kv_server", "-i", "kv.toml", "--verbose"]);
/// assert_eq!(cli.mprpc.config.as_deref(), Some(std::path::Path::new("kv.toml")));
/// assert!(cli.verbose);
/// ```
#[derive(Debug, Clone, Default, clap::Args)]
#[non_exhaustive]
pub struct ConfigArgs {
    /// Config file (TOML; see the book's chapter on configuration).
    #[arg(short = 'i', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
}
// ANCHOR_END: config_args

impl ConfigArgs {
    /// Flags naming `path` as the config file.
    pub fn with_config(path: impl Into<PathBuf>) -> ConfigArgs {
        ConfigArgs {
            config: Some(path.into()),
        }
    }

    /// The file named by `-i`, or `default` when the flag was not given.
    pub fn path_or<'a>(&'a self, default: &'a Path) -> &'a Path {
        self.config.as_deref().unwrap_or(default)
    }

    /// Loads and validates the config named by `-i` (or `default`).
    pub fn load(&self, default: impl AsRef<Path>) -> Result<MprpcConfig, Error> {
        MprpcConfig::load(self.path_or(default.as_ref()))
    }
}

/// The whole command line of a program that has no flags but mprpc's.
#[derive(Debug, Parser)]
#[command(about = "An mprpc program")]
struct Args {
    /// mprpc's flags.
    #[command(flatten)]
    mprpc: ConfigArgs,
}

/// Process-wide initialisation (the course's `MprpcApplication`), for
/// programs whose command line is only `-i <file>`.
#[derive(Debug)]
pub struct MprpcApplication;

impl MprpcApplication {
    /// Parses the process's command line (`-i <file>`, default
    /// `default_config`), loads the config and keeps it for
    /// [`config`](Self::config). Calling it again returns the first config.
    /// It installs no logger: call [`crate::logger::init`] if you want
    /// mprpc's file logger. A program with flags of its own embeds
    /// [`ConfigArgs`] in its parser instead.
    pub fn init(default_config: &str) -> Result<&'static MprpcConfig, Error> {
        Self::init_from(std::env::args_os(), default_config)
    }

    /// [`init`](Self::init) for a `main` that cannot do anything without its
    /// config, used the way the course used `Init(argc, argv)`: on a bad
    /// command line or config file it prints the error to stderr and exits
    /// with status 2 (a usage error), so `main` needs no error handling of
    /// its own. A program that can recover (or a library) calls
    /// [`init`](Self::init) instead.
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
        Self::init_with(&args.mprpc, default_config)
    }

    /// Loads the config named by flags the program parsed itself (see
    /// [`ConfigArgs`]) and keeps it for [`config`](Self::config).
    pub fn init_with(
        args: &ConfigArgs,
        default_config: &str,
    ) -> Result<&'static MprpcConfig, Error> {
        if let Some(config) = CONFIG.get() {
            return Ok(config);
        }
        let config = args.load(default_config)?;
        Ok(CONFIG.get_or_init(|| config))
    }

    /// The config loaded by [`init`](Self::init), if it ran.
    pub fn config() -> Option<&'static MprpcConfig> {
        CONFIG.get()
    }

    // ANCHOR: start_admin
    /// Starts the admin endpoint of a program that calls but publishes
    /// nothing, when `[admin] address` is set (`Ok(None)` when it is not):
    /// `GET /metrics` serves the client metrics (`mprpc_client_*`, turned on
    /// here), `GET /healthz` and `GET /readyz` answer 200 while the program
    /// runs. A program that also runs an [`RpcProvider`](crate::RpcProvider)
    /// needs none: the provider's endpoint serves the client metrics too.
    /// The endpoint stops when the returned handle is dropped.
    pub async fn start_admin(config: &MprpcConfig) -> Result<Option<AdminEndpoint>, Error> {
        let Some(addr) = &config.admin.address else {
            return Ok(None);
        };
        let (listener, local) = crate::telemetry::metrics::bind_admin(addr)
            .await
            .map_err(|e| Error::io(format!("binding the admin endpoint to {addr}"), e))?;
        crate::telemetry::client_metrics::enable();
        let (stop, stopped) = watch::channel(false);
        let pages = Arc::new(crate::telemetry::metrics::AdminPages::default());
        tokio::spawn(crate::telemetry::metrics::serve_admin(
            listener, pages, stopped,
        ));
        log::info!("admin endpoint: http://{local}/metrics");
        Ok(Some(AdminEndpoint { local, stop }))
    }
    // ANCHOR_END: start_admin
}

/// The admin endpoint of a caller-only program
/// ([`MprpcApplication::start_admin`]); stops when dropped.
#[derive(Debug)]
#[must_use = "dropping the handle stops the endpoint"]
pub struct AdminEndpoint {
    /// Where it listens.
    local: SocketAddr,
    /// Sends `true` to stop it.
    stop: watch::Sender<bool>,
}

impl AdminEndpoint {
    /// The bound address: `http://<it>/metrics`.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for AdminEndpoint {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
