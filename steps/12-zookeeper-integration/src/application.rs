//! `MprpcApplication`: the framework's entry point, as in the course's
//! `MprpcApplication::Init(argc, argv)`.
//!
//! The course makes it a singleton that any code can reach. Here `init`
//! returns a value the program passes on instead: nothing is global, so a
//! test can run several providers with different configs in one process.

use crate::config::{ConfigError, MprpcConfig};
use std::ffi::OsString;
use std::path::PathBuf;

/// The config file used when no `-i` is given: the one beside this step's
/// `Cargo.toml`, so that `cargo run -p step-NN` works with no arguments.
pub const DEFAULT_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/mprpc.toml");

/// The initialised framework: for now, its configuration.
#[derive(Debug, Clone)]
pub struct MprpcApplication {
    /// Where the configuration came from.
    config_path: PathBuf,
    /// The configuration itself.
    config: MprpcConfig,
}

/// Why `init` failed: bad command-line arguments or a bad config file.
#[derive(Debug)]
pub enum InitError {
    /// The arguments were not `[-i <configfile>]`.
    Usage(String),
    /// The config file could not be used.
    Config(ConfigError),
}

impl std::fmt::Display for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InitError::Usage(problem) => {
                write!(f, "{problem}\nusage: <program> [-i <configfile>]")
            }
            InitError::Config(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for InitError {}

// ANCHOR: init
impl MprpcApplication {
    /// Reads the command line (without the program name) and loads the
    /// config file it names with `-i`, or [`DEFAULT_CONFIG`].
    ///
    /// Arguments are `OsString`s: a file name need not be UTF-8, and
    /// `std::env::args()` would panic on one that is not.
    pub fn init<I, A>(args: I) -> Result<Self, InitError>
    where
        I: IntoIterator<Item = A>,
        A: Into<OsString>,
    {
        let mut config_path = PathBuf::from(DEFAULT_CONFIG);
        let mut args = args.into_iter().map(Into::into);
        while let Some(arg) = args.next() {
            if arg == "-i" {
                match args.next() {
                    Some(path) => config_path = PathBuf::from(path),
                    None => return Err(InitError::Usage("-i needs a config file".to_string())),
                }
            } else {
                return Err(InitError::Usage(format!("unexpected argument {arg:?}")));
            }
        }
        let config = MprpcConfig::load(&config_path).map_err(InitError::Config)?;
        Ok(Self {
            config_path,
            config,
        })
    }

    /// The loaded configuration.
    pub fn config(&self) -> &MprpcConfig {
        &self.config
    }

    /// The file the configuration was read from.
    pub fn config_path(&self) -> &std::path::Path {
        &self.config_path
    }
}
// ANCHOR_END: init
