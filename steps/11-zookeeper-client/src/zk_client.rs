//! `ZkClient`: the course's small ZooKeeper wrapper (`zookeeperutil.h`), in async Rust.
//!
//! The C++ course wraps the ZooKeeper C API in a class with three jobs: open a
//! session (`Start`), create a znode (`Create`) and read one (`GetData`). This
//! module keeps those three jobs and names, on top of the `zookeeper-client`
//! crate (feature `tokio`), and adds what the C++ version leaves out: every
//! wait is bounded and every failure comes back as a [`ZkError`] that names the
//! ZooKeeper address or the znode path involved.

use std::time::{Duration, Instant};

use zookeeper_client as zk;

/// Metadata of a znode (version, owner, sizes, ...), re-exported: its
/// [`Stat::ephemeral_owner`] is the owning session, 0 for a persistent node.
pub use zookeeper_client::Stat;

/// The session timeout `zookeeper-client` asks for when given `Duration::ZERO`.
const CRATE_DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(6);

/// Extra time [`ZkClient::start`] allows on top of the session timeout, so
/// that a bug below us cannot turn into a hang.
const CONNECT_GRACE: Duration = Duration::from_secs(1);

/// What kind of znode [`ZkClient::create`] makes.
///
/// The course passes the C API's flag (`0` or `ZOO_EPHEMERAL`); a two-value
/// enum says the same thing without magic numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateMode {
    /// Stays until deleted: the course's `/ServiceName` parent nodes.
    Persistent,
    /// Lives as long as the session that created it: the course's
    /// `/ServiceName/MethodName` nodes holding a provider's `ip:port`, so a
    /// provider that dies disappears from the registry by itself.
    Ephemeral,
}

// ANCHOR: errors
/// Everything that can go wrong talking to ZooKeeper.
///
/// Each variant names the address or the path involved, so the message alone
/// tells an operator where to look.
#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    /// ZooKeeper (or the client crate) rejected the session itself, for
    /// example a malformed `ip:port` string.
    // Quoted: a malformed address may be empty or contain spaces.
    #[error("cannot open a ZooKeeper session at {addr:?}: {source}")]
    Connect {
        /// The connect string that was used.
        addr: String,
        /// What the client crate reported.
        source: zk::Error,
    },
    /// No session could be opened in time: usually nothing listens at `addr`.
    #[error("no ZooKeeper session at {addr} after {} ms: is ZooKeeper running there?", .waited.as_millis())]
    ConnectTimeout {
        /// The connect string that was used.
        addr: String,
        /// How long [`ZkClient::start`] kept trying.
        waited: Duration,
    },
    /// The znode does not exist.
    #[error("znode {path} does not exist")]
    NoNode {
        /// The path that was asked for.
        path: String,
    },
    /// A znode could not be created because its parent does not exist
    /// (ZooKeeper never creates parents implicitly).
    #[error("cannot create znode {path}: its parent znode does not exist")]
    NoParent {
        /// The path that was to be created.
        path: String,
    },
    /// The session is gone or cut off: the connection was lost, the session
    /// expired, or ZooKeeper is down. A later call will not succeed on this
    /// client once the session has expired.
    #[error("ZooKeeper at {addr} is unavailable ({op} {path}): {source}")]
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
    // ANCHOR_END: errors
    // ANCHOR: errors_more
    /// ZooKeeper gave no answer within the client's operation limit.
    #[error("ZooKeeper at {addr} did not answer {op} {path} within {} ms", .waited.as_millis())]
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
    #[error(
        "ZooKeeper at {addr} did not confirm the session close within {} ms; \
         its ephemeral znodes stay until the session times out",
        .waited.as_millis()
    )]
    CloseTimeout {
        /// The ZooKeeper address of this client.
        addr: String,
        /// How long it waited for the confirmation.
        waited: Duration,
    },
    /// An ephemeral znode exists, owned by another live session, with data
    /// other than ours: another provider's registration, left as it is.
    #[error("znode {path} is held by another session ({owner:#x}) with {data:?}; left as it is")]
    Taken {
        /// The znode path.
        path: String,
        /// The session that owns it.
        owner: i64,
        /// What it holds (a provider's `ip:port`).
        data: String,
    },
    /// ZooKeeper refused the request for another reason (an invalid path, a
    /// node that still has children, missing permissions, ...).
    // Quoted: a malformed path may be empty or contain spaces.
    #[error("ZooKeeper at {addr} refused {op} {path:?}: {source}")]
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

// ANCHOR_END: errors_more

/// One ZooKeeper session, with the course's `Start` / `Create` / `GetData`.
///
/// Must be used inside a tokio runtime: the client crate runs the session
/// (pings, reconnects, replies) as a background task on it.
///
/// Ephemeral znodes belong to the session. A dropped client's session is
/// closed only if its runtime keeps running; otherwise its znodes stay until
/// ZooKeeper expires it, as after a crash. [`ZkClient::close`] closes the
/// session and waits for ZooKeeper to confirm.
#[derive(Debug)]
pub struct ZkClient {
    /// The session handle from `zookeeper-client`.
    client: zk::Client,
    /// The `ip:port` this client was started with, for error messages.
    addr: String,
    /// How long [`ZkClient::close`] waits for ZooKeeper's confirmation.
    op_timeout: Duration,
}

impl ZkClient {
    // ANCHOR: start
    /// Opens a ZooKeeper session at `connect` (`"ip:port"`, or a comma-separated
    /// list of them) asking for `session_timeout`.
    ///
    /// ZooKeeper expires a session it has not heard from for the session
    /// timeout, and deletes its ephemeral znodes; the client pings to stay
    /// alive. (The course notes first claim the C API sends no heartbeat, then
    /// correct it: it pings at 1/3 of the timeout; `zookeeper-client` at 3/20.)
    /// The server may adjust the timeout; [`ZkClient::session_timeout`] says.
    ///
    /// If nothing answers, the client crate retries for about one session
    /// timeout; this returns [`ZkError::ConnectTimeout`] at most one second
    /// later. (The course's client waited for the session forever.)
    pub async fn start(connect: &str, session_timeout: Duration) -> Result<ZkClient, ZkError> {
        let budget = if session_timeout.is_zero() {
            CRATE_DEFAULT_SESSION_TIMEOUT
        } else {
            session_timeout
        };
        let started = Instant::now();
        let connecting = zk::Client::connector()
            .with_session_timeout(session_timeout)
            .connect(connect);
        let addr = connect.to_string();
        let client = match tokio::time::timeout(budget + CONNECT_GRACE, connecting).await {
            Ok(Ok(client)) => client,
            // The crate's own deadline (about one session timeout) passed.
            Ok(Err(zk::Error::Timeout)) | Err(_) => {
                let waited = started.elapsed();
                return Err(ZkError::ConnectTimeout { addr, waited });
            }
            Ok(Err(source)) => return Err(ZkError::Connect { addr, source }),
        };
        // Requests need no limit of their own: while disconnected the crate
        // fails them once the session expires, 7/5 of the session timeout
        // after the last answer (`final/` bounds each request anyway).
        let op_timeout = client.session_timeout() * 2;
        Ok(ZkClient {
            client,
            addr,
            op_timeout,
        })
    }
    // ANCHOR_END: start

    // ANCHOR: create
    /// Creates the znode `path` holding `data`; a node that already exists is
    /// fine, as in the course.
    ///
    /// The course asks `zoo_exists` first and creates only if the node is
    /// missing; between the two calls another client may create it. Creating
    /// straight away and treating "node exists" as success has no such gap.
    ///
    /// An existing persistent node keeps its data. An existing *ephemeral* node
    /// of another session that holds the same `data` is our own from an earlier
    /// run (killed with `kill -9`: ZooKeeper keeps its session until it times
    /// out) and is replaced; keeping it would make our registration vanish when
    /// that old session expires. One holding other data belongs to another live
    /// provider: it is left alone and the answer is [`ZkError::Taken`].
    ///
    /// The parent must exist ([`ZkError::NoParent`] otherwise): create
    /// `/Service` before `/Service/Method`.
    pub async fn create(&self, path: &str, data: &[u8], mode: CreateMode) -> Result<(), ZkError> {
        let options = match mode {
            CreateMode::Persistent => zk::CreateMode::Persistent,
            CreateMode::Ephemeral => zk::CreateMode::Ephemeral,
        }
        // Open ACL, like the course's ZOO_OPEN_ACL_UNSAFE; a shared ZooKeeper
        // would restrict writes to the service's own identity.
        .with_acls(zk::Acls::anyone_all());
        match self.client.create(path, data, &options).await {
            Ok(_) => Ok(()),
            Err(zk::Error::NodeExists) if mode == CreateMode::Persistent => Ok(()),
            Err(zk::Error::NodeExists) => self.claim_ephemeral(path, data, &options).await,
            Err(zk::Error::NoNode) => Err(ZkError::NoParent { path: path.into() }),
            Err(source) => Err(self.failed("create", path, source)),
        }
    }
    // ANCHOR_END: create
    // ANCHOR: claim_ephemeral
    /// Makes sure the existing ephemeral znode `path` is owned by this session:
    /// replaces our own stale node (same `data`), leaves anyone else's alone.
    async fn claim_ephemeral(
        &self,
        path: &str,
        data: &[u8],
        options: &zk::CreateOptions<'_>,
    ) -> Result<(), ZkError> {
        let existing = match self.client.get_data(path).await {
            Ok(found) => Some(found),
            Err(zk::Error::NoNode) => None,
            Err(source) => return Err(self.failed("create", path, source)),
        };
        // `None`: deleted in the meantime (its session just ended), so simply create it below.
        if let Some((held, stat)) = existing {
            if stat.ephemeral_owner == self.client.session_id().0 {
                return Ok(());
            }
            if held != data {
                return Err(ZkError::Taken {
                    path: path.to_string(),
                    owner: stat.ephemeral_owner,
                    data: String::from_utf8_lossy(&held).into_owned(),
                });
            }
            // Delete only the version we looked at; if it changed meanwhile,
            // someone else is registering and the create below sorts it out.
            match self.client.delete(path, Some(stat.version)).await {
                Ok(()) | Err(zk::Error::NoNode) | Err(zk::Error::BadVersion) => {}
                Err(source) => return Err(self.failed("create", path, source)),
            }
        }
        match self.client.create(path, data, options).await {
            // Another session won the race: the node exists, as asked.
            Ok(_) | Err(zk::Error::NodeExists) => Ok(()),
            Err(zk::Error::NoNode) => Err(ZkError::NoParent { path: path.into() }),
            Err(source) => Err(self.failed("create", path, source)),
        }
    }
    // ANCHOR_END: claim_ephemeral

    // ANCHOR: get_data
    /// Reads the data of znode `path` (in the course: a provider's `ip:port`).
    ///
    /// A missing node is [`ZkError::NoNode`] naming the path, which for a
    /// caller means "nobody provides this method right now".
    pub async fn get_data(&self, path: &str) -> Result<Vec<u8>, ZkError> {
        match self.client.get_data(path).await {
            Ok((data, _stat)) => Ok(data),
            Err(source) => Err(self.failed("get_data", path, source)),
        }
    }
    // ANCHOR_END: get_data

    /// Returns the [`Stat`] of znode `path`, or `None` if it does not exist.
    pub async fn exists(&self, path: &str) -> Result<Option<Stat>, ZkError> {
        self.client
            .check_stat(path)
            .await
            .map_err(|source| self.failed("exists", path, source))
    }

    /// Lists the names (not full paths) of the children of znode `path`, in no particular order.
    pub async fn get_children(&self, path: &str) -> Result<Vec<String>, ZkError> {
        self.client
            .list_children(path)
            .await
            .map_err(|source| self.failed("get_children", path, source))
    }

    /// The session id; ephemeral znodes of this session carry it as
    /// [`Stat::ephemeral_owner`].
    pub fn session_id(&self) -> i64 {
        self.client.session_id().0
    }

    /// The session timeout agreed with the server.
    pub fn session_timeout(&self) -> Duration {
        self.client.session_timeout()
    }

    // ANCHOR: close
    /// Closes the session and waits until ZooKeeper has confirmed it, so this
    /// session's ephemeral znodes are gone when it returns `Ok`.
    pub async fn close(self) -> Result<(), ZkError> {
        let (client, addr, waited) = (self.client, self.addr, self.op_timeout);
        let mut state = client.state_watcher();
        // Dropping the last handle is how `zookeeper-client` closes a session:
        // its background task then sends ZooKeeper a close request.
        drop(client);
        let closed = async {
            let mut current = state.peek_state();
            while !current.is_terminated() {
                current = state.changed().await;
            }
        };
        tokio::time::timeout(waited, closed)
            .await
            .map_err(|_| ZkError::CloseTimeout { addr, waited })
    }
    // ANCHOR_END: close

    /// Turns an error from the client crate into a [`ZkError`] for `op` on `path`.
    fn failed(&self, op: &'static str, path: &str, source: zk::Error) -> ZkError {
        let path = path.to_string();
        let addr = self.addr.clone();
        match source {
            zk::Error::NoNode => ZkError::NoNode { path },
            zk::Error::ConnectionLoss
            | zk::Error::SessionExpired
            | zk::Error::ClientClosed
            | zk::Error::Timeout => ZkError::Unavailable {
                addr,
                op,
                path,
                source,
            },
            source => ZkError::Request {
                addr,
                op,
                path,
                source,
            },
        }
    }
}
