//! Readmitting an ejected provider only once it answers a health check.
//!
//! A provider is ejected when its connection failed, it sent goaway, or it
//! stayed silent past a deadline. When `timeouts.eject_ms` has passed, the
//! channel does not send it the next real call to find out whether it is
//! back: a task asks it `mprpc.health.v1.Health/Check` for the whole
//! provider, on a connection of its own, first. It is readmitted when it
//! answers anything but `NOT_SERVING` (a refusal by its interceptors, or
//! `UnknownService` from a provider without the health service, is an
//! answer: the process is there and reading); otherwise it stays out for
//! another `eject_ms`, and is asked again — as long as the registry still
//! lists it. Course-format providers have no health service: their
//! ejection simply ends.

use super::*;
use crate::telemetry::health::{HEALTH, HealthCheckRequest, HealthCheckResponse, ServingStatus};

/// Why and until when a provider is avoided.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ejection {
    /// The end of the ejection's time.
    pub(super) until: Instant,
    /// A health check decides when it ends, not the clock alone.
    pub(super) probed: bool,
}

impl Ejection {
    /// Still to be avoided at `now`.
    pub(super) fn holds(&self, now: Instant) -> bool {
        self.probed || self.until > now
    }
}

impl ChannelInner {
    // ANCHOR: probe
    /// Starts the task that readmits the ejected framed provider `addr`
    /// once it answers a health check. Called with `addr` just ejected and
    /// marked `probed`; one task per provider.
    pub(super) fn start_probe(self: &Arc<Self>, addr: &str) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime to run it on: the clock alone ends the ejection.
            if let Some(e) = lock(&self.ejected).get_mut(addr) {
                e.probed = false;
            }
            return;
        };
        let weak = Arc::downgrade(self);
        let addr = addr.to_string();
        runtime.spawn(async move {
            loop {
                let until = match weak.upgrade() {
                    Some(inner) => match lock(&inner.ejected).get(&addr) {
                        Some(e) if e.probed => e.until,
                        // Readmitted meanwhile (a call went there when
                        // every provider was ejected, and it answered).
                        _ => return,
                    },
                    None => return,
                };
                tokio::time::sleep_until(until.into()).await;
                let Some(inner) = weak.upgrade() else { return };
                if !inner.listed(&addr) {
                    // No longer a provider of anything we call: forget it.
                    lock(&inner.ejected).remove(&addr);
                    return;
                }
                if client_metrics::enabled() {
                    // Still avoided while it is asked (the gauge says so).
                    client_metrics::record_ejected(&addr, inner.settings.connect_timeout * 2);
                }
                if inner.answers_health_check(&addr).await {
                    log::info!("{addr} answers its health check again; readmitted");
                    inner.restore(&addr);
                    return;
                }
                log::debug!(
                    "{addr} still fails its health check; avoided for another {:?}",
                    inner.eject_for
                );
                if let Some(e) = lock(&inner.ejected).get_mut(&addr) {
                    e.until = Instant::now() + inner.eject_for;
                }
                if client_metrics::enabled() {
                    client_metrics::record_ejected(&addr, inner.eject_for);
                }
            }
        });
    }

    /// Whether the provider at `addr` answers `Health/Check("")` within the
    /// connect timeout with anything but `NOT_SERVING`.
    async fn answers_health_check(&self, addr: &str) -> bool {
        let budget = self.settings.connect_timeout;
        let ask = async {
            let serial = self.next_serial.fetch_add(1, Ordering::Relaxed);
            // Not pooled: the pool's connection events are not for it.
            let events: EventSink = Arc::new(|_, _| {});
            let conn = Connection::connect(addr, serial, &self.settings, events)
                .await
                .ok()?;
            let request = HealthCheckRequest {
                service: String::new(),
            };
            let timeout_ms = budget.as_millis().clamp(1, u32::MAX as u128) as u32;
            let handed_over = AtomicBool::new(false);
            let deadline = Some(Instant::now() + budget);
            let method = HEALTH.methods[0];
            let reply = conn
                .call(
                    HEALTH.full_name,
                    method,
                    timeout_ms,
                    deadline,
                    &handed_over,
                    (None, None),
                    &request,
                )
                .await;
            Some(match reply {
                Ok((payload, _)) => <HealthCheckResponse as prost::Message>::decode(payload)
                    .is_ok_and(|r| r.status != ServingStatus::NotServing as i32),
                // The provider answered, if with a refusal.
                Err(CallError::Failed(status)) => status.code != ErrorCode::Transport,
                Err(CallError::NotSent(_) | CallError::DeadlinePassed) => false,
            })
        };
        tokio::time::timeout(budget * 2, ask)
            .await
            .ok()
            .flatten()
            .unwrap_or(false)
    }
    // ANCHOR_END: probe

    /// Whether `addr` is on a provider list this channel follows.
    fn listed(&self, addr: &str) -> bool {
        lock(&self.lists)
            .values()
            .any(|rx| rx.borrow().iter().any(|a| a == addr))
    }
}
