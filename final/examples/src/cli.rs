//! The first lines of every demo program's `main`: its command line, its
//! config and its logger — what the course's `MprpcApplication::Init` did,
//! done the way a program that owns its `main` does it.

use std::path::Path;

use clap::Parser;
use mprpc::logger::LogGuard;
use mprpc::{ConfigArgs, MprpcConfig, RpcProvider, Service};

/// The command line of a demo program with no flags but mprpc's `-i`.
#[derive(Debug, Parser)]
pub struct DemoCli {
    /// mprpc's flags.
    #[command(flatten)]
    pub mprpc: ConfigArgs,
}

/// The config file a demo program reads without `-i`: `final/examples/<name>`.
pub fn default_config(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

/// A demo program's config, and the guard that flushes its log at exit.
#[derive(Debug)]
pub struct Setup {
    /// The loaded, validated config.
    pub config: MprpcConfig,
    /// Flushes the file logger when `main` returns; `None` if another logger
    /// was installed first.
    pub log: Option<LogGuard>,
}

/// Loads the config that `args` names (or `final/examples/<default_file>`)
/// and installs mprpc's file logger as it says. On a bad config it prints
/// why and exits with status 2 (a usage error), as the course's `Init` did.
pub fn setup(program: &str, args: &ConfigArgs, default_file: &str) -> Setup {
    let config = match args.load(default_config(default_file)) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{program}: {e}");
            std::process::exit(2);
        }
    };
    let log = match mprpc::logger::init(&config) {
        Ok(guard) => Some(guard),
        Err(e) => {
            eprintln!("{program}: {e}");
            None
        }
    };
    Setup { config, log }
}

/// [`setup`] with the process's own command line, parsed as [`DemoCli`].
pub fn setup_from_command_line(program: &str, default_file: &str) -> Setup {
    setup(program, &DemoCli::parse().mprpc, default_file)
}

/// The whole `main` of a demo provider: publishes `service` as the config
/// (`-i`, else `final/examples/<default_file>`) says and serves until Ctrl-C
/// or SIGTERM, then shuts down gracefully. Exits with status 1 if it cannot
/// serve (port taken, registry unreachable…).
pub async fn serve(program: &str, default_file: &str, service: impl Service) {
    let setup = setup_from_command_line(program, default_file);
    let config = &setup.config;
    println!(
        "{program}: serving {} on {}:{} (Ctrl-C stops it gracefully)",
        service.descriptor().full_name,
        config.rpcserverip,
        config.rpcserverport
    );
    let mut provider = RpcProvider::new(setup.config.clone());
    provider.notify_service(service);
    if let Err(e) = provider.run().await {
        eprintln!("{program}: {e}");
        std::process::exit(1);
    }
}
