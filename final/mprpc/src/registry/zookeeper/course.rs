//! The C++ course's znode layout, kept by [`ZkRegistry`] on its own session
//! (`[course_compat]`), so that course processes and final/ processes find
//! each other during a migration.
//!
//! ```text
//! /UserServiceRpc            persistent, no data
//! /UserServiceRpc/Login      EPHEMERAL, data "127.0.0.1:8000" (no NUL)
//! /UserServiceRpc/Register   EPHEMERAL, data "127.0.0.1:8000"
//! ```
//!
//! The names are the course's *short* service names, and the layout sits at
//! the ZooKeeper root, not under `zk_root`: that is where the course's
//! programs look.
//!
//! # One provider per method
//!
//! The layout has room for one address per method. A final/ provider with
//! `register = true` creates a method node only if it is absent
//! ([`ZkClient::create_if_absent`]): a node held by another live session (a
//! C++ callee, a step-12 callee, another final/ provider) is left as it is,
//! with a warning, and watched. When it is deleted (its owner stopped or its
//! session expired) this provider takes it, so C++ callers always find
//! *some* live provider while any is left. The provider keeps serving and
//! keeps its own final/ registration either way: final/ callers see every
//! provider.
//!
//! # Sessions
//!
//! Everything here runs on the registry's one session (the course opened a
//! session per call). A task per method node holds or waits for the node and
//! a task per followed method watches it; when the session ends they wait
//! for the supervisor's new session and start over, which re-creates the
//! nodes after an expiry.

use futures_util::future::BoxFuture;
use tokio::sync::{oneshot, watch};

use super::{FIRST_BACKOFF, Inner, MAX_BACKOFF, ZkRegistry, lock};
use crate::error::Error;
use crate::registry::ProviderList;
use crate::wire::course::COURSE_SCHEME;
use crate::zk_client::{CreateMode, NodeWatch, ZkError};

/// `/<service>/<method>`, the course's method node.
pub(super) fn method_path(service: &str, method: &str) -> String {
    format!("/{service}/{method}")
}

/// What one attempt at holding a method node found.
enum Holding {
    /// This session holds the node.
    Ours,
    /// Another session (or a persistent node) holds it, with this data.
    Theirs { owner: i64, data: String },
    /// Deleted between creating and reading: try again at once.
    Gone,
}

// ANCHOR: hold
/// Keeps the method node `path` = `addr` on this registry's session when it
/// can, without ever evicting another session's node. Reports the outcome
/// of the first attempt on `first`; afterwards only logs.
async fn hold(
    inner: std::sync::Arc<Inner>,
    service: String,
    path: String,
    addr: String,
    first: oneshot::Sender<Result<(), ZkError>>,
) {
    let mut first = Some(first);
    let mut generation = inner.generation.subscribe();
    let mut delay = FIRST_BACKOFF;
    // What was last logged, so a watch that fires for the same state (data
    // rewritten, a reconnect) does not repeat the line.
    let mut last_owner = None;
    loop {
        let client = inner.client();
        let attempt = async {
            // Open to the course's providers, which have no credential.
            client.create_shared_parent(&format!("/{service}")).await?;
            let created = client
                .create_if_absent(&path, addr.as_bytes(), CreateMode::Ephemeral)
                .await?;
            let (node, watch) = client.watch_node(&path).await?;
            let holding = match node {
                None => Holding::Gone,
                Some((_, stat)) if stat.ephemeral_owner == client.session_id() => Holding::Ours,
                Some((data, stat)) => Holding::Theirs {
                    owner: stat.ephemeral_owner,
                    data: String::from_utf8_lossy(&data).into_owned(),
                },
            };
            Ok::<_, ZkError>((created, holding, watch))
        };
        let watch: NodeWatch = match attempt.await {
            Ok((_, Holding::Gone, _)) => continue,
            Ok((created, Holding::Ours, watch)) => {
                if last_owner != Some(client.session_id()) {
                    log::info!(
                        "course layout: {path} = {addr} ({}, session {:#x}); C++ callers of it come here",
                        if created { "created" } else { "already ours" },
                        client.session_id()
                    );
                    last_owner = Some(client.session_id());
                }
                watch
            }
            Ok((_, Holding::Theirs { owner, data }, watch)) => {
                if last_owner != Some(owner) && data == addr {
                    // Typically this provider's previous run, whose session
                    // has not expired yet: C++ callers reach us anyway.
                    log::info!(
                        "course layout: {path} = {addr} is still held by an older session \
                         ({owner:#x}) with our address; taking it over when that session ends"
                    );
                    last_owner = Some(owner);
                } else if last_owner != Some(owner) {
                    log::warn!(
                        "course layout: {path} is held by another live ZooKeeper session \
                         ({owner:#x}, data {data:?}); the course allows one provider per method, \
                         so C++ callers of it go to {data}, not to {addr}. Leaving it alone; \
                         still serving and registered for final/ callers; will take {path} \
                         when it is deleted"
                    );
                    last_owner = Some(owner);
                }
                watch
            }
            Err(e) => {
                if let Some(first) = first.take() {
                    let _ = first.send(Err(e));
                    return;
                }
                log::warn!("course layout: keeping {path} failed: {e}; retrying in {delay:?}");
                tokio::select! {
                    _ = generation.changed() => {}
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        delay = FIRST_BACKOFF;
        if let Some(first) = first.take() {
            let _ = first.send(Ok(()));
        }
        if !watch.changed().await {
            // Session over: its ephemeral node is gone; start again on the
            // supervisor's new session.
            last_owner = None;
            let _ = generation.changed().await;
        }
    }
}
// ANCHOR_END: hold

// ANCHOR: follow_course
/// Keeps `tx` equal to the provider of `path` in the course's layout: an
/// empty list, or `["course://ip:port"]`.
async fn follow(inner: std::sync::Arc<Inner>, path: String, tx: watch::Sender<ProviderList>) {
    let mut generation = inner.generation.subscribe();
    let mut delay = FIRST_BACKOFF;
    loop {
        let client = inner.client();
        match client.watch_node(&path).await {
            Ok((node, watch)) => {
                let list: ProviderList = match node.map(|(data, _)| parse_address(&path, &data)) {
                    Some(Some(addr)) => vec![format!("{COURSE_SCHEME}{addr}")].into(),
                    _ => Vec::new().into(),
                };
                if **tx.borrow() != *list {
                    log::info!("course layout: {path} -> [{}]", list.join(", "));
                }
                tx.send_replace(list);
                delay = FIRST_BACKOFF;
                if !watch.changed().await {
                    let _ = generation.changed().await;
                }
            }
            Err(e) => {
                // Keep the last list: a ZooKeeper hiccup must not stop calls.
                log::warn!("course layout: watching {path} failed: {e}; retrying in {delay:?}");
                tokio::select! {
                    _ = generation.changed() => {}
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(MAX_BACKOFF);
            }
        }
    }
}
// ANCHOR_END: follow_course

/// The `ip:port` a course method node holds, or `None` (logged) if its data
/// is not one. Course providers write exactly `ip:port`; a trailing NUL (a
/// C program that counted it) is tolerated.
fn parse_address(path: &str, data: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(data).ok()?.trim_end_matches('\0');
    match text.parse::<std::net::SocketAddr>() {
        Ok(addr) => Some(addr.to_string()),
        Err(_) => {
            let shown: String = String::from_utf8_lossy(data).chars().take(64).collect();
            log::warn!("course layout: {path} holds {shown:?}, not an ip:port; ignoring it");
            None
        }
    }
}

impl ZkRegistry {
    /// [`crate::Registry::register_course`] for ZooKeeper.
    pub(super) fn course_register<'a>(
        &'a self,
        service: &'a str,
        methods: &'a [&'static str],
        addr: &'a str,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            for method in methods {
                let path = method_path(service, method);
                let (tx, rx) = oneshot::channel();
                let task = tokio::spawn(hold(
                    std::sync::Arc::clone(&self.inner),
                    service.to_string(),
                    path.clone(),
                    addr.to_string(),
                    tx,
                ));
                if let Some(old) =
                    lock(&self.course_claims).insert(path.clone(), task.abort_handle())
                {
                    old.abort();
                }
                let outcome = rx
                    .await
                    .unwrap_or_else(|_| Err(ZkError::NoNode { path: path.clone() }));
                if let Err(e) = outcome {
                    if let Some(task) = lock(&self.course_claims).remove(&path) {
                        task.abort();
                    }
                    return Err(Error::Registry(format!(
                        "publishing {path} (course_compat.register) for {addr}: {e}"
                    )));
                }
            }
            Ok(())
        })
    }

    /// [`crate::Registry::deregister_course`] for ZooKeeper.
    pub(super) fn course_deregister<'a>(
        &'a self,
        service: &'a str,
        methods: &'a [&'static str],
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let client = self.inner.client();
            let mut first_err = None;
            for method in methods {
                let path = method_path(service, method);
                // Stop holding first, so the node is not re-created after
                // the delete below.
                if let Some(task) = lock(&self.course_claims).remove(&path) {
                    task.abort();
                }
                match client.delete_if_owned(&path).await {
                    Ok(true) => log::info!("course layout: deleted {path}"),
                    Ok(false) => {}
                    Err(e) => {
                        first_err.get_or_insert(Error::Registry(format!(
                            "deleting {path} (course_compat.register): {e}"
                        )));
                    }
                }
            }
            first_err.map_or(Ok(()), Err)
        })
    }

    /// [`crate::Registry::subscribe_course`] for ZooKeeper.
    pub(super) fn course_subscribe<'a>(
        &'a self,
        service: &'a str,
        method: &'a str,
    ) -> BoxFuture<'a, Result<watch::Receiver<ProviderList>, Error>> {
        Box::pin(async move {
            let path = method_path(service, method);
            let rx = self
                .followed(&self.course_subscriptions, &path, |inner, tx| {
                    follow(inner, path.clone(), tx)
                })
                .await;
            Ok(rx)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::parse_address;

    #[test]
    fn course_node_data_is_an_ip_port_and_nothing_else() {
        let path = "/UserServiceRpc/Login";
        assert_eq!(
            parse_address(path, b"127.0.0.1:8000").as_deref(),
            Some("127.0.0.1:8000")
        );
        // A C program that counted the NUL.
        assert_eq!(
            parse_address(path, b"127.0.0.1:8000\0").as_deref(),
            Some("127.0.0.1:8000")
        );
        for bad in [
            &b""[..],
            b"localhost",
            b"127.0.0.1",
            b"\xff\xfe",
            b"1.2.3.4:99999",
        ] {
            assert_eq!(parse_address(path, bad), None, "{bad:?}");
        }
    }
}
