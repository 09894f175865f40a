//! `ZkClient`: the course's small ZooKeeper wrapper (`zookeeperutil.h`), in async Rust.
//!
//! The same wrapper as in step 11, plus what [`crate::registry::ZkRegistry`]
//! needs on top: deleting znodes, listing children *with a watch*, creating
//! a path with its parents, observing the session state (to notice expiry
//! and open a new session), and optional authentication with ACLs that keep
//! other ZooKeeper clients from changing what this one created
//! ([`ZkAuth`], [`ZkClient::start_with_auth`]).
//!
//! The C++ course wraps the ZooKeeper C API in a class with three jobs: open a
//! session (`Start`), create a znode (`Create`) and read one (`GetData`). This
//! module keeps those three jobs and names, on top of the `zookeeper-client`
//! crate (feature `tokio`), and adds what the C++ version leaves out: every
//! wait is bounded and every failure comes back as a [`ZkError`] that names the
//! ZooKeeper address or the znode path involved.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use zookeeper_client as zk;

/// Metadata of a znode, as ZooKeeper reports it (version, owner, sizes, ...).
///
/// Re-exported so callers can read [`Stat::ephemeral_owner`] without naming
/// the client crate: it is the owning session id for an ephemeral node and 0
/// for a persistent one.
pub use zookeeper_client::Stat;

/// One entry of a znode's ACL (scheme, id, permissions), as returned by
/// [`ZkClient::get_acl`]; re-exported with [`Permission`] for the same
/// reason as [`Stat`].
pub use zookeeper_client::{Acl, Permission};

// The credential, node modes and errors, in a file of their own.
mod types;
pub use types::{CreateMode, ZkAuth, ZkError};

/// The session timeout `zookeeper-client` asks for when given `Duration::ZERO`.
const CRATE_DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(6);

/// Extra time [`ZkClient::start`] allows on top of the session timeout.
///
/// The client crate already gives up after about one session timeout; this
/// outer limit only guarantees that a bug below us cannot turn into a hang.
const CONNECT_GRACE: Duration = Duration::from_secs(1);

// ANCHOR: registry_acl
/// The ACL of every znode an authenticated client creates: everything for the
/// identity that created it, read (get data, list children, watch) for
/// everyone.
///
/// `auth` is ZooKeeper's placeholder for "the identities this session has
/// authenticated as"; the server replaces it by the real id
/// (`digest:user:<base64 sha1>`) when it stores the node. Read for everyone
/// keeps discovery working for callers that carry no credential; ALL for
/// the creator alone means only holders of the same credential can add
/// children (fake providers), delete them (unregister a live provider),
/// overwrite data or change the ACL. A deployment that must hide the
/// provider list would give READ to a callers' identity instead of to
/// `world:anyone`.
pub static CREATOR_ALL_WORLD_READ: [zk::Acl; 2] = [
    zk::Acl::new_const(zk::Permission::ALL, "auth", ""),
    zk::Acl::new_const(zk::Permission::READ, "world", "anyone"),
];
// ANCHOR_END: registry_acl

// ANCHOR: course_parent_acl
/// The ACL of a course `/<Service>` node made by an authenticated client:
/// everything for the creator, and for everyone reading *and creating
/// children*. The course's providers carry no credential and register by
/// creating `/<Service>/<Method>` under it; without CREATE they could not,
/// and a migration could not run C++ and final/ providers side by side.
/// Everyone lacks DELETE, so nobody without the credential can delete the
/// method nodes a final/ provider holds under it.
static COURSE_PARENT_ACL: std::sync::LazyLock<[zk::Acl; 2]> = std::sync::LazyLock::new(|| {
    [
        zk::Acl::new_const(zk::Permission::ALL, "auth", ""),
        zk::Acl::new_const(
            zk::Permission::READ | zk::Permission::CREATE,
            "world",
            "anyone",
        ),
    ]
});
// ANCHOR_END: course_parent_acl

/// How often [`ZkClient::restrict_open_acl`] re-reads an ACL that another
/// client changed between our read and our write.
const ACL_ATTEMPTS: usize = 3;
/// One ZooKeeper session, with the course's `Start` / `Create` / `GetData`.
///
/// Must be used inside a tokio runtime: the client crate runs the session
/// (pings, reconnects, replies) as a background task on it.
///
/// Ephemeral znodes belong to the session. Dropping the last `ZkClient` asks
/// the background task to close the session, but only a runtime that keeps
/// running gets to send that request: a program that drops its client and
/// returns from `main` straight away leaves its ephemeral znodes behind until
/// ZooKeeper expires the session, one session timeout later (the same as a
/// crash). [`ZkClient::close`] closes the session and waits for ZooKeeper to
/// confirm, so the ephemeral znodes are gone when it returns.
#[derive(Debug)]
pub struct ZkClient {
    /// The session handle from `zookeeper-client`.
    client: zk::Client,
    /// The `ip:port` this client was started with, for error messages.
    addr: String,
    /// Upper bound on any single request, derived from the session timeout.
    op_timeout: Duration,
    /// Scheme and user this session authenticated as, for error messages;
    /// `None` without a credential.
    identity: Option<String>,
    /// ACL given to every znode this client creates: open without a
    /// credential (as in the course), [`CREATOR_ALL_WORLD_READ`] with one.
    acls: zk::Acls<'static>,
}

impl ZkClient {
    // ANCHOR: start
    /// Opens a ZooKeeper session at `connect` (`"ip:port"`, or a comma-separated
    /// list of them) asking for `session_timeout`.
    ///
    /// ZooKeeper expires a session it has not heard from for the session
    /// timeout, and then deletes that session's ephemeral znodes. To stay
    /// alive, the client pings whenever it has been quiet for a while. (The
    /// course notes first claim the C API sends no heartbeat, then correct it:
    /// the C client pings at 1/3 of the timeout. `zookeeper-client` pings after
    /// 3/20 of it and treats the connection as lost after 2/5 without an
    /// answer, which leaves time to reconnect before the session expires.)
    ///
    /// The server may adjust the timeout (by default to between 2 and 20 of
    /// its `tickTime`s); [`ZkClient::session_timeout`] reports what was agreed.
    ///
    /// If nothing answers at `connect`, the client crate keeps retrying with
    /// backoff for about one session timeout and then gives up; this returns
    /// [`ZkError::ConnectTimeout`] at the latest one second after that. A real
    /// service would retry on its own schedule or let its supervisor restart it.
    ///
    /// The session carries no credential and creates znodes with the open
    /// ACL, as the course does; see [`ZkClient::start_with_auth`].
    pub async fn start(connect: &str, session_timeout: Duration) -> Result<ZkClient, ZkError> {
        ZkClient::start_with_auth(connect, session_timeout, None).await
    }
    // ANCHOR_END: start

    // ANCHOR: start_with_auth
    /// Like [`ZkClient::start`], and with `Some(auth)` the session
    /// authenticates with that credential and every znode it creates gets
    /// the ACL "all rights for this identity, read for everyone"
    /// ([`CREATOR_ALL_WORLD_READ`]).
    ///
    /// The credential is part of the connect request, so the client crate
    /// sends it again on every reconnection of this session; a new session
    /// (after expiry) must be started with it again.
    ///
    /// A credential the server refuses is [`ZkError::AuthFailed`], at once:
    /// no retrying helps. (The `digest` scheme never refuses: a wrong
    /// password only makes a different identity, which then meets
    /// [`ZkError::NoAuth`] on the nodes of the right one.)
    pub async fn start_with_auth(
        connect: &str,
        session_timeout: Duration,
        auth: Option<&ZkAuth>,
    ) -> Result<ZkClient, ZkError> {
        let budget = if session_timeout.is_zero() {
            CRATE_DEFAULT_SESSION_TIMEOUT
        } else {
            session_timeout
        };
        let started = Instant::now();
        let mut connector = zk::Client::connector().with_session_timeout(session_timeout);
        if let Some(auth) = auth {
            connector = connector.with_auth(&auth.scheme, &auth.credential);
        }
        let connecting = connector.connect(connect);
        let client = match tokio::time::timeout(budget + CONNECT_GRACE, connecting).await {
            Ok(Ok(client)) => client,
            // The crate's own deadline (about one session timeout) passed.
            Ok(Err(zk::Error::Timeout)) | Err(_) => {
                return Err(ZkError::ConnectTimeout {
                    addr: connect.to_string(),
                    waited: started.elapsed(),
                });
            }
            Ok(Err(zk::Error::AuthFailed)) => {
                return Err(ZkError::AuthFailed {
                    addr: connect.to_string(),
                    identity: auth.map_or_else(|| "nobody".into(), ZkAuth::describe),
                });
            }
            Ok(Err(source)) => {
                return Err(ZkError::Connect {
                    addr: connect.to_string(),
                    source,
                });
            }
        };
        // While disconnected the crate queues requests and fails them once the
        // session is declared expired, 7/5 of the session timeout after the
        // last answer. Twice the session timeout is therefore never reached
        // unless something below us is broken.
        let op_timeout = client.session_timeout() * 2;
        let acls = match auth {
            // The course's ZOO_OPEN_ACL_UNSAFE: anyone may do anything.
            None => zk::Acls::anyone_all(),
            Some(_) => zk::Acls::new(&CREATOR_ALL_WORLD_READ),
        };
        Ok(ZkClient {
            client,
            addr: connect.to_string(),
            op_timeout,
            identity: auth.map(ZkAuth::describe),
            acls,
        })
    }
    // ANCHOR_END: start_with_auth

    // ANCHOR: create
    /// Creates the znode `path` holding `data`; a node that already exists is
    /// fine, as in the course.
    ///
    /// The course asks `zoo_exists` first and creates only if the node is
    /// missing; between the two calls another client may create it. Creating
    /// straight away and treating "node exists" as success has no such gap.
    ///
    /// An existing persistent node keeps its data. An existing *ephemeral* node
    /// that belongs to another session is replaced: typically it is left over
    /// from this same provider's previous run, whose session ZooKeeper has not
    /// expired yet. Keeping it would make our registration vanish when that old
    /// session expires, although we are still running.
    ///
    /// The parent must exist ([`ZkError::NoParent`] otherwise): create
    /// `/Service` before `/Service/Method`.
    pub async fn create(&self, path: &str, data: &[u8], mode: CreateMode) -> Result<(), ZkError> {
        if self.create_if_absent(path, data, mode).await? || mode == CreateMode::Persistent {
            return Ok(());
        }
        self.claim_ephemeral(path, data, &self.create_options(mode))
            .await
    }

    /// How this client creates a node of `mode`: open without a credential,
    /// creator-all plus world-read with one (see `start_with_auth`).
    fn create_options(&self, mode: CreateMode) -> zk::CreateOptions<'static> {
        match mode {
            CreateMode::Persistent => zk::CreateMode::Persistent,
            CreateMode::Ephemeral => zk::CreateMode::Ephemeral,
        }
        .with_acls(self.acls)
    }

    /// Makes sure the existing ephemeral znode `path` is owned by this session,
    /// replacing it if another session owns it.
    async fn claim_ephemeral(
        &self,
        path: &str,
        data: &[u8],
        options: &zk::CreateOptions<'_>,
    ) -> Result<(), ZkError> {
        let existing = self
            .bounded("create", path, self.client.check_stat(path))
            .await?
            .map_err(|source| self.failed("create", path, source))?;
        // `None`: deleted in the meantime (its session just ended), so simply
        // create it below.
        if let Some(stat) = existing {
            if stat.ephemeral_owner == self.client.session_id().0 {
                return Ok(());
            }
            // Delete only the version we looked at; if it changed meanwhile,
            // someone else is registering and the create below sorts it out.
            match self
                .bounded("create", path, self.client.delete(path, Some(stat.version)))
                .await?
            {
                Ok(()) | Err(zk::Error::NoNode) | Err(zk::Error::BadVersion) => {}
                Err(source) => return Err(self.failed("create", path, source)),
            }
        }
        match self
            .bounded("create", path, self.client.create(path, data, options))
            .await?
        {
            // Another session won the race: the node exists, as asked.
            Ok(_) | Err(zk::Error::NodeExists) => Ok(()),
            Err(zk::Error::NoNode) => Err(ZkError::NoParent {
                path: path.to_string(),
            }),
            Err(source) => Err(self.failed("create", path, source)),
        }
    }
    // ANCHOR_END: create

    // ANCHOR: get_data
    /// Reads the data of znode `path` (in the course: a provider's `ip:port`).
    ///
    /// A missing node is [`ZkError::NoNode`] naming the path, which for a
    /// caller means "nobody provides this method right now".
    pub async fn get_data(&self, path: &str) -> Result<Vec<u8>, ZkError> {
        match self
            .bounded("get_data", path, self.client.get_data(path))
            .await?
        {
            Ok((data, _stat)) => Ok(data),
            Err(source) => Err(self.failed("get_data", path, source)),
        }
    }
    // ANCHOR_END: get_data

    /// Returns the [`Stat`] of znode `path`, or `None` if it does not exist.
    pub async fn exists(&self, path: &str) -> Result<Option<Stat>, ZkError> {
        self.bounded("exists", path, self.client.check_stat(path))
            .await?
            .map_err(|source| self.failed("exists", path, source))
    }

    /// Lists the names (not full paths) of the children of znode `path`, in
    /// no particular order.
    pub async fn get_children(&self, path: &str) -> Result<Vec<String>, ZkError> {
        self.bounded("get_children", path, self.client.list_children(path))
            .await?
            .map_err(|source| self.failed("get_children", path, source))
    }

    /// Creates `path` and any missing parents as persistent znodes without
    /// data (like `mkdir -p`). Existing nodes are left alone.
    pub async fn create_path(&self, path: &str) -> Result<(), ZkError> {
        let mut at = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            at.push('/');
            at.push_str(part);
            self.create(&at, b"", CreateMode::Persistent).await?;
        }
        Ok(())
    }

    /// The ACL of znode `path`: who may do what with it.
    pub async fn get_acl(&self, path: &str) -> Result<Vec<Acl>, ZkError> {
        self.bounded("get_acl", path, self.client.get_acl(path))
            .await?
            .map(|(acl, _stat)| acl)
            .map_err(|source| self.failed("get_acl", path, source))
    }

    // ANCHOR: restrict_open_acl
    /// Gives the existing znode `path` this client's ACL if it is open to
    /// everyone, and reports whether it changed anything.
    ///
    /// [`ZkClient::create`] leaves an existing node alone, so a registry
    /// created before authentication was switched on (or by a provider
    /// without a credential) would stay writable by anyone. "Open" means
    /// `world:anyone` may do more than read; a node that already belongs to
    /// an identity is not touched (if it is another identity, writing under
    /// it fails with [`ZkError::NoAuth`] anyway). Without a credential this
    /// does nothing: there is no identity to hand the node to.
    pub async fn restrict_open_acl(&self, path: &str) -> Result<bool, ZkError> {
        if self.identity.is_none() {
            return Ok(false);
        }
        for _ in 0..ACL_ATTEMPTS {
            let (acl, stat) = self
                .bounded("get_acl", path, self.client.get_acl(path))
                .await?
                .map_err(|source| self.failed("get_acl", path, source))?;
            let open = acl.iter().any(|entry| {
                entry.scheme() == "world"
                    && entry.id() == "anyone"
                    && entry.permission() != (entry.permission() & zk::Permission::READ)
            });
            if !open {
                return Ok(false);
            }
            // Only the ACL version we looked at: if another client changed
            // the ACL in between, look again instead of overwriting theirs.
            match self
                .bounded(
                    "set_acl",
                    path,
                    self.client
                        .set_acl(path, &CREATOR_ALL_WORLD_READ, Some(stat.aversion)),
                )
                .await?
            {
                Ok(_) => return Ok(true),
                Err(zk::Error::BadVersion) => continue,
                Err(source) => return Err(self.failed("set_acl", path, source)),
            }
        }
        Err(ZkError::Request {
            addr: self.addr.clone(),
            op: "set_acl",
            path: path.to_string(),
            source: zk::Error::BadVersion,
        })
    }
    // ANCHOR_END: restrict_open_acl

    /// Deletes znode `path`; a node that is already gone is fine.
    pub async fn delete(&self, path: &str) -> Result<(), ZkError> {
        match self
            .bounded("delete", path, self.client.delete(path, None))
            .await?
        {
            Ok(()) | Err(zk::Error::NoNode) => Ok(()),
            Err(source) => Err(self.failed("delete", path, source)),
        }
    }

    // ANCHOR: watch_children
    /// Lists the children of `path` and leaves a one-shot watch on it: the
    /// returned [`ChildWatch`] completes at the next change of the child
    /// list, deletion of the node, or end of the session. ZooKeeper watches
    /// fire once; the caller re-arms by calling this again, and the list it
    /// reads then includes every change made in between.
    pub async fn watch_children(&self, path: &str) -> Result<(Vec<String>, ChildWatch), ZkError> {
        self.bounded(
            "watch_children",
            path,
            self.client.list_and_watch_children(path),
        )
        .await?
        .map(|(children, watcher)| (children, ChildWatch(watcher)))
        .map_err(|source| self.failed("watch_children", path, source))
    }
    // ANCHOR_END: watch_children

    // ANCHOR: create_if_absent
    /// Creates znode `path` holding `data` unless it exists, and says which:
    /// `true` if this call created it, `false` if it was already there (left
    /// exactly as it was, whoever owns it).
    ///
    /// [`ZkClient::create`] replaces an ephemeral node of another session;
    /// for the course's `/<Service>/<Method>` nodes that would evict a live
    /// provider of another process (the course allows one per method), so
    /// the course layout uses this instead.
    pub async fn create_if_absent(
        &self,
        path: &str,
        data: &[u8],
        mode: CreateMode,
    ) -> Result<bool, ZkError> {
        let options = self.create_options(mode);
        match self
            .bounded("create", path, self.client.create(path, data, &options))
            .await?
        {
            Ok(_) => Ok(true),
            Err(zk::Error::NodeExists) => Ok(false),
            Err(zk::Error::NoNode) => Err(ZkError::NoParent {
                path: path.to_string(),
            }),
            Err(source) => Err(self.failed("create", path, source)),
        }
    }
    // ANCHOR_END: create_if_absent

    /// Creates the persistent znode `path` without data unless it exists,
    /// such that clients without a credential may still create children in
    /// it: the open ACL without a credential (as every node of this client),
    /// `COURSE_PARENT_ACL`'s "all for us, read and create for everyone"
    /// with one. Used for the course's `/<Service>` nodes, under which the
    /// course's own providers register. The parent must exist.
    pub async fn create_shared_parent(&self, path: &str) -> Result<(), ZkError> {
        let acls = match self.identity {
            None => self.acls,
            Some(_) => zk::Acls::new(&*COURSE_PARENT_ACL),
        };
        let options = zk::CreateMode::Persistent.with_acls(acls);
        match self
            .bounded("create", path, self.client.create(path, b"", &options))
            .await?
        {
            Ok(_) | Err(zk::Error::NodeExists) => Ok(()),
            Err(zk::Error::NoNode) => Err(ZkError::NoParent {
                path: path.to_string(),
            }),
            Err(source) => Err(self.failed("create", path, source)),
        }
    }

    // ANCHOR: watch_node
    /// Reads znode `path` and leaves a one-shot watch on it: its data and
    /// [`Stat`] (`None` if it does not exist), and a [`NodeWatch`] that
    /// completes at the node's next creation, deletion or data change, or at
    /// the end of the session.
    ///
    /// One `exists` watch covers all three events, so a node deleted between
    /// the two reads is reported as missing and the watch still fires for
    /// anything that happens after the first read.
    pub async fn watch_node(
        &self,
        path: &str,
    ) -> Result<(Option<(Vec<u8>, Stat)>, NodeWatch), ZkError> {
        let (stat, watcher) = self
            .bounded("watch_node", path, self.client.check_and_watch_stat(path))
            .await?
            .map_err(|source| self.failed("watch_node", path, source))?;
        let node = match stat {
            None => None,
            Some(_) => match self
                .bounded("watch_node", path, self.client.get_data(path))
                .await?
            {
                Ok(node) => Some(node),
                Err(zk::Error::NoNode) => None,
                Err(source) => return Err(self.failed("watch_node", path, source)),
            },
        };
        Ok((node, NodeWatch(watcher)))
    }
    // ANCHOR_END: watch_node

    /// Deletes the ephemeral znode `path` only if this session owns it, and
    /// says whether it did. A node of another session (another provider
    /// holding a course method node) is left alone.
    pub async fn delete_if_owned(&self, path: &str) -> Result<bool, ZkError> {
        let Some(stat) = self.exists(path).await? else {
            return Ok(false);
        };
        if stat.ephemeral_owner != self.session_id() {
            return Ok(false);
        }
        // Only the version we looked at (it cannot change hands while our
        // session lives, but say so rather than rely on it).
        match self
            .bounded("delete", path, self.client.delete(path, Some(stat.version)))
            .await?
        {
            Ok(()) => Ok(true),
            Err(zk::Error::NoNode) | Err(zk::Error::BadVersion) => Ok(false),
            Err(source) => Err(self.failed("delete", path, source)),
        }
    }

    /// Waits until znode `path` exists (returns at once if it does), or the
    /// session ends (then returns an error).
    pub async fn wait_exists(&self, path: &str) -> Result<(), ZkError> {
        let (stat, watcher) = self
            .bounded("wait_exists", path, self.client.check_and_watch_stat(path))
            .await?
            .map_err(|source| self.failed("wait_exists", path, source))?;
        if stat.is_none() {
            let event = watcher.changed().await;
            if event.session_state.is_terminated() {
                return Err(ZkError::Unavailable {
                    addr: self.addr.clone(),
                    op: "wait_exists",
                    path: path.to_string(),
                    source: zk::Error::SessionExpired,
                });
            }
        }
        Ok(())
    }

    /// Completes when this session has ended for good (expired, closed or
    /// refused authentication). Disconnections the client recovers from
    /// within the session timeout do not count.
    pub async fn session_ended(&self) -> SessionEnd {
        let mut state = self.client.state_watcher();
        let mut current = state.peek_state();
        while !current.is_terminated() {
            current = state.changed().await;
        }
        match current {
            zk::SessionState::Expired => SessionEnd::Expired,
            zk::SessionState::AuthFailed => SessionEnd::AuthFailed,
            _ => SessionEnd::Closed,
        }
    }

    /// Completes when the session is not connected to a server (at once if
    /// it is not now): `true` while it may still come back, `false` once it
    /// has ended for good.
    pub async fn disconnected(&self) -> bool {
        let state = self
            .state_where(|s| s == zk::SessionState::Disconnected)
            .await;
        !state.is_terminated()
    }

    /// Completes when the session is connected to a server again (at once
    /// if it is now): `true`, or `false` once it has ended for good.
    pub async fn reconnected(&self) -> bool {
        let state = self
            .state_where(|s| {
                matches!(
                    s,
                    zk::SessionState::SyncConnected | zk::SessionState::ConnectedReadOnly
                )
            })
            .await;
        !state.is_terminated()
    }

    /// The session's first state that `wanted` or the end accepts.
    async fn state_where(&self, wanted: impl Fn(zk::SessionState) -> bool) -> zk::SessionState {
        let mut state = self.client.state_watcher();
        let mut current = state.peek_state();
        while !wanted(current) && !current.is_terminated() {
            current = state.changed().await;
        }
        current
    }

    /// The connect string this client was started with.
    pub fn addr(&self) -> &str {
        &self.addr
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

    /// Closes the session and waits until ZooKeeper has confirmed it, so this
    /// session's ephemeral znodes are gone when it returns `Ok`.
    pub async fn close(self) -> Result<(), ZkError> {
        let ZkClient {
            client,
            addr,
            op_timeout,
            ..
        } = self;
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
        tokio::time::timeout(op_timeout, closed)
            .await
            .map_err(|_| ZkError::CloseTimeout {
                addr,
                waited: op_timeout,
            })
    }

    /// Runs one request under the client's operation limit.
    ///
    /// The outer `Result` is the limit, the inner one ZooKeeper's answer, so
    /// callers can handle specific answers (like "node exists") themselves.
    async fn bounded<T>(
        &self,
        op: &'static str,
        path: &str,
        request: impl Future<Output = Result<T, zk::Error>>,
    ) -> Result<Result<T, zk::Error>, ZkError> {
        tokio::time::timeout(self.op_timeout, request)
            .await
            .map_err(|_| ZkError::Timeout {
                addr: self.addr.clone(),
                op,
                path: path.to_string(),
                waited: self.op_timeout,
            })
    }

    /// Turns an error from the client crate into a [`ZkError`] for `op` on `path`.
    fn failed(&self, op: &'static str, path: &str, source: zk::Error) -> ZkError {
        let path = path.to_string();
        let addr = self.addr.clone();
        match source {
            zk::Error::NoNode => ZkError::NoNode { path },
            zk::Error::NoAuth => ZkError::NoAuth {
                addr,
                op,
                path,
                identity: self.identity.clone(),
            },
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

/// A one-shot watch on a znode's children (see [`ZkClient::watch_children`]).
#[derive(Debug)]
pub struct ChildWatch(zk::OneshotWatcher);

impl ChildWatch {
    /// Waits for the watch to fire. Returns `false` when it fired because the
    /// session ended, `true` for a change of the node or its children.
    pub async fn changed(self) -> bool {
        fired(self.0).await
    }
}

/// A one-shot watch on one znode (see [`ZkClient::watch_node`]).
#[derive(Debug)]
pub struct NodeWatch(zk::OneshotWatcher);

impl NodeWatch {
    /// Waits for the watch to fire. Returns `false` when it fired because the
    /// session ended, `true` for a creation, deletion or data change.
    pub async fn changed(self) -> bool {
        fired(self.0).await
    }
}

/// Waits for `watcher`; `false` if it fired because the session ended.
async fn fired(watcher: zk::OneshotWatcher) -> bool {
    let event = watcher.changed().await;
    !event.session_state.is_terminated()
}

/// How a session ended (see [`ZkClient::session_ended`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEnd {
    /// ZooKeeper expired it: its ephemeral znodes are gone, a new session
    /// must re-create them.
    Expired,
    /// It was closed (by us, or the client was dropped).
    Closed,
    /// Authentication failed.
    AuthFailed,
}
