//! Service discovery: where providers announce themselves and where callers
//! find them.
//!
//! The course registered one ephemeral znode per *method*
//! (`/UserServiceRpc/Login` holding `ip:port`), so a second provider of the
//! same method failed to register and was silently ignored, and the caller
//! opened a new ZooKeeper session and read the znode on *every call*.
//!
//! Here a [`Registry`] hands callers a [`tokio::sync::watch`] receiver per
//! service: the current provider list, kept up to date in the background.
//! Reading it is a lock-free-ish borrow, so discovery costs nothing on the
//! call path. Two implementations:
//!
//! * [`StaticRegistry`] — addresses from the config's `[static_registry]`
//!   table; never changes. The demo and most tests run on it without a
//!   ZooKeeper.
//! * [`ZkRegistry`] — ZooKeeper, many providers per service, watches
//!   re-armed on every change, re-registration after session expiry. Its
//!   znode layout is documented in [`zookeeper`].

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::watch;

use crate::error::Error;

pub mod zookeeper;

pub use zookeeper::ZkRegistry;

/// Provider addresses of one service ("ip:port" strings).
pub type ProviderList = Arc<[String]>;

// ANCHOR: registry_trait
/// Where providers register and callers look them up.
///
/// Methods return boxed futures so the trait stays object-safe: the channel
/// and provider hold an `Arc<dyn Registry>` chosen at run time from config.
pub trait Registry: Send + Sync + std::fmt::Debug + 'static {
    /// Announces that `addr` serves `service`, until [`deregister`] or until
    /// this process dies (for ZooKeeper: an ephemeral znode).
    ///
    /// [`deregister`]: Registry::deregister
    fn register<'a>(&'a self, service: &'a str, addr: &'a str) -> BoxFuture<'a, Result<(), Error>>;

    /// Whether [`register`](Registry::register) tells processes on other
    /// hosts where this provider is (ZooKeeper). A provider bound to every
    /// interface (`0.0.0.0`) must then be given an `advertise_host`. A
    /// registry that announces nothing (the static table) says `false`.
    fn announces(&self) -> bool {
        true
    }

    /// Whether everything [`register`](Registry::register) announced is
    /// in place now, as far as this process can tell: for ZooKeeper,
    /// `false` from the moment the session is lost (expired, or out of
    /// touch for its whole timeout: the ephemeral nodes are gone) until a
    /// new session has re-created them all. `/readyz` follows it. A
    /// registry that announces nothing says `true`.
    fn registrations_live(&self) -> bool {
        true
    }

    /// Withdraws a registration (first step of graceful shutdown).
    fn deregister<'a>(
        &'a self,
        service: &'a str,
        addr: &'a str,
    ) -> BoxFuture<'a, Result<(), Error>>;

    /// The live provider list of `service`, updated in the background.
    fn subscribe<'a>(
        &'a self,
        service: &'a str,
    ) -> BoxFuture<'a, Result<watch::Receiver<ProviderList>, Error>>;

    /// Also publishes `addr` in the C++ course's layout
    /// (`course_compat.register`): `/<service>` persistent and
    /// `/<service>/<method>` ephemeral for each method, data `ip:port`.
    /// `service` is the course's short name. A method node held by another
    /// live session is left alone (and taken when it goes away), never
    /// evicted. Only registries backed by ZooKeeper have that layout; the
    /// default is an error saying so.
    fn register_course<'a>(
        &'a self,
        service: &'a str,
        methods: &'a [&'static str],
        addr: &'a str,
    ) -> BoxFuture<'a, Result<(), Error>> {
        let _ = (methods, addr);
        Box::pin(async move { Err(no_course_layout(service)) })
    }

    /// Withdraws [`register_course`](Registry::register_course): deletes the
    /// method nodes this process holds (never another's) and stops waiting
    /// for the others. The persistent `/<service>` stays, as in the course.
    fn deregister_course<'a>(
        &'a self,
        service: &'a str,
        methods: &'a [&'static str],
    ) -> BoxFuture<'a, Result<(), Error>> {
        let _ = methods;
        Box::pin(async move { Err(no_course_layout(service)) })
    }

    /// The provider of `service.method` in the course's layout
    /// (`course_compat.discover`), as a list of zero or one
    /// `"course://ip:port"` entries, updated in the background.
    fn subscribe_course<'a>(
        &'a self,
        service: &'a str,
        method: &'a str,
    ) -> BoxFuture<'a, Result<watch::Receiver<ProviderList>, Error>> {
        let _ = method;
        Box::pin(async move { Err(no_course_layout(service)) })
    }
}
// ANCHOR_END: registry_trait

/// The error of the course-layout methods on a registry without ZooKeeper.
fn no_course_layout(service: &str) -> Error {
    Error::Registry(format!(
        "{service}: the course's /<Service>/<Method> layout lives in ZooKeeper and this \
         registry has none (set zookeeperip, or list the provider as \"course://ip:port\" \
         in [static_registry])"
    ))
}

/// Fixed addresses per service, from configuration.
#[derive(Debug, Default)]
pub struct StaticRegistry {
    /// Service name (full, or the course's short one) → provider list.
    services: HashMap<String, ProviderList>,
    /// Addresses for services not listed (used by
    /// [`crate::MprpcChannel::direct`]).
    fallback: Option<ProviderList>,
}

impl StaticRegistry {
    /// A registry with the given table.
    pub fn new<I, S, A>(table: I) -> StaticRegistry
    where
        I: IntoIterator<Item = (S, Vec<A>)>,
        S: Into<String>,
        A: Into<String>,
    {
        StaticRegistry {
            services: table
                .into_iter()
                .map(|(s, addrs)| (s.into(), addrs.into_iter().map(Into::into).collect()))
                .collect(),
            fallback: None,
        }
    }

    /// A registry that sends every service to `addrs`.
    pub fn everything_at<A: Into<String>>(addrs: impl IntoIterator<Item = A>) -> StaticRegistry {
        StaticRegistry {
            services: HashMap::new(),
            fallback: Some(addrs.into_iter().map(Into::into).collect()),
        }
    }
}

impl Registry for StaticRegistry {
    fn announces(&self) -> bool {
        false
    }

    fn register<'a>(&'a self, service: &'a str, addr: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        // Nothing to announce: callers read the same config file. A real
        // deployment without ZooKeeper would use DNS or a load balancer here.
        log::debug!("static registry: {service} at {addr} (not announced)");
        Box::pin(async { Ok(()) })
    }

    fn deregister<'a>(
        &'a self,
        _service: &'a str,
        _addr: &'a str,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async { Ok(()) })
    }

    fn subscribe<'a>(
        &'a self,
        service: &'a str,
    ) -> BoxFuture<'a, Result<watch::Receiver<ProviderList>, Error>> {
        // Services are looked up by their full name ("fixbug.UserServiceRpc");
        // a table written for the course's short names ("UserServiceRpc")
        // still works, as long as the short name is not listed twice.
        let short = service.rsplit('.').next().unwrap_or(service);
        let list = self
            .services
            .get(service)
            .or_else(|| self.services.get(short))
            .or(self.fallback.as_ref())
            .cloned();
        Box::pin(async move {
            let list = list.ok_or_else(|| {
                Error::Registry(format!(
                    "service {service} is not in [static_registry] of the config, and no ZooKeeper is configured"
                ))
            })?;
            // The sender is dropped at once: receivers keep the last value
            // forever, which is exactly a static list.
            let (_tx, rx) = watch::channel(list);
            Ok(rx)
        })
    }
}

/// The registry the config asks for: ZooKeeper when `zookeeperip` is set,
/// else the `[static_registry]` table.
pub async fn from_config(config: &crate::MprpcConfig) -> Result<Arc<dyn Registry>, Error> {
    match config.zookeeper_address() {
        Some(_) => Ok(Arc::new(ZkRegistry::from_config(config).await?)),
        None => Ok(Arc::new(StaticRegistry::new(
            config.static_registry.clone(),
        ))),
    }
}
