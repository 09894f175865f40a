//! Interceptors: code that sees every call on its way in (provider) or out
//! (caller), before any handler or network, and may change its metadata or
//! refuse it with a [`Status`].
//!
//! They are what tonic calls interceptors and what brpc and other
//! frameworks call filters or middleware: the one place for authentication,
//! for stamping a trace id on every request, for refusing callers by name.
//! They are synchronous on purpose, as tonic's are: an interceptor that had
//! to wait (ask an auth server) would hold up the connection's task, which
//! serves every call of that connection — do that work in the handler, or
//! cache the answer where the interceptor can read it.
//!
//! Order: a provider runs its interceptors in the order they were added,
//! before the handler is looked at; the first refusal ends the call and is
//! sent to the caller as the call's error. A caller runs its channel's
//! interceptors in order after the controller's metadata has been copied
//! into the call, before a provider is chosen.

use std::net::SocketAddr;

use crate::error::Status;
use crate::metadata::Metadata;

// ANCHOR: server
/// A call as a provider's interceptor sees it, before its handler runs.
#[derive(Debug)]
#[non_exhaustive]
pub struct ServerCall {
    /// Full service name ("fixbug.UserServiceRpc").
    pub service: &'static str,
    /// Method name ("Login").
    pub method: &'static str,
    /// Address of the caller.
    pub peer: SocketAddr,
    /// Call id on its connection (0 for course-format calls).
    pub call_id: u64,
    /// True for a call in the course's format: it has no metadata, so an
    /// interceptor that requires some refuses every such call.
    pub legacy: bool,
    /// The request's metadata: change it here and the handler sees the
    /// change in [`CallContext::metadata`](crate::CallContext).
    pub metadata: Metadata,
    /// Metadata to send back with the response, whatever the handler
    /// answers (the handler's own entries are added to these).
    pub response_metadata: Metadata,
}

/// Runs on the provider before every handler.
pub trait ServerInterceptor: Send + Sync + 'static {
    /// Inspects or changes `call`; an `Err` refuses it with that status
    /// (the handler does not run).
    fn intercept(&self, call: &mut ServerCall) -> Result<(), Status>;
}

impl<F> ServerInterceptor for F
where
    F: Fn(&mut ServerCall) -> Result<(), Status> + Send + Sync + 'static,
{
    fn intercept(&self, call: &mut ServerCall) -> Result<(), Status> {
        self(call)
    }
}
// ANCHOR_END: server

// ANCHOR: client
/// A call as a caller's interceptor sees it, before it is sent.
#[derive(Debug)]
#[non_exhaustive]
pub struct ClientCall {
    /// Full service name ("fixbug.UserServiceRpc").
    pub service: &'static str,
    /// Method name ("Login").
    pub method: &'static str,
    /// The request's metadata, starting with the controller's.
    pub metadata: Metadata,
}

/// Runs on the caller before every call of a channel.
pub trait ClientInterceptor: Send + Sync + 'static {
    /// Inspects or changes `call`; an `Err` fails the call with that status
    /// before anything is sent.
    fn intercept(&self, call: &mut ClientCall) -> Result<(), Status>;
}

impl<F> ClientInterceptor for F
where
    F: Fn(&mut ClientCall) -> Result<(), Status> + Send + Sync + 'static,
{
    fn intercept(&self, call: &mut ClientCall) -> Result<(), Status> {
        self(call)
    }
}
// ANCHOR_END: client
