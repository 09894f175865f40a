//! [`ZkRegistry`]: service discovery through ZooKeeper.
//!
//! # Znode layout
//!
//! ```text
//! /mprpc                                   persistent   (zk_root from the config)
//! /mprpc/UserServiceRpc                    persistent   one per service
//! /mprpc/UserServiceRpc/providers          persistent   parent of the provider list
//! /mprpc/UserServiceRpc/providers/127.0.0.1:8000   EPHEMERAL, data "127.0.0.1:8000"
//! /mprpc/UserServiceRpc/providers/127.0.0.1:8002   EPHEMERAL, data "127.0.0.1:8002"
//! ```
//!
//! Differences from the course, and why:
//!
//! * **per service, not per method.** A provider serves all methods of a
//!   service it publishes, so one znode per (service, provider) says it all
//!   and halves the writes.
//! * **the address is the znode's name.** Many providers of one service are
//!   just many children; a caller gets them all with one `getChildren`, and a
//!   second provider no longer collides with the first (in the course it
//!   silently failed to register). The data repeats the address for tools
//!   that read it like the course did.
//! * **a root.** Everything lives under one configurable znode, so several
//!   deployments (or tests) can share a ZooKeeper without seeing each other.
//! * **ephemeral providers, persistent parents.** A provider that dies
//!   vanishes when its session expires; the parents stay so watches on them
//!   keep working while the list is empty.
//!
//! # The course's layout
//!
//! With `[course_compat]` the same registry, on the same session, also
//! publishes and follows the C++ course's `/<Service>/<Method>` nodes (short
//! service names, at the ZooKeeper root), so that course processes and
//! final/ processes find each other during a migration; see the private
//! `course` module and the book's chapter "Migrating a C++ mprpc
//! deployment".
//!
//! # Callers: cache plus watch
//!
//! For each service a background task lists the children with a watch,
//! publishes the list to a [`tokio::sync::watch`] channel, waits for the
//! watch to fire, and lists again (ZooKeeper watches fire once). Calls read
//! the channel only: no ZooKeeper round trip on the call path, and a
//! ZooKeeper outage leaves callers with the last known list instead of no
//! list. Until ZooKeeper notices a dead provider (one session timeout), the
//! channel's own ejection keeps calls away from it.
//!
//! # Sessions
//!
//! Connecting retries with exponential backoff (and a log line per attempt)
//! until `timeouts.zk_connect_ms` runs out. Afterwards a supervisor task
//! watches the session: if ZooKeeper expires it (the process was partitioned
//! away longer than the session timeout, so its ephemeral znodes are gone),
//! it opens a new session, retrying forever, and re-creates every
//! registration; the per-service watch tasks re-arm on the new session.
//!
//! # Authentication and ACLs
//!
//! Without `zk_auth` every znode gets the open ACL, as in the course: any
//! client of the ensemble may delete a registration or add a fake one. With
//! `zk_auth = "user:password"` (or `zk_auth_file`) every session of the
//! registry authenticates with that digest credential, every znode it
//! creates (root, service, `providers`, the ephemeral provider nodes) gets
//! "all rights for this identity, read for everyone", and existing nodes of
//! the tree that are still open are switched to that ACL on registration.
//! Callers need no credential: reading, listing and watching are allowed to
//! everyone. Only holders of the credential can register, unregister or
//! change anything. The digest credential crosses the network in clear text
//! unless the ZooKeeper connection is protected (TLS or SASL).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use tokio::sync::watch;

use crate::error::Error;
use crate::registry::{ProviderList, Registry};
use crate::zk_client::{CreateMode, ZkAuth, ZkClient, ZkError};

mod course;

/// First retry delay after a failed ZooKeeper operation or connect.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Locks, ignoring poisoning (critical sections are single updates).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// ANCHOR: zk_registry
/// Discovery through ZooKeeper (see the module docs for the znode layout).
#[derive(Debug)]
pub struct ZkRegistry {
    /// State shared with the background tasks.
    inner: Arc<Inner>,
    /// Background tasks (session supervisor, one watcher per service),
    /// aborted when the registry is dropped.
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
    /// Tasks holding the course's `/<Service>/<Method>` nodes
    /// (`course_compat.register`), by path; see the `course` module.
    course_claims: Mutex<HashMap<String, tokio::task::AbortHandle>>,
    /// Course method nodes already followed (`course_compat.discover`), by
    /// path.
    course_subscriptions: Mutex<HashMap<String, watch::Receiver<ProviderList>>>,
}

/// State shared by the registry and its tasks.
#[derive(Debug)]
struct Inner {
    /// ZooKeeper connect string.
    connect: String,
    /// Root znode ("/mprpc").
    root: String,
    /// Requested session timeout.
    session_timeout: Duration,
    /// Credential every session authenticates with (`zk_auth`); `None`
    /// means open ACLs, as in the course.
    auth: Option<ZkAuth>,
    /// The current session; replaced after expiry.
    client: Mutex<Arc<ZkClient>>,
    /// Bumped each time a new session replaces an expired one.
    generation: watch::Sender<u64>,
    /// What this process registered, to re-create after session expiry.
    registrations: Mutex<BTreeSet<(String, String)>>,
    /// Every registration is in place on the current session: false from
    /// the moment a session ends (ZooKeeper deleted its ephemeral nodes)
    /// until the new session has re-created them all.
    registered: AtomicBool,
    /// The session has not been out of touch with ZooKeeper for its whole
    /// timeout: after that ZooKeeper has expired it (or will when it looks),
    /// and our nodes are gone.
    in_touch: AtomicBool,
    /// Provider lists already followed, by service.
    subscriptions: Mutex<HashMap<String, watch::Receiver<ProviderList>>>,
}
// ANCHOR_END: zk_registry

impl ZkRegistry {
    /// Connects using the config's `zookeeperip`/`zookeeperport`,
    /// `zk_root`, `zk_session_timeout_ms`, `timeouts.zk_connect_ms` and
    /// `zk_auth`/`zk_auth_file`.
    pub async fn from_config(config: &crate::MprpcConfig) -> Result<ZkRegistry, Error> {
        let addr = config
            .zookeeper_address()
            .ok_or_else(|| Error::Config("zookeeperip is not set".into()))?;
        let auth = config.zk_credential()?;
        ZkRegistry::connect_with_auth(
            &addr,
            &config.zk_root,
            config.zk_session_timeout(),
            Duration::from_millis(config.timeouts.zk_connect_ms),
            auth,
        )
        .await
    }

    /// Connects to ZooKeeper at `connect` ("ip:port"), retrying with backoff
    /// for up to `connect_budget`, without a credential (open ACLs).
    pub async fn connect(
        connect: &str,
        root: &str,
        session_timeout: Duration,
        connect_budget: Duration,
    ) -> Result<ZkRegistry, Error> {
        ZkRegistry::connect_with_auth(connect, root, session_timeout, connect_budget, None).await
    }

    /// Like [`ZkRegistry::connect`]; with `Some(auth)` every session
    /// authenticates with it and the registry's znodes are protected (see
    /// the module docs). A credential the server refuses fails at once,
    /// without retrying.
    pub async fn connect_with_auth(
        connect: &str,
        root: &str,
        session_timeout: Duration,
        connect_budget: Duration,
        auth: Option<ZkAuth>,
    ) -> Result<ZkRegistry, Error> {
        let client = connect_with_backoff(
            connect,
            session_timeout,
            auth.as_ref(),
            Some(Instant::now() + connect_budget),
        )
        .await?;
        let inner = Arc::new(Inner {
            connect: connect.to_string(),
            root: root.trim_end_matches('/').to_string(),
            session_timeout,
            auth,
            client: Mutex::new(Arc::new(client)),
            generation: watch::channel(0).0,
            registrations: Mutex::new(BTreeSet::new()),
            registered: AtomicBool::new(true),
            in_touch: AtomicBool::new(true),
            subscriptions: Mutex::new(HashMap::new()),
        });
        let supervisor = tokio::spawn(supervise(Arc::clone(&inner)));
        Ok(ZkRegistry {
            inner,
            tasks: Mutex::new(vec![supervisor.abort_handle()]),
            course_claims: Mutex::new(HashMap::new()),
            course_subscriptions: Mutex::new(HashMap::new()),
        })
    }

    /// Id of the current ZooKeeper session (changes after expiry).
    pub fn session_id(&self) -> i64 {
        self.inner.client().session_id()
    }

    /// `<root>/<service>/providers`.
    pub fn providers_path(&self, service: &str) -> String {
        self.inner.providers_path(service)
    }
}

impl ZkRegistry {
    /// The receiver `subs` holds for `key`; on first use a new one, kept
    /// current by a background task `follower(inner, sender)`. Waits
    /// (bounded) for the first list, so that the first call sees the
    /// providers: the stored receiver never marks updates seen, so for a
    /// clone this returns at once if the list already arrived.
    async fn followed<F, Fut>(
        &self,
        subs: &Mutex<HashMap<String, watch::Receiver<ProviderList>>>,
        key: &str,
        follower: F,
    ) -> watch::Receiver<ProviderList>
    where
        F: FnOnce(Arc<Inner>, watch::Sender<ProviderList>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let mut rx = {
            let mut subs = lock(subs);
            match subs.get(key) {
                Some(rx) => rx.clone(),
                None => {
                    let (tx, rx) = watch::channel(ProviderList::from(Vec::new()));
                    subs.insert(key.to_string(), rx.clone());
                    let task = tokio::spawn(follower(Arc::clone(&self.inner), tx));
                    lock(&self.tasks).push(task.abort_handle());
                    rx
                }
            }
        };
        let wait = self.inner.session_timeout.max(Duration::from_secs(1));
        if tokio::time::timeout(wait, rx.changed()).await.is_err() {
            log::warn!(
                "nothing read for {key} from ZooKeeper within {wait:?}; no provider of it for now"
            );
        }
        rx
    }
}

impl Drop for ZkRegistry {
    fn drop(&mut self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
        for (_, task) in lock(&self.course_claims).drain() {
            task.abort();
        }
    }
}

impl Inner {
    /// The current session.
    fn client(&self) -> Arc<ZkClient> {
        Arc::clone(&lock(&self.client))
    }

    /// `<root>/<service>/providers`.
    fn providers_path(&self, service: &str) -> String {
        format!("{}/{service}/providers", self.root)
    }

    // ANCHOR: zk_register
    /// Creates the parents (persistent) and the provider's ephemeral znode.
    async fn create_provider_node(&self, service: &str, addr: &str) -> Result<(), ZkError> {
        let client = self.client();
        let parent = self.providers_path(service);
        client.create_path(&parent).await?;
        if self.auth.is_some() {
            self.restrict_tree(&client, service).await?;
        }
        client
            .create(
                &format!("{parent}/{addr}"),
                addr.as_bytes(),
                CreateMode::Ephemeral,
            )
            .await
    }
    // ANCHOR_END: zk_register

    // ANCHOR: restrict_tree
    /// Switches the root, the service node and its `providers` node to the
    /// protected ACL if they are still open (created before `zk_auth` was
    /// set, or by a process without it). Nodes above the root are not ours
    /// and are left alone.
    async fn restrict_tree(&self, client: &ZkClient, service: &str) -> Result<(), ZkError> {
        let service_path = format!("{}/{service}", self.root);
        for path in [
            self.root.clone(),
            service_path,
            self.providers_path(service),
        ] {
            if client.restrict_open_acl(&path).await? {
                log::warn!("znode {path} was open to everyone; its ACL now protects it");
            }
        }
        Ok(())
    }
    // ANCHOR_END: restrict_tree
}

/// Opens a session, retrying with exponential backoff until `deadline`
/// (forever if `None`), logging every failed attempt. A refused credential
/// is not retried: the same credential will be refused again.
async fn connect_with_backoff(
    connect: &str,
    session_timeout: Duration,
    auth: Option<&ZkAuth>,
    deadline: Option<Instant>,
) -> Result<ZkClient, Error> {
    let mut delay = FIRST_BACKOFF;
    let started = Instant::now();
    for attempt in 1u32.. {
        let budget = deadline.map_or(session_timeout, |d| {
            d.saturating_duration_since(Instant::now())
        });
        let result = match tokio::time::timeout(
            budget.max(Duration::from_millis(1)),
            ZkClient::start_with_auth(connect, session_timeout, auth),
        )
        .await
        {
            Ok(Err(e @ (ZkError::AuthFailed { .. } | ZkError::BadCredential { .. }))) => {
                return Err(Error::Registry(e.to_string()));
            }
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no session within {budget:?}")),
        };
        match result {
            Ok(client) => {
                if attempt > 1 {
                    log::info!("connected to ZooKeeper at {connect} after {attempt} attempts");
                }
                return Ok(client);
            }
            Err(e) => {
                if deadline.is_some_and(|d| Instant::now() + delay >= d) {
                    return Err(Error::Registry(format!(
                        "ZooKeeper at {connect} unreachable: gave up after {attempt} attempts in {:?}; last error: {e}",
                        started.elapsed()
                    )));
                }
                log::warn!(
                    "ZooKeeper at {connect} unreachable (attempt {attempt}): {e}; retrying in {delay:?}"
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_BACKOFF);
            }
        }
    }
    Err(Error::Registry("unreachable".into()))
}

// ANCHOR: supervise
/// Replaces an ended session and re-creates this process's registrations.
async fn supervise(inner: Arc<Inner>) {
    loop {
        let client = inner.client();
        let end = follow_session(&inner, &client).await;
        // The session's ephemeral nodes are gone with it.
        inner.registered.store(false, Ordering::Release);
        log::warn!(
            "ZooKeeper session {:#x} ended ({end:?}); opening a new one",
            client.session_id()
        );
        drop(client);
        let fresh = match connect_with_backoff(
            &inner.connect,
            inner.session_timeout,
            inner.auth.as_ref(),
            None,
        )
        .await
        {
            Ok(c) => c,
            Err(e) => {
                // Only a refused credential ends the retrying. The server's
                // configuration may be fixed while we run: try again later
                // (the old session has ended, so the loop comes straight
                // back here).
                log::error!("{e}; trying again in {MAX_BACKOFF:?}");
                tokio::time::sleep(MAX_BACKOFF).await;
                continue;
            }
        };
        log::info!("new ZooKeeper session {:#x}", fresh.session_id());
        let fresh = Arc::new(fresh);
        *lock(&inner.client) = Arc::clone(&fresh);
        inner.in_touch.store(true, Ordering::Release);
        inner.generation.send_modify(|g| *g += 1);
        reregister(&inner, &fresh).await;
    }
}

/// Re-creates every registration on the new session `client`, retrying
/// the ones that fail (with backoff) until all are back, or the session
/// ends too; then says so in `registered`.
async fn reregister(inner: &Inner, client: &ZkClient) {
    let mut pending: Vec<_> = lock(&inner.registrations).iter().cloned().collect();
    let mut delay = FIRST_BACKOFF;
    loop {
        let mut failed = Vec::new();
        for (service, addr) in pending {
            match inner.create_provider_node(&service, &addr).await {
                Ok(()) => log::info!("re-registered {service} at {addr}"),
                Err(e) => {
                    log::error!(
                        "re-registering {service} at {addr} failed: {e}; retrying in {delay:?}"
                    );
                    failed.push((service, addr));
                }
            }
        }
        // Deregistered meanwhile (shutdown): no longer wanted.
        let wanted = lock(&inner.registrations).clone();
        pending = failed.into_iter().filter(|r| wanted.contains(r)).collect();
        if pending.is_empty() {
            inner.registered.store(true, Ordering::Release);
            return;
        }
        tokio::select! {
            _ = client.session_ended() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(MAX_BACKOFF);
    }
}

/// Follows `client`'s session until it ends. Out of touch with ZooKeeper
/// for longer than the session timeout, the session counts as lost
/// (`in_touch` false) — ZooKeeper expires a session it has not heard from
/// for that long — until it is back, if it comes back at all.
async fn follow_session(inner: &Inner, client: &ZkClient) -> crate::zk_client::SessionEnd {
    let timeout = client.session_timeout();
    while client.disconnected().await {
        match tokio::time::timeout(timeout, client.reconnected()).await {
            Ok(true) => continue,
            Ok(false) => break,
            Err(_) => {
                log::warn!(
                    "ZooKeeper session {:#x} out of touch for its whole timeout ({timeout:?}): \
                     its nodes are gone, or about to be",
                    client.session_id()
                );
                inner.in_touch.store(false, Ordering::Release);
                // The same session back after all (the ensemble itself was
                // down, and resumed it): its nodes are still there.
                if client.reconnected().await {
                    inner.in_touch.store(true, Ordering::Release);
                } else {
                    break;
                }
            }
        }
    }
    client.session_ended().await
}
// ANCHOR_END: supervise

// ANCHOR: follow
/// Keeps `tx` equal to the provider list of `service`: list with a watch,
/// publish, wait for the watch, repeat.
async fn follow(inner: Arc<Inner>, service: String, tx: watch::Sender<ProviderList>) {
    let path = inner.providers_path(&service);
    let mut generation = inner.generation.subscribe();
    let mut delay = FIRST_BACKOFF;
    loop {
        let client = inner.client();
        match client.watch_children(&path).await {
            Ok((mut children, watch)) => {
                children.sort();
                let list: ProviderList = children.into();
                if **tx.borrow() != *list {
                    log::info!("providers of {service}: [{}]", list.join(", "));
                }
                tx.send_replace(list);
                delay = FIRST_BACKOFF;
                if !watch.changed().await {
                    // Session over: wait for the supervisor's new one.
                    let _ = generation.changed().await;
                }
            }
            Err(ZkError::NoNode { .. }) => {
                // No provider ever registered: empty list, wait for the node.
                tx.send_replace(ProviderList::from(Vec::new()));
                if client.wait_exists(&path).await.is_err() {
                    let _ = generation.changed().await;
                }
            }
            Err(e) => {
                // Keep the last list: a ZooKeeper hiccup must not stop calls.
                log::warn!("watching providers of {service} failed: {e}; retrying in {delay:?}");
                tokio::select! {
                    _ = generation.changed() => {}
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(MAX_BACKOFF);
            }
        }
    }
}
// ANCHOR_END: follow

impl Registry for ZkRegistry {
    fn registrations_live(&self) -> bool {
        self.inner.registered.load(Ordering::Acquire) && self.inner.in_touch.load(Ordering::Acquire)
    }

    fn register<'a>(&'a self, service: &'a str, addr: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            // Remember first: if the session expires right now, the
            // supervisor re-creates it.
            lock(&self.inner.registrations).insert((service.to_string(), addr.to_string()));
            self.inner
                .create_provider_node(service, addr)
                .await
                .map_err(|e| Error::Registry(format!("registering {service} at {addr}: {e}")))?;
            log::info!("registered {service} at {addr} in ZooKeeper");
            Ok(())
        })
    }

    fn deregister<'a>(
        &'a self,
        service: &'a str,
        addr: &'a str,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            lock(&self.inner.registrations).remove(&(service.to_string(), addr.to_string()));
            let node = format!("{}/{addr}", self.inner.providers_path(service));
            self.inner
                .client()
                .delete(&node)
                .await
                .map_err(|e| Error::Registry(format!("deregistering {service} at {addr}: {e}")))
        })
    }

    fn subscribe<'a>(
        &'a self,
        service: &'a str,
    ) -> BoxFuture<'a, Result<watch::Receiver<ProviderList>, Error>> {
        Box::pin(async move {
            let rx = self
                .followed(&self.inner.subscriptions, service, |inner, tx| {
                    follow(inner, service.to_string(), tx)
                })
                .await;
            Ok(rx)
        })
    }

    fn register_course<'a>(
        &'a self,
        service: &'a str,
        methods: &'a [&'static str],
        addr: &'a str,
    ) -> BoxFuture<'a, Result<(), Error>> {
        self.course_register(service, methods, addr)
    }

    fn deregister_course<'a>(
        &'a self,
        service: &'a str,
        methods: &'a [&'static str],
    ) -> BoxFuture<'a, Result<(), Error>> {
        self.course_deregister(service, methods)
    }

    fn subscribe_course<'a>(
        &'a self,
        service: &'a str,
        method: &'a str,
    ) -> BoxFuture<'a, Result<watch::Receiver<ProviderList>, Error>> {
        self.course_subscribe(service, method)
    }
}
