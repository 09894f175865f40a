//! The hot path of a channel handle with one provider: the connection its
//! last call used, kept by the handle itself.
//!
//! Finding a call's connection the general way takes the channel's shared
//! tables: the provider list (a lock, and a reference count up and down),
//! then the pool (another lock, another count). Every worker thread writes
//! those cache lines on every call, so at 128 calls in flight they bounce
//! between the cores: 12% of the caller's CPU in the profile of chapter
//! Performance, "Round 4". When a service has exactly one provider — the
//! common case of a caller talking to one service, and the benchmark's — the
//! answer is the same every time. So each *handle* (each clone of an
//! `MprpcChannel`) remembers it: the connection, and the registry's list it
//! came from. A call takes the connection out of its handle's cache (an
//! uncontended lock: one handle is used by one task at a time, as a stub
//! clone per task is), checks that the list has not changed since and that
//! the connection is still open — two loads — and puts it back afterwards.
//! The connection's `Arc` moves instead of being counted up and down.
//!
//! A real system would do the same with a per-thread or per-handle cache
//! of its routing decision (gRPC's "picker" is rebuilt only when the
//! resolver's list or a connection's state changes).

use super::*;

/// What one handle keeps of its last call (see the module's doc).
pub(super) struct Hot {
    /// The service it was for (compared by address: descriptors are
    /// `'static` items of the generated code).
    service: &'static ServiceDescriptor,
    /// The registry's list for it, with the version seen then: a change of
    /// the list (a provider more, or another one) shows in `has_changed`,
    /// one atomic load.
    pub(super) watch: watch::Receiver<ProviderList>,
    /// That list: one framed provider.
    pub(super) list: ProviderList,
    /// The pooled connection to it.
    pub(super) conn: Arc<Connection>,
}

/// A handle's cache: empty in every clone, so that no two tasks share one.
#[derive(Default)]
pub(super) struct HotCache(Mutex<Slot>);

/// What a [`HotCache`] holds.
#[derive(Default)]
struct Slot {
    /// The connection of the last call, when it is not lent out.
    hot: Option<Hot>,
    /// A call of this handle has it now. Another call of the same handle at
    /// the same time (a handle shared between tasks) takes the general path
    /// and leaves the cache alone, so sharing a handle costs no more than
    /// before this cache existed.
    lent: bool,
}

/// What [`HotCache::take`] found.
pub(super) enum Taken {
    /// The connection to use, lent until [`HotCache::put`].
    Hot(Hot),
    /// Nothing usable: take the general path, then fill the cache.
    Empty,
    /// Another call of this handle holds it: take the general path only.
    Lent,
}

impl Clone for HotCache {
    /// An empty cache: a clone is another handle, used by another task.
    fn clone(&self) -> Self {
        HotCache::default()
    }
}

impl std::fmt::Debug for HotCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let slot = lock(&self.0);
        let held = slot.hot.as_ref().map(|h| h.service.full_name);
        f.debug_struct("HotCache")
            .field("service", &held)
            .field("lent", &slot.lent)
            .finish()
    }
}

impl HotCache {
    /// The cached connection for `service`, lent out, if the registry's list
    /// is still the one-provider list it came from and the connection still
    /// takes calls (a stale entry is dropped).
    pub(super) fn take(&self, service: &'static ServiceDescriptor) -> Taken {
        let mut slot = lock(&self.0);
        if slot.lent {
            return Taken::Lent;
        }
        match slot.hot.take() {
            Some(hot)
                if std::ptr::eq(hot.service, service)
                    // `Err`: the registry dropped its sender (a static
                    // list), so the list can never change.
                    && !hot.watch.has_changed().unwrap_or(false)
                    && hot.conn.is_open() =>
            {
                slot.lent = true;
                Taken::Hot(hot)
            }
            _ => Taken::Empty,
        }
    }

    /// Puts `hot` in the cache (after the general path, or giving back what
    /// was lent); `None` empties it.
    pub(super) fn put(&self, hot: Option<Hot>) {
        let mut slot = lock(&self.0);
        slot.lent = false;
        slot.hot = hot;
    }
}

/// Held while a call has the cache's connection: a call that ends without
/// giving it back (dropped by its deadline or its caller, or failed over)
/// leaves the cache empty and lendable again.
pub(super) struct Lend<'a>(&'a HotCache);

impl<'a> Lend<'a> {
    /// The loan of [`Taken::Hot`] from `cache`.
    pub(super) fn of(cache: &'a HotCache) -> Lend<'a> {
        Lend(cache)
    }

    /// Ends the loan, leaving `hot` in the cache.
    pub(super) fn give_back(self, hot: Option<Hot>) {
        self.0.put(hot);
        std::mem::forget(self);
    }
}

impl Drop for Lend<'_> {
    fn drop(&mut self) {
        lock(&(self.0).0).lent = false;
    }
}

impl MprpcChannel {
    /// After a call on `conn` to the only provider of `service`: what to keep
    /// in this handle's cache, or `None` when the service's providers are not
    /// a single framed one from the registry (course layouts, several
    /// providers and lists still being looked up take the general path).
    pub(super) fn hot_for(
        &self,
        service: &'static ServiceDescriptor,
        list: &ProviderList,
        conn: &Arc<Connection>,
    ) -> Option<Hot> {
        if self.inner.course.discover || list.len() != 1 || !conn.is_open() {
            return None;
        }
        let mut watch = lock(&self.inner.lists).get(service.full_name)?.clone();
        let current = watch.borrow_and_update().clone();
        // The list we called from is still the registry's (same allocation).
        Arc::ptr_eq(&current, list).then(|| Hot {
            service,
            watch,
            list: current,
            conn: Arc::clone(conn),
        })
    }

    /// After a call that reached `conn`: gives the loan back (`loan`: the
    /// call used the cache) or, when the cache was empty (`fill`), fills it.
    pub(super) fn keep_hot(
        &self,
        service: &'static ServiceDescriptor,
        list: ProviderList,
        conn: Arc<Connection>,
        loan: Option<(watch::Receiver<ProviderList>, Lend<'_>)>,
        fill: bool,
    ) {
        match loan {
            Some((watch, lend)) => lend.give_back(Some(Hot {
                service,
                watch,
                list,
                conn,
            })),
            None if fill => self.hot.put(self.hot_for(service, &list, &conn)),
            None => {}
        }
    }
}
