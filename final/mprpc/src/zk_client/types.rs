//! The ZooKeeper client's vocabulary: a session credential ([`ZkAuth`]),
//! node modes ([`CreateMode`]) and errors ([`ZkError`]).

use super::*;

/// A credential a ZooKeeper session authenticates with (see
/// [`ZkClient::start_with_auth`]).
///
/// `Debug` never shows the secret part, so a config or client printed with
/// `{:?}` does not leak it into a log.
#[derive(Clone)]
pub struct ZkAuth {
    /// The authentication scheme: `"digest"` for user and password.
    pub(super) scheme: String,
    /// What the scheme checks; for `digest`, `"user:password"`.
    pub(super) credential: Vec<u8>,
}

impl ZkAuth {
    /// A `digest` credential from `"user:password"`.
    ///
    /// ZooKeeper's digest scheme accepts any user and password: it stores
    /// `user:base64(sha1("user:password"))` as the session's identity and
    /// compares that with the ids in a znode's ACL. A wrong password is
    /// therefore not refused at connect time; the session simply has a
    /// different identity, and gets `NoAuth` on nodes of the right one.
    ///
    /// The user is everything before the first `:` and must not be empty;
    /// the password is the rest and must not be empty either. Errors never
    /// repeat the text, since it holds the password.
    pub fn digest(user_password: &str) -> Result<ZkAuth, ZkError> {
        let user_password = user_password.trim_end_matches(['\r', '\n']);
        match user_password.split_once(':') {
            Some((user, password)) if !user.is_empty() && !password.is_empty() => Ok(ZkAuth {
                scheme: "digest".into(),
                credential: user_password.as_bytes().to_vec(),
            }),
            _ => Err(ZkError::BadCredential {
                reason: "a digest credential must look like \"user:password\", both non-empty",
            }),
        }
    }

    /// A credential for another scheme the server has an authentication
    /// provider for (ZooKeeper's `AuthenticationProvider` plug-ins). A scheme
    /// the server does not know ends the session with "authentication
    /// failed".
    pub fn new(scheme: &str, credential: &[u8]) -> ZkAuth {
        ZkAuth {
            scheme: scheme.to_string(),
            credential: credential.to_vec(),
        }
    }

    /// The scheme (`"digest"`, ...).
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The user of a `digest` credential (the part before `:`), for log
    /// and error messages; `None` for other schemes.
    pub fn user(&self) -> Option<&str> {
        if self.scheme != "digest" {
            return None;
        }
        std::str::from_utf8(&self.credential)
            .ok()
            .and_then(|c| c.split_once(':'))
            .map(|(user, _)| user)
    }

    /// `scheme` or `scheme:user`, never the secret.
    pub(super) fn describe(&self) -> String {
        match self.user() {
            Some(user) => format!("{}:{user}", self.scheme),
            None => self.scheme.clone(),
        }
    }
}

impl fmt::Debug for ZkAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZkAuth")
            .field("scheme", &self.scheme)
            .field("user", &self.user())
            .field("credential", &"<redacted>")
            .finish()
    }
}

/// What kind of znode [`ZkClient::create`] makes.
///
/// The course passes the C API's flag (`0` or `ZOO_EPHEMERAL`); a two-value
/// enum says the same thing without magic numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CreateMode {
    /// Stays until someone deletes it. The course uses it for the
    /// `/ServiceName` parent nodes, which outlive any one provider.
    Persistent,
    /// Lives as long as the session that created it: ZooKeeper deletes it when
    /// the session is closed or expires. The course uses it for the
    /// `/ServiceName/MethodName` nodes that hold a provider's `ip:port`, so a
    /// provider that dies disappears from the registry by itself.
    Ephemeral,
}

/// Everything that can go wrong talking to ZooKeeper.
///
/// Each variant names the address or the path involved, so the message alone
/// tells an operator where to look.
#[derive(Debug)]
#[non_exhaustive]
pub enum ZkError {
    /// ZooKeeper (or the client crate) rejected the session itself, for
    /// example a malformed `ip:port` string.
    Connect {
        /// The connect string that was used.
        addr: String,
        /// What the client crate reported.
        source: zk::Error,
    },
    /// ZooKeeper refused the session's credential (an unknown scheme, or a
    /// server that enforces SASL). Retrying with the same credential cannot
    /// help.
    AuthFailed {
        /// The connect string that was used.
        addr: String,
        /// The scheme and, for `digest`, the user (never the password).
        identity: String,
    },
    /// A credential that cannot be used (for example `digest` without `:`).
    BadCredential {
        /// What is wrong with it (without repeating it: it holds a secret).
        reason: &'static str,
    },
    /// The znode's ACL does not allow this session to do `op`: it has no
    /// credential, or another identity owns the node.
    NoAuth {
        /// The ZooKeeper address of this client.
        addr: String,
        /// The operation that was refused.
        op: &'static str,
        /// The znode path of that operation.
        path: String,
        /// The identity this session authenticated as (scheme and user),
        /// `None` without a credential.
        identity: Option<String>,
    },
    /// No session could be opened in time: usually nothing listens at `addr`.
    ConnectTimeout {
        /// The connect string that was used.
        addr: String,
        /// How long [`ZkClient::start`] kept trying.
        waited: Duration,
    },
    /// The znode does not exist.
    NoNode {
        /// The path that was asked for.
        path: String,
    },
    /// A znode could not be created because its parent does not exist
    /// (ZooKeeper never creates parents implicitly).
    NoParent {
        /// The path that was to be created.
        path: String,
    },
    /// The session is gone or cut off: the connection was lost, the session
    /// expired, or ZooKeeper is down. A later call will not succeed on this
    /// client once the session has expired.
    Unavailable {
        /// The ZooKeeper address of this client.
        addr: String,
        /// The operation that failed (`"create"`, `"get_data"`, ...).
        op: &'static str,
        /// The znode path of that operation.
        path: String,
        /// What the client crate reported.
        source: zk::Error,
    },
    /// ZooKeeper gave no answer within the client's operation limit.
    Timeout {
        /// The ZooKeeper address of this client.
        addr: String,
        /// The operation that was waiting.
        op: &'static str,
        /// The znode path of that operation.
        path: String,
        /// How long it waited.
        waited: Duration,
    },
    /// [`ZkClient::close`] could not confirm that the session was closed.
    CloseTimeout {
        /// The ZooKeeper address of this client.
        addr: String,
        /// How long it waited for the confirmation.
        waited: Duration,
    },
    /// ZooKeeper refused the request for another reason (an invalid path, a
    /// node that still has children, missing permissions, ...).
    Request {
        /// The ZooKeeper address of this client.
        addr: String,
        /// The operation that was refused.
        op: &'static str,
        /// The znode path of that operation.
        path: String,
        /// What the client crate reported.
        source: zk::Error,
    },
}

impl fmt::Display for ZkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZkError::Connect { addr, source } => {
                // Quoted: a malformed address may be empty or contain spaces.
                write!(f, "cannot open a ZooKeeper session at {addr:?}: {source}")
            }
            ZkError::ConnectTimeout { addr, waited } => write!(
                f,
                "no ZooKeeper session at {addr} after {} ms: is ZooKeeper running there?",
                waited.as_millis()
            ),
            ZkError::AuthFailed { addr, identity } => write!(
                f,
                "ZooKeeper at {addr} refused authentication as {identity}: \
                 check the scheme and the server's authentication providers"
            ),
            ZkError::BadCredential { reason } => {
                write!(f, "unusable ZooKeeper credential: {reason}")
            }
            ZkError::NoAuth {
                addr,
                op,
                path,
                identity,
            } => match identity {
                Some(identity) => write!(
                    f,
                    "ZooKeeper at {addr} refused {op} {path:?}: not authorized for {identity} \
                     (the znode's ACL grants it to another identity: check zk_auth)"
                ),
                None => write!(
                    f,
                    "ZooKeeper at {addr} refused {op} {path:?}: not authorized \
                     (the znode's ACL requires a credential and this session has none: set zk_auth)"
                ),
            },
            ZkError::NoNode { path } => write!(f, "znode {path} does not exist"),
            ZkError::NoParent { path } => {
                write!(
                    f,
                    "cannot create znode {path}: its parent znode does not exist"
                )
            }
            ZkError::Unavailable {
                addr,
                op,
                path,
                source,
            } => write!(
                f,
                "ZooKeeper at {addr} is unavailable ({op} {path}): {source}"
            ),
            ZkError::Timeout {
                addr,
                op,
                path,
                waited,
            } => write!(
                f,
                "ZooKeeper at {addr} did not answer {op} {path} within {} ms",
                waited.as_millis()
            ),
            ZkError::CloseTimeout { addr, waited } => write!(
                f,
                "ZooKeeper at {addr} did not confirm the session close within {} ms; \
                 its ephemeral znodes stay until the session times out",
                waited.as_millis()
            ),
            ZkError::Request {
                addr,
                op,
                path,
                source,
                // Quoted: a malformed path may be empty or contain spaces.
            } => write!(f, "ZooKeeper at {addr} refused {op} {path:?}: {source}"),
        }
    }
}

impl Error for ZkError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            ZkError::Connect { source, .. }
            | ZkError::Unavailable { source, .. }
            | ZkError::Request { source, .. } => Some(source),
            _ => None,
        }
    }
}
