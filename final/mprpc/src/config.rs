//! Configuration: [`MprpcConfig`], read from a TOML file.
//!
//! The course used `key=value` lines with four keys (`rpcserverip`,
//! `rpcserverport`, `zookeeperip`, `zookeeperport`). We keep those four names
//! at the top level so a course config translates line by line, and group the
//! new knobs (limits, timeouts, the static registry) in tables. Unknown keys
//! are rejected: a misspelt `max_frame_sise` silently ignored is how limits
//! end up not being limits.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::Error;
use crate::wire::frame::MAX_FRAME_SIZE_CAP;
use crate::zk_client::ZkAuth;

// ANCHOR: config
/// Everything the framework reads from its config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct MprpcConfig {
    /// Address the provider listens on ("127.0.0.1"); also the address it
    /// advertises unless `advertise_host` is set. `0.0.0.0` or `::` listens
    /// on every interface, and then a provider with ZooKeeper needs
    /// `advertise_host`: callers cannot connect to "every interface".
    pub rpcserverip: String,
    /// The host the provider registers in ZooKeeper instead of
    /// `rpcserverip`: an IP address or a DNS name, without a port (the port
    /// is always the bound one), or `"auto"`: the local address of the
    /// interface that routes to the first ZooKeeper server. For containers
    /// and multi-homed hosts, which bind `0.0.0.0` and must announce an
    /// address callers can reach. Absent: `rpcserverip` is advertised.
    pub advertise_host: Option<String>,
    /// Port the provider listens on; 0 picks a free port (tests).
    pub rpcserverport: u16,
    /// ZooKeeper host. When absent, discovery uses `[static_registry]`.
    /// An ensemble is a comma-separated list ("10.0.0.1:2181,10.0.0.2:2181");
    /// entries without a port get `zookeeperport`.
    pub zookeeperip: Option<String>,
    /// ZooKeeper port (2181 when only the host is given).
    pub zookeeperport: Option<u16>,
    /// ZooKeeper session timeout in milliseconds (the course used 30 s).
    pub zk_session_timeout_ms: u64,
    /// Root znode under which services register (see [`crate::registry`]).
    pub zk_root: String,
    /// ZooKeeper digest credential, `"user:password"`. When set (here or
    /// through `zk_auth_file`), the registry's sessions authenticate with it
    /// and every znode they create may be changed only by this identity,
    /// read by everyone. Absent: open ACLs, as in the course. The credential
    /// crosses the network in clear text unless the ZooKeeper connection
    /// uses TLS or SASL; in production prefer `zk_auth_file`, so the
    /// password is not in a file that is copied around.
    pub zk_auth: Option<Secret>,
    /// A file whose content (trailing newline ignored) is the
    /// `"user:password"` credential, e.g. a mounted secret. Read when the
    /// registry connects. Not together with `zk_auth`.
    pub zk_auth_file: Option<PathBuf>,
    /// How callers choose among providers.
    pub load_balance: LoadBalance,
    /// Directory of the daily log files written by [`crate::logger`].
    pub log_dir: String,
    /// Least severe level logged: "error", "warn", "info", "debug", "trace"
    /// or "off".
    pub log_level: String,
    /// Resource limits, enforced by providers and callers.
    pub limits: Limits,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// How the provider runs handlers: inline on the connection's task, on
    /// tasks of their own, or learned per method.
    pub handlers: Handlers,
    /// Static discovery: service name → provider addresses ("ip:port"). Used
    /// when no ZooKeeper is configured, so the demo runs without one.
    pub static_registry: BTreeMap<String, Vec<String>>,
    /// Living side by side with the C++ course's programs (see
    /// [`CourseCompat`]). Both keys default to `false`.
    pub course_compat: CourseCompat,
    /// TLS for the framed format (see [`TlsConfig`]); off unless set.
    pub tls: TlsConfig,
    /// The provider's admin endpoint (metrics); off unless set.
    pub admin: Admin,
    /// The built-in reflection service (see [`Reflection`]); off unless set.
    pub reflection: Reflection,
}

// ANCHOR: course_compat
/// `[course_compat]`: what a process does to interoperate with the C++
/// course's processes during a migration (book chapter "Migrating a C++
/// mprpc deployment"). A provider always *answers* course-format calls;
/// these keys are about ZooKeeper, where the course looks for providers
/// under `/<Service>/<Method>`.
///
/// A static `"course://ip:port"` entry in `[static_registry]` needs neither
/// key: the scheme alone makes the channel call that address in the course
/// format.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CourseCompat {
    /// Provider: also publish `/<Service>` (persistent) and
    /// `/<Service>/<Method>` (ephemeral, data `ip:port`) as the course does,
    /// so C++ callers find this provider. A method node held by another live
    /// session is left alone (and watched: taken when it is deleted).
    pub register: bool,
    /// Caller: also find providers under `/<Service>/<Method>` and call them
    /// in the course's format (one connection per call), balanced together
    /// with the framed providers of the same service.
    pub discover: bool,
}
// ANCHOR_END: course_compat

// ANCHOR: tls
/// `[tls]`: TLS (rustls) for framed connections. A provider with `cert` and
/// `key` accepts only TLS on its port; a caller with `ca` connects to every
/// framed provider with TLS and verifies it against that CA. Paths are PEM
/// files, relative to the working directory.
///
/// The course's format has no TLS: a provider with `cert` cannot take
/// course-format calls (they fail the TLS handshake) and refuses to start
/// with `course_compat.register`, which would advertise its TLS port to C++
/// callers. Run a second, plaintext provider for them, on a port only the
/// trusted network reaches.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TlsConfig {
    /// Provider: its certificate chain (leaf first).
    pub cert: Option<PathBuf>,
    /// Provider: the private key of `cert` (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// Provider: require a client certificate signed by this CA (mutual
    /// TLS). Absent: any caller that completes the handshake may call.
    pub client_ca: Option<PathBuf>,
    /// Caller: verify providers against this CA (instead of nothing: there
    /// is no built-in trust store, a provider is usually an internal host).
    pub ca: Option<PathBuf>,
    /// Caller: the certificate to present for mutual TLS.
    pub client_cert: Option<PathBuf>,
    /// Caller: the private key of `client_cert`.
    pub client_key: Option<PathBuf>,
    /// Caller: the name to verify in the provider's certificate instead of
    /// the host part of its address (an IP address is verified as one).
    pub server_name: Option<String>,
}
// ANCHOR_END: tls

/// `[admin]`: the provider's admin endpoint.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Admin {
    /// "ip:port" of a small HTTP endpoint serving `GET /metrics` in
    /// Prometheus' text format (port 0 picks a free one). Metrics are
    /// collected only when this is set. Keep it off the public network: it
    /// has no authentication.
    pub address: Option<String>,
}

// ANCHOR: reflection
/// `[reflection]`: whether the provider answers the built-in
/// `mprpc.reflection.v1.Reflection` service, which lists the published
/// services and hands out their `.proto` schemas (so `mprpc list`,
/// `describe` and `call` work without `--proto`).
///
/// Off by default because it discloses the schema of every published
/// service — every method and field, including ones no public client
/// uses — to anybody who can connect. Turn it on for development and
/// internal networks, or behind `[tls]` with client certificates.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Reflection {
    /// Answer the reflection service (`true`) or refuse it as an unknown
    /// service (`false`, the default).
    pub enabled: bool,
}
// ANCHOR_END: reflection

/// A config value that must not appear in logs: `Debug` prints
/// `<redacted>`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Limits that bound what a peer can make us allocate or hold.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Limits {
    /// Largest frame accepted or sent, in bytes (≤ 1 GiB).
    pub max_frame_size: usize,
    /// Most connections a provider keeps open at once; more are refused with
    /// an "overloaded" error.
    pub max_connections: usize,
    /// Most calls a provider runs at once on one connection; more are
    /// answered "overloaded". Callers queue (never exceed) this many per
    /// connection.
    pub max_in_flight_per_connection: usize,
    /// Bytes one connection may hold buffered from its own allowance, half
    /// for request bytes received and not yet handled (a partial frame
    /// included), half for responses not yet written. With its half of
    /// responses unsent the provider stops reading from the connection, and
    /// stops taking its handlers' results, until the caller reads: TCP flow
    /// control then pushes back on the caller. A request frame larger than
    /// its half borrows from `max_buffered_total`. (Buffers grow by
    /// doubling, so their capacity may reach the whole allowance.)
    pub max_buffered_per_connection: usize,
    /// Bytes all connections together may borrow beyond their own
    /// allowance, for frames larger than `max_buffered_per_connection` (up
    /// to `max_frame_size`). A connection whose frame cannot borrow yet
    /// stops reading until it can. The provider's buffers are thereby
    /// bounded by `max_connections × max_buffered_per_connection +
    /// max_buffered_total`.
    pub max_buffered_total: usize,
    /// Most metadata entries accepted with one request or response.
    pub max_metadata_entries: usize,
    /// Most bytes of metadata (the encoded block) accepted with one request
    /// or response; at most 65,535, what a frame can carry.
    pub max_metadata_bytes: usize,
    /// Most streams a provider keeps open at once on one connection; a
    /// stream opened beyond them is refused with `Overloaded`. Streams do
    /// not count against `max_in_flight_per_connection`.
    pub max_streams_per_connection: usize,
    /// Bytes of messages a caller lets a provider send on one stream ahead
    /// of its reading them (the window it announces when it opens the
    /// stream, and grants again as it reads): what a reader that stops
    /// reading can make either side hold for that stream. 1,024 to
    /// 1,073,741,824.
    pub stream_window_bytes: usize,
}

/// Timeouts, in milliseconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Timeouts {
    /// Default deadline of a call when its controller sets none; 0 = none.
    pub call_ms: u64,
    /// Connecting to a provider.
    pub connect_ms: u64,
    /// How long a new connection may take, from being accepted, to send
    /// its whole preamble (framed) or its whole request (legacy); and how
    /// long a legacy caller may take to read its response.
    pub handshake_ms: u64,
    /// How long an mprpc connection may make no progress (no byte read or
    /// written, no call running) before the provider acts: a connection
    /// stalled in the middle of a frame, or not reading its responses, is
    /// closed; an idle one is sent goaway, and closed if it is still there
    /// after another `idle_ms`. 0 = never. Without this a caller that sends
    /// half a frame and goes silent holds a connection slot forever.
    pub idle_ms: u64,
    /// How long a framed request may take to arrive, from its first byte
    /// to its last: a caller trickling a frame (one byte every few seconds
    /// resets `idle_ms` each time) is closed when this runs out. Counted
    /// only while the provider is reading from the connection. 0 = never.
    pub frame_ms: u64,
    /// How long graceful shutdown waits for callers to finish.
    pub drain_ms: u64,
    /// How long a caller avoids a provider whose connection failed (or
    /// that went silent); after it, until the provider answers a health
    /// check.
    pub eject_ms: u64,
    /// How long to keep retrying (with backoff) when ZooKeeper is
    /// unreachable at start.
    pub zk_connect_ms: u64,
}

/// How the provider runs handlers (`[handlers]` table).
///
/// A handler polled inline on its connection's task costs no task switch,
/// but one that computes without awaiting holds up every other call on that
/// connection, and nothing can interrupt it once polled. So the choice is
/// made before the first poll: in `adaptive` mode a method's calls run on
/// tasks of their own until [`LEARN_AFTER`](crate::provider::LEARN_AFTER)
/// calls in a row stayed under `inline_budget_us` per poll; from then on
/// they are polled inline, and a poll over the budget sends the method back
/// to its own tasks until it has proved quick again.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Handlers {
    /// `adaptive` (default), `inline` (always on the connection's task, the
    /// fastest for handlers known to be quick) or `spawn` (always a task per
    /// call).
    pub mode: HandlerMode,
    /// Longest poll, in microseconds, that still counts as quick.
    pub inline_budget_us: u64,
}

/// See [`Handlers::mode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum HandlerMode {
    /// Learned per method: spawned until proved quick, then inline.
    #[default]
    Adaptive,
    /// Always polled on the connection's task.
    Inline,
    /// Always on a task of its own.
    Spawn,
}

impl Default for Handlers {
    fn default() -> Self {
        Handlers {
            mode: HandlerMode::default(),
            inline_budget_us: 500,
        }
    }
}

/// Load-balancing policy of [`crate::MprpcChannel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LoadBalance {
    /// Each call goes to the next provider in turn.
    RoundRobin,
    /// Pick two providers at random, use the one with fewer calls in flight
    /// ("power of two choices"): nearly as good as least-loaded, without
    /// scanning every provider.
    #[default]
    P2c,
}
// ANCHOR_END: config

impl Default for MprpcConfig {
    fn default() -> Self {
        MprpcConfig {
            rpcserverip: "127.0.0.1".into(),
            rpcserverport: 8000,
            advertise_host: None,
            zookeeperip: None,
            zookeeperport: None,
            zk_session_timeout_ms: 30_000,
            zk_root: "/mprpc".into(),
            zk_auth: None,
            zk_auth_file: None,
            load_balance: LoadBalance::default(),
            log_dir: "logs".into(),
            log_level: "info".into(),
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            handlers: Handlers::default(),
            static_registry: BTreeMap::new(),
            course_compat: CourseCompat::default(),
            tls: TlsConfig::default(),
            admin: Admin::default(),
            reflection: Reflection::default(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_size: 16 << 20,
            max_connections: 1024,
            max_in_flight_per_connection: 1024,
            // 1,024 connections × 64 KiB + 64 MiB = 128 MiB at most.
            max_buffered_per_connection: 64 << 10,
            max_buffered_total: 64 << 20,
            max_metadata_entries: 32,
            max_metadata_bytes: 8 << 10,
            max_streams_per_connection: 100,
            stream_window_bytes: 256 << 10,
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            call_ms: 5_000,
            connect_ms: 1_000,
            handshake_ms: 5_000,
            idle_ms: 60_000,
            frame_ms: 10_000,
            drain_ms: 10_000,
            eject_ms: 5_000,
            zk_connect_ms: 60_000,
        }
    }
}

impl Timeouts {
    /// `ms` as a duration, `None` for 0.
    pub fn opt(ms: u64) -> Option<Duration> {
        (ms > 0).then(|| Duration::from_millis(ms))
    }
}

impl MprpcConfig {
    /// Reads and validates a TOML config file.
    pub fn load(path: impl AsRef<Path>) -> Result<MprpcConfig, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading config file {}", path.display()), e))?;
        Self::from_toml(&text).map_err(|e| match e {
            Error::Config(msg) => Error::Config(format!("{}: {msg}", path.display())),
            other => other,
        })
    }

    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<MprpcConfig, Error> {
        let config: MprpcConfig = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), Error> {
        let l = &self.limits;
        if l.max_frame_size < 64 || l.max_frame_size > MAX_FRAME_SIZE_CAP {
            return Err(Error::Config(format!(
                "limits.max_frame_size = {} must be between 64 and {MAX_FRAME_SIZE_CAP}",
                l.max_frame_size
            )));
        }
        if l.max_connections == 0 || l.max_in_flight_per_connection == 0 {
            return Err(Error::Config(
                "limits.max_connections and limits.max_in_flight_per_connection must be at least 1"
                    .into(),
            ));
        }
        if l.max_streams_per_connection == 0 {
            return Err(Error::Config(
                "limits.max_streams_per_connection must be at least 1".into(),
            ));
        }
        if !(1024..=MAX_FRAME_SIZE_CAP).contains(&l.stream_window_bytes) {
            return Err(Error::Config(format!(
                "limits.stream_window_bytes = {} must be between 1024 and {MAX_FRAME_SIZE_CAP}",
                l.stream_window_bytes
            )));
        }
        if l.max_buffered_per_connection < 4096 {
            return Err(Error::Config(format!(
                "limits.max_buffered_per_connection = {} must be at least 4096",
                l.max_buffered_per_connection
            )));
        }
        if l.max_buffered_per_connection.max(l.max_buffered_total) < l.max_frame_size + 4 {
            return Err(Error::Config(format!(
                "limits.max_buffered_total = {} (or max_buffered_per_connection) must hold one \
                 frame of max_frame_size = {} plus its 4-byte length",
                l.max_buffered_total, l.max_frame_size
            )));
        }
        if l.max_buffered_total > u32::MAX as usize {
            return Err(Error::Config(format!(
                "limits.max_buffered_total = {} must be below 4 GiB",
                l.max_buffered_total
            )));
        }
        if l.max_metadata_bytes > crate::wire::frame::MAX_METADATA_BLOCK {
            return Err(Error::Config(format!(
                "limits.max_metadata_bytes = {} must be at most {}",
                l.max_metadata_bytes,
                crate::wire::frame::MAX_METADATA_BLOCK
            )));
        }
        self.validate_tls()?;
        if self.log_level.parse::<log::LevelFilter>().is_err() {
            return Err(Error::Config(format!(
                "log_level = {:?} is not one of off, error, warn, info, debug, trace",
                self.log_level
            )));
        }
        self.validate_advertise_host()?;
        if self.zookeeperport.is_some() && self.zookeeperip.is_none() {
            return Err(Error::Config(
                "zookeeperport is set but zookeeperip is not".into(),
            ));
        }
        if !self.zk_root.starts_with('/') || self.zk_root.len() < 2 || self.zk_root.ends_with('/') {
            return Err(Error::Config(format!(
                "zk_root = {:?} must look like \"/mprpc\"",
                self.zk_root
            )));
        }
        if self.zk_auth.is_some() && self.zk_auth_file.is_some() {
            return Err(Error::Config(
                "zk_auth and zk_auth_file are both set; use one".into(),
            ));
        }
        if (self.zk_auth.is_some() || self.zk_auth_file.is_some()) && self.zookeeperip.is_none() {
            return Err(Error::Config(
                "zk_auth or zk_auth_file is set but zookeeperip is not".into(),
            ));
        }
        if (self.course_compat.register || self.course_compat.discover)
            && self.zookeeperip.is_none()
        {
            return Err(Error::Config(
                "course_compat.register and course_compat.discover work on the course's ZooKeeper \
                 layout, but zookeeperip is not set (a static \"course://ip:port\" entry in \
                 [static_registry] needs neither key)"
                    .into(),
            ));
        }
        for (service, addrs) in &self.static_registry {
            for addr in addrs {
                let bare = addr
                    .strip_prefix(crate::wire::course::COURSE_SCHEME)
                    .unwrap_or(addr);
                if bare.is_empty() || bare.contains("://") {
                    return Err(Error::Config(format!(
                        "static_registry.{service}: {addr:?} is neither \"ip:port\" nor \"course://ip:port\""
                    )));
                }
            }
        }
        if let Some(secret) = &self.zk_auth {
            // The message never repeats the value: it holds the password.
            ZkAuth::digest(secret.expose()).map_err(|e| Error::Config(format!("zk_auth: {e}")))?;
        }
        Ok(())
    }

    // ANCHOR: validate_advertise_host
    /// `advertise_host`: `"auto"` (with ZooKeeper), an IP address or a DNS
    /// name; never empty, never with a port (the port is the bound one).
    fn validate_advertise_host(&self) -> Result<(), Error> {
        let Some(host) = &self.advertise_host else {
            return Ok(());
        };
        let bad = |why: &str| Err(Error::Config(format!("advertise_host = {host:?} {why}")));
        if host == ADVERTISE_AUTO {
            if self.zookeeperip.is_none() {
                return bad(
                    "picks the interface that routes to ZooKeeper, but zookeeperip is not set",
                );
            }
            return Ok(());
        }
        if host.is_empty() {
            return bad("is empty: set an IP address or DNS name of this host, or \"auto\"");
        }
        if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            if ip.is_unspecified() {
                return bad("is not an address callers can connect to");
            }
        } else if host.contains(':') {
            return bad("must be a host without a port (the port is always the bound one)");
        } else if !is_dns_name(host) {
            return bad("is neither an IP address nor a DNS name (letters, digits, '-' and '.')");
        } else if self.course_compat.register {
            return bad(
                "is a name, but course_compat.register needs an IP address: the course's C++ callers read the node with inet_addr",
            );
        }
        Ok(())
    }
    // ANCHOR_END: validate_advertise_host

    /// The `[tls]` keys that only make sense together.
    fn validate_tls(&self) -> Result<(), Error> {
        let t = &self.tls;
        if t.cert.is_some() != t.key.is_some() {
            return Err(Error::Config(
                "tls.cert and tls.key go together: set both or neither".into(),
            ));
        }
        if t.client_cert.is_some() != t.client_key.is_some() {
            return Err(Error::Config(
                "tls.client_cert and tls.client_key go together: set both or neither".into(),
            ));
        }
        if t.client_ca.is_some() && t.cert.is_none() {
            return Err(Error::Config(
                "tls.client_ca (mutual TLS) needs tls.cert and tls.key on the provider".into(),
            ));
        }
        if (t.client_cert.is_some() || t.server_name.is_some()) && t.ca.is_none() {
            return Err(Error::Config(
                "tls.client_cert and tls.server_name are for TLS callers, which need tls.ca".into(),
            ));
        }
        if t.cert.is_some() && self.course_compat.register {
            return Err(Error::Config(
                "course_compat.register would advertise this provider's TLS port to the course's \
                 C++ callers, which speak plaintext; run a separate plaintext provider for them"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Metadata limits as [`crate::metadata::MetadataLimits`].
    pub fn metadata_limits(&self) -> crate::metadata::MetadataLimits {
        crate::metadata::MetadataLimits::new(
            self.limits.max_metadata_entries,
            self.limits.max_metadata_bytes,
        )
    }

    // ANCHOR: zk_credential
    /// The ZooKeeper credential from `zk_auth` or `zk_auth_file`, if any.
    ///
    /// The file is read here, when the registry connects, so a credential
    /// mounted by the deployment (a Kubernetes secret, systemd's
    /// `LoadCredential=`) is used as it is at start. A file that others may
    /// read is accepted with a warning.
    pub fn zk_credential(&self) -> Result<Option<ZkAuth>, Error> {
        if let Some(secret) = &self.zk_auth {
            return ZkAuth::digest(secret.expose())
                .map(Some)
                .map_err(|e| Error::Config(format!("zk_auth: {e}")));
        }
        let Some(path) = &self.zk_auth_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading zk_auth_file {}", path.display()), e))?;
        warn_if_others_can_read(path);
        ZkAuth::digest(&text)
            .map(Some)
            .map_err(|e| Error::Config(format!("zk_auth_file {}: {e}", path.display())))
    }
    // ANCHOR_END: zk_credential

    // ANCHOR: zookeeper_address
    /// ZooKeeper's connect string ("host:port", or "h1:p1,h2:p2,..." for an
    /// ensemble), if configured.
    pub fn zookeeper_address(&self) -> Option<String> {
        let port = self.zookeeperport.unwrap_or(2181);
        // Without the split, an ensemble list came out as "a:1,b:2:2181",
        // which no client can parse.
        self.zookeeperip.as_ref().map(|ips| {
            ips.split(',')
                .map(str::trim)
                .map(|host| {
                    if host.contains(':') {
                        host.to_string()
                    } else {
                        format!("{host}:{port}")
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        })
    }
    // ANCHOR_END: zookeeper_address

    /// [`log_level`](Self::log_level) parsed (validated on load; `Info` if
    /// the field was changed to something invalid afterwards).
    pub fn log_level_filter(&self) -> log::LevelFilter {
        self.log_level.parse().unwrap_or(log::LevelFilter::Info)
    }

    /// ZooKeeper session timeout as a duration.
    pub fn zk_session_timeout(&self) -> Duration {
        Duration::from_millis(self.zk_session_timeout_ms)
    }
}

/// The `advertise_host` value that asks for the address routing to
/// ZooKeeper.
pub(crate) const ADVERTISE_AUTO: &str = "auto";

/// A syntactically valid DNS name: at most 253 characters, dot-separated
/// labels of 1 to 63 letters, digits or hyphens, not starting or ending
/// with a hyphen (a trailing dot is allowed).
fn is_dns_name(host: &str) -> bool {
    let name = host.strip_suffix('.').unwrap_or(host);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Logs a warning if users other than the owner may read `path`.
#[cfg(unix)]
fn warn_if_others_can_read(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode();
        if mode & 0o044 != 0 {
            log::warn!(
                "zk_auth_file {} can be read by other users (mode {:o}); chmod 600 it",
                path.display(),
                mode & 0o777
            );
        }
    }
}

/// Permissions are not checked on other systems.
#[cfg(not(unix))]
fn warn_if_others_can_read(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn course_keys_and_tables_parse() {
        let c = MprpcConfig::from_toml(
            "rpcserverip = \"127.0.0.1\"\nrpcserverport = 9000\nzookeeperip = \"127.0.0.1\"\n\
             [limits]\nmax_frame_size = 4096\n[static_registry]\nUserServiceRpc = [\"127.0.0.1:9000\"]\n",
        );
        let c = match c {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(c.rpcserverport, 9000);
        assert_eq!(c.limits.max_frame_size, 4096);
        assert_eq!(c.zookeeper_address().as_deref(), Some("127.0.0.1:2181"));
        assert_eq!(c.static_registry["UserServiceRpc"], vec!["127.0.0.1:9000"]);
    }

    #[test]
    fn stream_limits_parse_and_bad_values_are_config_errors() {
        let c = MprpcConfig::from_toml(
            "[limits]\nmax_streams_per_connection = 7\nstream_window_bytes = 4096\n",
        );
        let c = match c {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(c.limits.max_streams_per_connection, 7);
        assert_eq!(c.limits.stream_window_bytes, 4096);
        let d = MprpcConfig::default();
        assert_eq!(d.limits.max_streams_per_connection, 100);
        assert_eq!(d.limits.stream_window_bytes, 256 << 10);
        for (bad, key) in [
            (
                "max_streams_per_connection = 0",
                "max_streams_per_connection",
            ),
            ("stream_window_bytes = 1023", "stream_window_bytes"),
            ("stream_window_bytes = 2147483648", "stream_window_bytes"),
            ("stream_window_bytes = -1", "stream_window_bytes"),
        ] {
            let err = MprpcConfig::from_toml(&format!("[limits]\n{bad}\n"));
            assert!(
                err.as_ref().is_err_and(|e| e.to_string().contains(key)),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn an_ensemble_is_a_comma_separated_zookeeperip() {
        let c = MprpcConfig::from_toml(
            "zookeeperip = \"10.0.0.1:2181, 10.0.0.2:2182,10.0.0.3\"\nzookeeperport = 2183\n",
        );
        let c = match c {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            c.zookeeper_address().as_deref(),
            Some("10.0.0.1:2181,10.0.0.2:2182,10.0.0.3:2183")
        );
    }

    #[test]
    fn budget_frame_and_handler_keys_parse_and_are_checked() {
        let c = MprpcConfig::from_toml(
            "[limits]\nmax_buffered_per_connection = 8192\nmax_buffered_total = 33554432\n\
             [timeouts]\nframe_ms = 2500\n[handlers]\nmode = \"spawn\"\ninline_budget_us = 50\n",
        );
        let c = match c {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(c.limits.max_buffered_per_connection, 8192);
        assert_eq!(c.limits.max_buffered_total, 32 << 20);
        assert_eq!(c.timeouts.frame_ms, 2500);
        assert_eq!(c.handlers.mode, HandlerMode::Spawn);
        assert_eq!(c.handlers.inline_budget_us, 50);
        assert_eq!(MprpcConfig::default().handlers.mode, HandlerMode::Adaptive);
        // A pool that cannot hold one largest frame: such a frame could
        // never be received.
        let err = MprpcConfig::from_toml("[limits]\nmax_buffered_total = 1048576\n");
        assert!(err.is_err_and(|e| e.to_string().contains("max_buffered_total")));
        assert!(MprpcConfig::from_toml("[handlers]\nmode = \"threads\"\n").is_err());
        assert!(MprpcConfig::from_toml("[handlers]\nbudget = 1\n").is_err());
    }

    #[test]
    fn advertise_host_takes_an_ip_a_name_or_auto_and_nothing_else() {
        let zk = "zookeeperip = \"127.0.0.1\"\n";
        for good in [
            "10.1.2.3",
            "fe80::1",
            "provider-1.example.com",
            "host.",
            "auto",
        ] {
            let text = format!("{zk}advertise_host = \"{good}\"\n");
            if let Err(e) = MprpcConfig::from_toml(&text) {
                panic!("{good:?} refused: {e}");
            }
        }
        for (bad, why) in [
            ("", "is empty"),
            ("10.1.2.3:8000", "without a port"),
            ("[::1]:8000", "without a port"),
            ("host.example:8000", "without a port"),
            ("0.0.0.0", "not an address callers can connect to"),
            ("::", "not an address callers can connect to"),
            ("two words", "neither an IP address nor a DNS name"),
            ("http://x", "without a port"),
            ("-x.example", "neither an IP address nor a DNS name"),
            ("a..b", "neither an IP address nor a DNS name"),
        ] {
            let text = format!("{zk}advertise_host = \"{bad}\"\n");
            match MprpcConfig::from_toml(&text) {
                Ok(_) => panic!("{bad:?} accepted"),
                Err(e) => {
                    let msg = e.to_string();
                    assert!(
                        msg.contains("advertise_host") && msg.contains(why),
                        "{bad:?}: {msg}"
                    );
                }
            }
        }
        let long = format!("{zk}advertise_host = \"{}.example\"\n", "a".repeat(64));
        assert!(
            MprpcConfig::from_toml(&long).is_err(),
            "a 64-character label"
        );
        let auto = MprpcConfig::from_toml("advertise_host = \"auto\"\n");
        assert!(auto.is_err_and(|e| e.to_string().contains("zookeeperip is not set")));
        let course =
            format!("{zk}advertise_host = \"h.example\"\n[course_compat]\nregister = true\n");
        let course = MprpcConfig::from_toml(&course);
        assert!(course.is_err_and(|e| e.to_string().contains("inet_addr")));
    }

    #[test]
    fn reflection_is_off_unless_enabled_and_takes_only_a_boolean() {
        let off = MprpcConfig::from_toml("").map(|c| c.reflection.enabled);
        assert!(matches!(off, Ok(false)), "{off:?}");
        let on = MprpcConfig::from_toml("[reflection]\nenabled = true\n");
        assert!(matches!(on.map(|c| c.reflection.enabled), Ok(true)));
        for bad in [
            "[reflection]\nenabled = \"yes\"\n",
            "[reflection]\nenabled = 1\n",
            "[reflection]\nenable = true\n",
        ] {
            let err = MprpcConfig::from_toml(bad).map(|_| ());
            let text = format!("{err:?}");
            assert!(
                text.contains("enable")
                    && (text.contains("boolean") || text.contains("unknown field")),
                "{bad:?}: {text}"
            );
        }
    }

    #[test]
    fn typos_and_bad_limits_are_errors() {
        assert!(MprpcConfig::from_toml("rpcserverprot = 1\n").is_err());
        assert!(MprpcConfig::from_toml("[limits]\nmax_frame_size = 5000000000\n").is_err());
    }

    #[test]
    fn zk_auth_is_checked_and_never_printed() {
        let text = "zookeeperip = \"127.0.0.1\"\nzk_auth = \"mprpc:s3cret\"\n";
        let c = match MprpcConfig::from_toml(text) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert!(!format!("{c:?}").contains("s3cret"));
        let auth = match c.zk_credential() {
            Ok(Some(a)) => a,
            other => panic!("{other:?}"),
        };
        assert_eq!(auth.user(), Some("mprpc"));
        assert!(!format!("{auth:?}").contains("s3cret"));

        for bad in ["nocolon", ":pw", "someone:"] {
            let text = format!("zookeeperip = \"127.0.0.1\"\nzk_auth = \"{bad}\"\n");
            match MprpcConfig::from_toml(&text) {
                Ok(_) => panic!("{bad:?} accepted"),
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.contains("user:password"), "{msg}");
                    assert!(!msg.contains(bad), "the error repeats the secret: {msg}");
                }
            }
        }
        assert!(
            MprpcConfig::from_toml("zk_auth = \"a:b\"\n").is_err(),
            "zk_auth without ZooKeeper"
        );
        assert!(
            MprpcConfig::from_toml(
                "zookeeperip = \"h\"\nzk_auth = \"a:b\"\nzk_auth_file = \"/x\"\n"
            )
            .is_err(),
            "both sources"
        );
    }

    #[test]
    fn zk_auth_file_is_read_without_its_newline() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("zk.secret");
        std::fs::write(&path, "mprpc:from-file\n")?;
        let c = MprpcConfig {
            zookeeperip: Some("127.0.0.1".into()),
            zk_auth_file: Some(path.clone()),
            ..MprpcConfig::default()
        };
        c.validate()?;
        let auth = c.zk_credential()?.ok_or("no credential")?;
        assert_eq!(auth.user(), Some("mprpc"));

        std::fs::write(&path, "no-colon\n")?;
        let err = c
            .zk_credential()
            .err()
            .ok_or("bad file accepted")?
            .to_string();
        assert!(
            err.contains("zk_auth_file") && !err.contains("no-colon"),
            "{err}"
        );

        let missing = MprpcConfig {
            zk_auth_file: Some(dir.path().join("absent")),
            ..c
        };
        let err = missing
            .zk_credential()
            .err()
            .ok_or("missing file accepted")?
            .to_string();
        assert!(err.contains("absent"), "{err}");
        Ok(())
    }
}
