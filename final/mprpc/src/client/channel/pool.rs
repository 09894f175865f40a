//! Choosing a provider and holding connections to it: the provider list
//! (registry plus the course layout), balancing, the pool, ejection after
//! failures and deadlines, and the course-format bookkeeping.

use super::*;

impl MprpcChannel {
    /// The providers to choose from for `method` of `service`: the
    /// registry's list, plus (with `course_compat.discover`) the course
    /// layout's provider of that method.
    pub(super) async fn providers(
        &self,
        service: &'static ServiceDescriptor,
        method: usize,
    ) -> Result<ProviderList, Status> {
        let framed = self.framed_providers(service.full_name).await?;
        let list = if self.inner.course.discover {
            let course = self.course_providers(service, method).await?;
            self.inner
                .course
                .merge(service.name, method, framed, course)
        } else {
            framed
        };
        if list.is_empty() {
            let also = if self.inner.course.discover {
                format!(
                    ", nor in the course's layout at /{}/{}",
                    service.name,
                    method_name(service, method)
                )
            } else {
                String::new()
            };
            return Err(Status::new(
                ErrorCode::NoProvider,
                format!("no provider of {} is registered{also}", service.full_name),
            ));
        }
        Ok(list)
    }

    /// The registry's provider list of `service`, subscribing on first use.
    pub(super) async fn framed_providers(
        &self,
        service: &'static str,
    ) -> Result<ProviderList, Status> {
        let cached = lock(&self.inner.lists)
            .get(service)
            .map(|rx| rx.borrow().clone());
        match cached {
            Some(list) => Ok(list),
            None => {
                let rx = self.inner.registry.subscribe(service).await.map_err(|e| {
                    Status::new(
                        ErrorCode::NoProvider,
                        format!("looking up {service} failed: {e}"),
                    )
                })?;
                let list = rx.borrow().clone();
                lock(&self.inner.lists).insert(service, rx);
                Ok(list)
            }
        }
    }

    /// The course layout's provider of `service.method` (zero or one
    /// `course://` entry), subscribing on first use. Always the short name:
    /// that is what the course's `/<Service>/<Method>` nodes are called.
    pub(super) async fn course_providers(
        &self,
        service: &'static ServiceDescriptor,
        method: usize,
    ) -> Result<ProviderList, Status> {
        let key = (service.name, method);
        let cached = lock(&self.inner.course.lists)
            .get(&key)
            .map(|rx| rx.borrow().clone());
        if let Some(list) = cached {
            return Ok(list);
        }
        let method_name = method_name(service, method);
        let rx = self
            .inner
            .registry
            .subscribe_course(service.name, method_name)
            .await
            .map_err(|e| {
                Status::new(
                    ErrorCode::NoProvider,
                    format!(
                        "looking up /{}/{method_name} (course_compat.discover) failed: {e}",
                        service.name
                    ),
                )
            })?;
        let list = rx.borrow().clone();
        lock(&self.inner.course.lists).insert(key, rx);
        Ok(list)
    }

    // ANCHOR: pick
    /// Index of the provider to use, skipping those in `tried` (bit mask) and
    /// — unless nothing else is left — those recently ejected.
    pub(super) fn pick(&self, list: &[String], tried: u64) -> Option<usize> {
        if list.len() == 1 {
            // One provider: it is the answer whether ejected or not (an
            // ejected one is tried when nothing else is left), so neither
            // the clock nor the ejected table needs reading.
            return (tried & 1 == 0).then_some(0);
        }
        let inner = &self.inner;
        let now = Instant::now();
        let usable = |i: usize, allow_ejected: bool, ejected: &HashMap<String, Ejection>| {
            tried & (1 << (i % 64)) == 0
                && (allow_ejected || ejected.get(&list[i]).is_none_or(|e| !e.holds(now)))
        };
        let ejected = lock(&inner.ejected);
        let mut allow_ejected = false;
        let mut count = (0..list.len())
            .filter(|&i| usable(i, false, &ejected))
            .count();
        if count == 0 {
            // Every provider failed recently: try them anyway rather than
            // fail without trying (they may be back).
            allow_ejected = true;
            count = (0..list.len())
                .filter(|&i| usable(i, true, &ejected))
                .count();
        }
        if count == 0 {
            return None;
        }
        let nth = |n: usize| {
            (0..list.len())
                .filter(|&i| usable(i, allow_ejected, &ejected))
                .nth(n)
        };
        match inner.policy {
            LoadBalance::RoundRobin => nth(inner.rr.fetch_add(1, Ordering::Relaxed) % count),
            LoadBalance::P2c => {
                if count == 1 {
                    return nth(0);
                }
                let r = inner.next_random();
                let a = (r % count as u64) as usize;
                let mut b = ((r >> 32) % (count as u64 - 1)) as usize;
                if b >= a {
                    b += 1;
                }
                let (a, b) = (nth(a)?, nth(b)?);
                drop(ejected);
                // Fewer calls in flight wins; a provider we have no
                // connection to yet counts as idle.
                let pool = lock(&inner.pool);
                let course = lock(&inner.course.in_flight);
                let load = |i: usize| match course.get(&list[i]) {
                    Some(n) => *n,
                    None => pool.get(&list[i]).map_or(0, |c| c.in_flight()),
                };
                Some(if load(b) < load(a) { b } else { a })
            }
        }
    }
    // ANCHOR_END: pick

    /// The pooled connection to `addr`, connecting if there is none.
    pub(super) async fn connection(&self, addr: &str) -> Result<Arc<Connection>, Status> {
        match self.inner.pooled(addr) {
            Some(c) => Ok(c),
            // Boxed for the same reason as the course's call in `send`:
            // connecting (a TLS handshake included) is a large future that
            // only the first call to a provider needs.
            None => Box::pin(self.connect(addr)).await,
        }
    }

    /// Connects to `addr` (one connection attempt at a time per address)
    /// and pools the connection.
    pub(super) async fn connect(&self, addr: &str) -> Result<Arc<Connection>, Status> {
        if let Some(why) = &self.inner.tls_error {
            return Err(Status::new(
                ErrorCode::Internal,
                format!("not connecting to {addr}: {why}"),
            ));
        }
        let gate = Arc::clone(
            lock(&self.inner.connecting)
                .entry(addr.to_string())
                .or_default(),
        );
        let _held = gate.lock().await;
        if let Some(c) = self.inner.pooled(addr) {
            return Ok(c);
        }
        let serial = self.inner.next_serial.fetch_add(1, Ordering::Relaxed);
        let weak = Arc::downgrade(&self.inner);
        let owner = addr.to_string();
        let events: EventSink = Arc::new(move |serial, event| {
            if let Some(inner) = weak.upgrade() {
                inner.on_event(&owner, serial, event);
            }
        });
        let conn = Arc::new(Connection::connect(addr, serial, &self.inner.settings, events).await?);
        lock(&self.inner.pool).insert(addr.to_string(), Arc::clone(&conn));
        self.inner.restore(addr);
        Ok(conn)
    }
}

impl ChannelInner {
    /// The pooled connection to `addr`, if it is open.
    pub(super) fn pooled(&self, addr: &str) -> Option<Arc<Connection>> {
        lock(&self.pool).get(addr).filter(|c| c.is_open()).cloned()
    }

    /// Avoids `addr` for a while — a framed provider until it also answers
    /// a health check; `true` if it was not avoided already.
    pub(super) fn eject(self: &Arc<Self>, addr: &str) -> bool {
        if crate::telemetry::client_metrics::enabled() {
            crate::telemetry::client_metrics::record_ejected(addr, self.eject_for);
        }
        let mut ejected = lock(&self.ejected);
        let now = Instant::now();
        ejected.retain(|_, e| e.holds(now));
        let until = now + self.eject_for;
        let probed = !addr.starts_with(COURSE_SCHEME);
        let before = ejected.insert(addr.to_string(), probe::Ejection { until, probed });
        drop(ejected);
        match before {
            // Its health-check task is running already, and now waits
            // until the new `until`.
            Some(e) if e.probed => false,
            _ if probed => {
                self.start_probe(addr);
                true
            }
            before => before.is_none(),
        }
    }

    /// `addr` answered again: no longer avoided.
    pub(super) fn restore(&self, addr: &str) {
        if lock(&self.ejected).remove(addr).is_some() && crate::telemetry::client_metrics::enabled()
        {
            crate::telemetry::client_metrics::record_restored(addr);
        }
    }

    // ANCHOR: after_deadline
    /// A call missed its deadline. If its provider sent nothing at all on
    /// that connection since the call went out, it is silent — a frozen
    /// process or a host gone from the network resets no connection, and
    /// ZooKeeper drops it only a whole session timeout later. Avoid it now,
    /// as after a failed connection. A provider merely too slow to answer
    /// anything within a deadline is avoided too; a real system would send
    /// pings (gRPC keepalive, HTTP/2 PING) to tell slow from gone.
    pub(super) fn after_deadline(self: &Arc<Self>, sent_on: &SentOn) {
        let serial = sent_on.serial.load(Ordering::Relaxed);
        if serial != 0 {
            // Gone from the pool means it failed or drained, and was
            // ejected then if it had to be.
            let conn = lock(&self.pool)
                .values()
                .find(|c| c.serial() == serial)
                .cloned();
            // Every call stuck there ends at about the same time: log once.
            if let Some(conn) = conn
                && let Some(silent) = conn.silent_since(sent_on.mark.load(Ordering::Relaxed))
                && self.eject(conn.addr())
            {
                log::warn!("{} sent nothing for {silent:?}; avoiding it", conn.addr());
            }
        } else if let Some(addr) = lock(&sent_on.course).take() {
            // The course format says nothing until the answer, so a course
            // provider past the deadline is silent by definition (the
            // course's own provider never answers an unknown method).
            if self.eject(&addr) {
                log::warn!("{addr} did not answer a course-format call in time; avoiding it");
            }
        }
    }
    // ANCHOR_END: after_deadline

    /// A connection reported draining or death: take its provider out now,
    /// without waiting for ZooKeeper to tell us.
    pub(super) fn on_event(self: &Arc<Self>, addr: &str, serial: u64, event: ConnEvent) {
        log::debug!("connection {serial} to {addr}: {event:?}");
        let mut pool = lock(&self.pool);
        if pool.get(addr).is_some_and(|c| c.serial() == serial) {
            pool.remove(addr);
        }
        drop(pool);
        self.eject(addr);
    }

    /// xorshift64: good enough to spread picks, no dependency needed.
    pub(super) fn next_random(&self) -> u64 {
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.store(x, Ordering::Relaxed);
        x
    }
}

impl CourseState {
    // ANCHOR: merge
    /// The framed providers plus the course layout's one, balanced together.
    /// A course entry whose address is also a framed provider (a final/
    /// provider with `course_compat.register`) is dropped: the framed
    /// format is the better way to reach the same process.
    pub(super) fn merge(
        &self,
        service: &'static str,
        method: usize,
        framed: ProviderList,
        course: ProviderList,
    ) -> ProviderList {
        if course.is_empty() {
            return framed;
        }
        let mut merged = lock(&self.merged);
        if let Some(m) = merged.get(&(service, method)) {
            if Arc::ptr_eq(&m.framed, &framed) && Arc::ptr_eq(&m.course, &course) {
                return Arc::clone(&m.list);
            }
        }
        let list: ProviderList = framed
            .iter()
            .cloned()
            .chain(
                course
                    .iter()
                    .filter(|entry| {
                        let bare = entry.strip_prefix(COURSE_SCHEME).unwrap_or(entry);
                        !framed.iter().any(|f| f == bare)
                    })
                    .cloned(),
            )
            .collect();
        merged.insert(
            (service, method),
            Merged {
                framed,
                course,
                list: Arc::clone(&list),
            },
        );
        list
    }
    // ANCHOR_END: merge
}

/// Counts a course-format call in flight while it lives.
pub(super) struct CourseCall<'a> {
    /// Whose counters.
    pub(super) inner: &'a ChannelInner,
    /// The `course://` address called.
    pub(super) addr: &'a str,
}

impl<'a> CourseCall<'a> {
    /// Counts one more call to `addr`.
    pub(super) fn start(inner: &'a ChannelInner, addr: &'a str) -> CourseCall<'a> {
        *lock(&inner.course.in_flight)
            .entry(addr.to_string())
            .or_default() += 1;
        CourseCall { inner, addr }
    }
}

impl Drop for CourseCall<'_> {
    fn drop(&mut self) {
        let mut in_flight = lock(&self.inner.course.in_flight);
        if let Some(n) = in_flight.get_mut(self.addr) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                // No entry counts as idle: the map stays as small as the
                // number of course providers with calls in flight.
                in_flight.remove(self.addr);
            }
        }
    }
}
