//! The provider's health, asked two ways: the built-in service
//! `mprpc.health.v1.Health` on the provider's own port (framed format, so
//! it passes through the same TLS, limits and interceptors as any call), and
//! `GET /healthz` / `GET /readyz` on the admin endpoint for Kubernetes
//! probes and load balancers that speak only HTTP.
//!
//! The messages and numbers are grpc.health.v1's (`proto/health.proto`
//! beside this crate's `Cargo.toml`). They are written here with prost's
//! derives instead of generated: mprpc has no `build.rs`, and a crate using
//! mprpc must get them without running protoc.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use crate::error::{ErrorCode, Status};
use crate::registry::Registry;
use crate::service::{CallContext, ResponseFuture, Service, ServiceDescriptor};

// ANCHOR: messages
/// `mprpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct HealthCheckRequest {
    /// A published service's full name ("fixbug.UserServiceRpc"), or empty
    /// for the provider as a whole.
    #[prost(string, tag = "1")]
    pub service: String,
}

/// `mprpc.health.v1.HealthCheckResponse`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct HealthCheckResponse {
    /// A [`ServingStatus`] as its number (protobuf enums are open: a newer
    /// provider may send a number this build does not know).
    #[prost(enumeration = "ServingStatus", tag = "1")]
    pub status: i32,
}

/// `HealthCheckResponse.ServingStatus`, grpc.health.v1's numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
#[non_exhaustive]
pub enum ServingStatus {
    /// A number this build does not know (or none was sent).
    Unknown = 0,
    /// Taking calls.
    Serving = 1,
    /// Up, but not taking new calls: draining during shutdown.
    NotServing = 2,
    /// No such service is published here.
    ServiceUnknown = 3,
}
// ANCHOR_END: messages

/// The service's names; the provider answers it without publishing it in
/// the registry (callers find providers by their own services).
pub static HEALTH: ServiceDescriptor =
    ServiceDescriptor::new("Health", "mprpc.health.v1.Health", &["Check"]);

// ANCHOR: state
/// What the health service and `/readyz` report, shared with the provider
/// that changes it.
#[derive(Debug)]
pub(crate) struct HealthState {
    /// Full names of the published services, sorted.
    services: Vec<String>,
    /// Set once every service is registered (with a registry that has
    /// nothing to register with, at once after binding): the registry,
    /// asked from then on whether the registrations are still there.
    registered: OnceLock<Arc<dyn Registry>>,
    /// Set when `shutdown` starts: from then on everything is NOT_SERVING.
    draining: AtomicBool,
}

impl HealthState {
    /// The state of a provider publishing `services`, not yet registered.
    pub(crate) fn new(mut services: Vec<String>) -> HealthState {
        services.sort();
        HealthState {
            services,
            registered: OnceLock::new(),
            draining: AtomicBool::new(false),
        }
    }

    /// Every service is registered in `registry`.
    pub(crate) fn set_registered(&self, registry: Arc<dyn Registry>) {
        let _ = self.registered.set(registry);
    }

    /// Shutdown started.
    pub(crate) fn set_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Draining (shutdown started).
    pub(crate) fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// `/readyz`: registered (still) and not draining; else why not.
    pub(crate) fn ready(&self) -> Result<(), &'static str> {
        match self.registered.get() {
            _ if self.draining() => Err("draining (shutdown started)"),
            None => Err("not registered yet"),
            Some(registry) if !registry.registrations_live() => Err(
                "not registered: the registry lost this provider's registration \
                 (ZooKeeper session expired or out of touch); re-registering",
            ),
            Some(_) => Ok(()),
        }
    }

    /// The answer to `Check(service)`.
    pub(crate) fn check(&self, service: &str) -> ServingStatus {
        let known = service.is_empty()
            || service == HEALTH.full_name
            || self
                .services
                .binary_search_by(|s| s.as_str().cmp(service))
                .is_ok();
        match (known, self.draining()) {
            (false, _) => ServingStatus::ServiceUnknown,
            (true, true) => ServingStatus::NotServing,
            (true, false) => ServingStatus::Serving,
        }
    }
}
// ANCHOR_END: state

/// The built-in `mprpc.health.v1.Health` service of one provider.
pub(crate) struct HealthService(pub(crate) Arc<HealthState>);

impl Service for HealthService {
    fn descriptor(&self) -> &'static ServiceDescriptor {
        &HEALTH
    }

    fn call(&self, method: usize, _ctx: CallContext, request: bytes::Bytes) -> ResponseFuture {
        if method != 0 {
            return crate::service::unknown_method(&HEALTH, method);
        }
        let result = match <HealthCheckRequest as prost::Message>::decode(request) {
            Ok(req) => {
                let status = self.0.check(&req.service) as i32;
                Ok(prost::Message::encode_to_vec(&HealthCheckResponse {
                    status,
                }))
            }
            Err(e) => Err(Status::new(
                ErrorCode::BadRequest,
                format!("request for Check is not a valid HealthCheckRequest: {e}"),
            )),
        };
        Box::pin(std::future::ready(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn messages_encode_as_the_proto_says() {
        // Field 1, length-delimited (tag byte 0x0a), then the string.
        let req = HealthCheckRequest {
            service: "a.B".into(),
        };
        assert_eq!(req.encode_to_vec(), b"\x0a\x03a.B");
        // Field 1, varint (tag byte 0x08), NOT_SERVING = 2.
        let resp = HealthCheckResponse {
            status: ServingStatus::NotServing as i32,
        };
        assert_eq!(resp.encode_to_vec(), b"\x08\x02");
        let numbers = [
            ServingStatus::Unknown,
            ServingStatus::Serving,
            ServingStatus::NotServing,
            ServingStatus::ServiceUnknown,
        ]
        .map(|s| s as i32);
        assert_eq!(numbers, [0, 1, 2, 3]);
    }

    #[test]
    fn the_state_follows_registration_and_drain() {
        let state = HealthState::new(vec!["b.S".into(), "a.S".into()]);
        assert_eq!(state.check("a.S"), ServingStatus::Serving);
        assert_eq!(state.check(""), ServingStatus::Serving);
        assert_eq!(state.check("c.S"), ServingStatus::ServiceUnknown);
        assert!(state.ready().is_err());
        state.set_registered(Arc::new(crate::registry::StaticRegistry::default()));
        assert!(state.ready().is_ok());
        state.set_draining();
        assert_eq!(state.check("b.S"), ServingStatus::NotServing);
        assert_eq!(state.check("c.S"), ServingStatus::ServiceUnknown);
        assert!(state.ready().is_err());
    }
}
