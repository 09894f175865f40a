//! `MprpcConfig`: the framework's settings, read from a TOML file.
//!
//! The course parses `key=value` lines by hand, trimming spaces and skipping
//! `#` comments. TOML has the same look for these keys, and serde gives us
//! type checks (a port must fit in 16 bits) and precise error messages for
//! free.

use serde::Deserialize;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

// ANCHOR: config
/// Everything the framework reads from its config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
// A misspelt key is an error, not a silently ignored line.
#[serde(deny_unknown_fields)]
pub struct MprpcConfig {
    /// Address the provider listens on.
    pub rpcserverip: IpAddr,
    /// Port the provider listens on (0: let the system pick one).
    pub rpcserverport: u16,
    /// Host name or address of the ZooKeeper server.
    pub zookeeperip: String,
    /// Port of the ZooKeeper server.
    pub zookeeperport: u16,
    /// The ZooKeeper session timeout to ask for, in milliseconds. Not one of
    /// the course's keys (it passes 30000 to `zookeeper_init` in the code),
    /// so it may be left out, and config files written for earlier steps
    /// still load.
    #[serde(default = "default_zk_session_timeout_ms")]
    pub zk_session_timeout_ms: u64,
}
// ANCHOR_END: config

/// The course's session timeout: 30 s.
pub const DEFAULT_ZK_SESSION_TIMEOUT_MS: u64 = 30_000;

/// For serde, which wants a function: [`DEFAULT_ZK_SESSION_TIMEOUT_MS`].
fn default_zk_session_timeout_ms() -> u64 {
    DEFAULT_ZK_SESSION_TIMEOUT_MS
}

/// Why a config file could not be used. Each variant names the file.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read (missing, unreadable).
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a key is missing, unknown or of the
    /// wrong type. toml's message names the key and shows the line.
    Invalid {
        /// The file that was read.
        path: PathBuf,
        /// toml's description, which names the key.
        message: String,
    },
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::Read { path, source } => {
                write!(f, "cannot read config file {}: {source}", path.display())
            }
            ConfigError::Invalid { path, message } => {
                write!(
                    f,
                    "bad config file {}: {}",
                    path.display(),
                    message.trim_end()
                )
            }
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            ConfigError::Invalid { .. } => None,
        }
    }
}

// ANCHOR: load
impl MprpcConfig {
    /// Reads and checks the config file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses config text; the error is toml's message.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|error| error.to_string())
    }

    /// `rpcserverip:rpcserverport`, ready for `bind` or `connect`.
    pub fn rpc_server_addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::new(self.rpcserverip, self.rpcserverport)
    }

    /// `zookeeperip:zookeeperport`, the connect string a ZooKeeper client
    /// takes.
    pub fn zookeeper_addr(&self) -> String {
        format!("{}:{}", self.zookeeperip, self.zookeeperport)
    }

    /// [`zk_session_timeout_ms`](Self::zk_session_timeout_ms) as a duration.
    pub fn zk_session_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.zk_session_timeout_ms)
    }
}
// ANCHOR_END: load
