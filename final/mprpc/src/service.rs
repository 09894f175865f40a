//! The dispatch layer between the provider and generated service code.
//!
//! The course's provider kept a map `service name → (Service*, method name →
//! MethodDescriptor*)` and called `service->CallMethod(method, ...)`, relying
//! on protobuf's reflection to create the right request and response types.
//! Here the generated `*Server<T>` adapters implement [`Service`]: they decode
//! the request type of method `i`, call the user's `async fn`, and encode the
//! response. The trait is object-safe (it returns a boxed future), so the
//! provider can keep services of different types in one map.
//!
//! Why a boxed future and not an enum of all services: the provider is a
//! library and cannot know the user's services. The box costs one allocation
//! per call, which measured well below the cost of a task per request (see
//! [`crate::provider`]).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::error::{ErrorCode, Status};
use crate::metadata::Metadata;

// ANCHOR: service_trait
/// The future a [`Service`] returns for one call: the encoded response or a
/// [`Status`].
pub type ResponseFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>, Status>> + Send + 'static>>;

/// Names of a service and its methods, generated from the `.proto` file.
///
/// Which name is used where: the framed format and the registry carry
/// [`full_name`](Self::full_name), so two packages may each have a service
/// called `Store`; the course's format and the course's ZooKeeper layout
/// carry [`name`](Self::name), because that is what the C++ programs send.
#[derive(Debug)]
#[non_exhaustive]
pub struct ServiceDescriptor {
    /// Short name ("UserServiceRpc"), as the course's format carries it.
    pub name: &'static str,
    /// Fully qualified protobuf name ("fixbug.UserServiceRpc"): the name in
    /// frames and in the registry.
    pub full_name: &'static str,
    /// Method names in `.proto` order; a method's index is its position here.
    pub methods: &'static [&'static str],
    /// The encoded `google.protobuf.FileDescriptorSet` of the `.proto` files
    /// the service was generated from (its file and every import), which
    /// `mprpc-build` embeds; empty when unknown (a descriptor written by
    /// hand). The reflection service serves it (see [`crate::reflection`]).
    pub file_descriptor_set: &'static [u8],
    /// Each method's kind, in the order of `methods`; empty (a descriptor
    /// written by hand, or generated before streams) means all unary.
    pub method_kinds: &'static [MethodKind],
}

/// Whether a method takes and returns one message or a stream of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MethodKind {
    /// One request, one response.
    Unary,
    /// One request, a stream of responses (`returns (stream T)`).
    ServerStreaming,
    /// A stream of requests, one response (`rpc M(stream T)`).
    ClientStreaming,
    /// Streams both ways (`rpc M(stream T) returns (stream U)`).
    Bidi,
}

impl ServiceDescriptor {
    /// A descriptor; generated code calls this, one `static` per service.
    pub const fn new(
        name: &'static str,
        full_name: &'static str,
        methods: &'static [&'static str],
    ) -> ServiceDescriptor {
        ServiceDescriptor {
            name,
            full_name,
            methods,
            file_descriptor_set: &[],
            method_kinds: &[],
        }
    }

    /// The same descriptor with the kinds of its methods (in `methods`
    /// order); generated code calls this when a service has a streaming
    /// method.
    pub const fn with_method_kinds(self, kinds: &'static [MethodKind]) -> ServiceDescriptor {
        ServiceDescriptor {
            method_kinds: kinds,
            ..self
        }
    }

    /// The kind of method `index` ([`MethodKind::Unary`] unless the
    /// descriptor says otherwise).
    pub fn method_kind(&self, index: usize) -> MethodKind {
        self.method_kinds
            .get(index)
            .copied()
            .unwrap_or(MethodKind::Unary)
    }

    /// The same descriptor carrying the encoded file descriptor set of its
    /// `.proto` files; generated code calls this with the set `mprpc-build`
    /// wrote next to it.
    pub const fn with_file_descriptor_set(self, set: &'static [u8]) -> ServiceDescriptor {
        ServiceDescriptor {
            file_descriptor_set: set,
            ..self
        }
    }

    /// Index of the method called `name`, compared as bytes because that is
    /// what arrives on the wire. Services have a handful of methods, so a
    /// linear scan beats hashing.
    pub fn method_index(&self, name: &[u8]) -> Option<usize> {
        self.methods.iter().position(|m| m.as_bytes() == name)
    }
}

/// A service the provider can dispatch to; implemented by the generated
/// `*Server<T>` adapters (the course's `google::protobuf::Service`).
pub trait Service: Send + Sync + 'static {
    /// The service's names.
    fn descriptor(&self) -> &'static ServiceDescriptor;

    /// Starts method number `method` with the serialized `request`.
    fn call(&self, method: usize, ctx: CallContext, request: bytes::Bytes) -> ResponseFuture;

    /// Starts server-streaming method number `method` with the serialized
    /// `request`: the future gives the stream of encoded responses. The
    /// provider calls it only for methods the descriptor marks
    /// [`MethodKind::ServerStreaming`]; a service without any need not
    /// implement it.
    fn server_stream(
        &self,
        method: usize,
        ctx: CallContext,
        request: bytes::Bytes,
    ) -> StreamFuture {
        let _ = (ctx, request);
        no_stream_method(self.descriptor(), method)
    }

    /// Starts client-streaming or bidirectional method number `method`,
    /// whose requests are the caller's messages in `requests`: the future
    /// gives the stream of encoded responses (a client-streaming method's
    /// one response is a stream of one message). The provider calls it
    /// only for methods the descriptor marks [`MethodKind::ClientStreaming`]
    /// or [`MethodKind::Bidi`]; a service without any need not implement it.
    fn client_stream(
        &self,
        method: usize,
        ctx: CallContext,
        requests: crate::streaming::RawMessages,
    ) -> StreamFuture {
        let _ = (ctx, requests);
        no_stream_method(self.descriptor(), method)
    }
}

/// The encoded messages of one server stream, each a message or the
/// [`Status`] that ends the stream.
pub type MessageStream =
    Pin<Box<dyn futures_util::Stream<Item = Result<Vec<u8>, Status>> + Send + 'static>>;

/// What [`Service::server_stream`] returns: the handler's stream, once the
/// handler has made it, or why it did not.
pub type StreamFuture =
    Pin<Box<dyn Future<Output = Result<MessageStream, Status>> + Send + 'static>>;
// ANCHOR_END: service_trait

// ANCHOR: call_context
/// Facts about the call being served, handed to every handler.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CallContext {
    /// Address of the caller.
    pub peer: SocketAddr,
    /// When the caller stops waiting, if it said so. Handlers doing long work
    /// can check it and give up early; the provider also enforces it.
    pub deadline: Option<Instant>,
    /// Request id on its connection (0 for legacy one-shot calls).
    pub call_id: u64,
    /// True when the call arrived in the course's original format.
    pub legacy: bool,
    /// The request's metadata, as the caller (and the provider's
    /// interceptors) left it. Empty for course-format calls.
    pub metadata: Metadata,
    /// Metadata for the response; shared with the provider, which sends it
    /// when the handler returns. Clones of the context share it.
    response_metadata: Arc<Mutex<Metadata>>,
}
// ANCHOR_END: call_context

impl CallContext {
    /// The context of a call from `peer` with no deadline — what a test of a
    /// handler passes when it calls the handler directly, without a provider.
    pub fn new(peer: SocketAddr) -> CallContext {
        CallContext {
            peer,
            deadline: None,
            call_id: 0,
            legacy: false,
            metadata: Metadata::new(),
            response_metadata: Arc::default(),
        }
    }

    /// The context of a call the provider is about to run; the provider
    /// keeps a handle on `response_metadata`.
    pub(crate) fn for_call(
        peer: SocketAddr,
        deadline: Option<Instant>,
        call_id: u64,
        legacy: bool,
        metadata: Metadata,
        response_metadata: Arc<Mutex<Metadata>>,
    ) -> CallContext {
        CallContext {
            peer,
            deadline,
            call_id,
            legacy,
            metadata,
            response_metadata,
        }
    }

    /// Adds `key: value` to the response's metadata (replacing an earlier
    /// value). The caller reads it with
    /// [`MprpcController::response_metadata`](crate::MprpcController::response_metadata).
    /// Dropped for callers that do not understand metadata (course-format
    /// calls, older callers); refused here when the key or value is not
    /// valid; and checked against the provider's `limits.max_metadata_*`
    /// when sent (a response over them fails with `HandlerError`).
    pub fn set_response_metadata(
        &self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<(), Status> {
        lock(&self.response_metadata).insert(key, value)
    }

    /// Takes the response metadata set so far (the provider does, when the
    /// handler has returned).
    pub fn take_response_metadata(&self) -> Metadata {
        std::mem::take(&mut *lock(&self.response_metadata))
    }
}

/// Locks, ignoring poisoning: a metadata map is valid after any insert.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The ready error future for a request that failed to decode. Used by
/// generated code (through [`crate::codegen`]).
pub fn bad_request(method: &str, err: &prost::DecodeError) -> ResponseFuture {
    let status = Status::new(
        ErrorCode::BadRequest,
        format!("request for {method} is not a valid protobuf message: {err}"),
    );
    Box::pin(std::future::ready(Err(status)))
}

/// The ready error future for a method index the service does not have. Used
/// by generated code; the provider checks indexes first, so this is a guard.
pub fn unknown_method(service: &ServiceDescriptor, index: usize) -> ResponseFuture {
    let status = Status::new(
        ErrorCode::UnknownMethod,
        format!("service {} has no method number {index}", service.name),
    );
    Box::pin(std::future::ready(Err(status)))
}

/// Turns a handler's stream of messages into the [`MessageStream`] the
/// provider sends. Used by generated code.
pub fn encode_stream<S, M>(stream: S) -> MessageStream
where
    S: futures_util::Stream<Item = Result<M, Status>> + Send + 'static,
    M: prost::Message,
{
    use futures_util::StreamExt;
    Box::pin(stream.map(|item| item.map(|m| m.encode_to_vec())))
}

/// The caller's messages of a client or bidirectional stream, decoded as
/// `T`: what a handler receives. Used by generated code.
pub fn requests<T: prost::Message + Default>(
    raw: crate::streaming::RawMessages,
) -> crate::Streaming<T> {
    crate::Streaming::new(raw)
}

/// A client-streaming handler's result as the [`MessageStream`] the
/// provider sends: its one response, then the end. Used by generated code.
pub fn one_response<M: prost::Message>(result: Result<M, Status>) -> Result<MessageStream, Status> {
    let message = result?.encode_to_vec();
    Ok(Box::pin(futures_util::stream::once(std::future::ready(
        Ok(message),
    ))))
}

/// The ready error for a stream opened on a method that is not a
/// streaming one. Used by generated code.
pub fn no_stream_method(service: &ServiceDescriptor, index: usize) -> StreamFuture {
    let status = Status::new(
        ErrorCode::Unsupported,
        format!(
            "{}.{} is not a server-streaming method",
            service.full_name,
            service.methods.get(index).copied().unwrap_or("?")
        ),
    );
    Box::pin(std::future::ready(Err(status)))
}

/// The ready error future for a unary call of a streaming method. Used by
/// generated code; the provider checks first, so this is a guard.
pub fn not_unary(service: &ServiceDescriptor, index: usize) -> ResponseFuture {
    let status = Status::new(
        ErrorCode::Unsupported,
        format!(
            "{}.{} is a streaming method; call it through its stream",
            service.full_name,
            service.methods.get(index).copied().unwrap_or("?")
        ),
    );
    Box::pin(std::future::ready(Err(status)))
}

/// The ready error for a stream whose request failed to decode. Used by
/// generated code.
pub fn bad_stream_request(method: &str, err: &prost::DecodeError) -> StreamFuture {
    let status = Status::new(
        ErrorCode::BadRequest,
        format!("request for {method} is not a valid protobuf message: {err}"),
    );
    Box::pin(std::future::ready(Err(status)))
}
