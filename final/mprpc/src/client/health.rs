//! [`HealthClient`]: the caller's side of the built-in health service.

use crate::controller::MprpcController;
use crate::error::Status;
use crate::telemetry::health::{HEALTH, HealthCheckRequest, HealthCheckResponse, ServingStatus};

use super::MprpcChannel;

// ANCHOR: health_client
/// Asks a provider how it is: `mprpc.health.v1.Health/Check`.
///
/// The health service is not in the registry (callers find providers by
/// their own services), so the channel should send everything to the one
/// provider asked about:
///
/// ```no_run
/// # async fn demo() -> Result<(), mprpc::Status> {
/// use mprpc::health::{HealthClient, ServingStatus};
/// let health = HealthClient::direct("10.0.0.7:8000");
/// let status = health.check("fixbug.UserServiceRpc").await?;
/// assert_eq!(status, ServingStatus::Serving);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct HealthClient {
    /// Where the checks go.
    channel: MprpcChannel,
}

impl HealthClient {
    /// A client sending its checks over `channel`.
    pub fn new(channel: MprpcChannel) -> HealthClient {
        HealthClient { channel }
    }

    /// A client for the provider at `addr` ("ip:port"), default settings.
    pub fn direct(addr: &str) -> HealthClient {
        HealthClient::new(MprpcChannel::direct(addr))
    }

    /// The status of `service` (a full name; empty: the whole provider).
    pub async fn check(&self, service: &str) -> Result<ServingStatus, Status> {
        self.check_inner(None, service).await
    }

    /// [`check`](Self::check) under `controller` (deadline, metadata).
    pub async fn check_with(
        &self,
        controller: &MprpcController,
        service: &str,
    ) -> Result<ServingStatus, Status> {
        self.check_inner(Some(controller), service).await
    }

    /// Sends the check; a number this build does not know is `Unknown`.
    async fn check_inner(
        &self,
        controller: Option<&MprpcController>,
        service: &str,
    ) -> Result<ServingStatus, Status> {
        let request = HealthCheckRequest {
            service: service.to_string(),
        };
        let response: HealthCheckResponse =
            self.channel.call(controller, &HEALTH, 0, &request).await?;
        Ok(ServingStatus::try_from(response.status).unwrap_or(ServingStatus::Unknown))
    }
}
// ANCHOR_END: health_client
