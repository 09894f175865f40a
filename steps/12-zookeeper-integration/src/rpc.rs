//! The small abstract layer every generated service and stub is written
//! against — the Rust counterpart of protobuf's C++ `service.h`.
//!
//! | C++ (`google::protobuf`)        | here                                   |
//! |---------------------------------|----------------------------------------|
//! | `ServiceDescriptor`             | [`ServiceDescriptor`]                  |
//! | `MethodDescriptor`              | [`MethodDescriptor`]                   |
//! | `Service::CallMethod`           | [`Service::call_method`]               |
//! | `RpcChannel::CallMethod`        | [`RpcChannel::call_method`]            |
//! | `RpcController`                 | [`RpcController`]                      |
//! | `Closure* done` / `done->Run()` | returning from the callee's method     |
//!
//! C++ finds the request and response types at run time through reflection
//! (`GetRequestPrototype(method).New()`). prost has no reflection, so the
//! generated code does that part at compile time: [`Service::call_method`]
//! takes and returns bytes, and the generated `match` knows each method's
//! types.

// ANCHOR: descriptors
/// Describes one rpc method of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodDescriptor {
    /// Position of the method in its service, in `.proto` order.
    pub index: usize,
    /// Short name of the service the method belongs to, e.g. `UserServiceRpc`.
    pub service_name: &'static str,
    /// The method's name as written in the `.proto` file, e.g. `Login`.
    pub name: &'static str,
    /// Full protobuf name of the request type, e.g. `fixbug.LoginRequest`.
    pub input_type: &'static str,
    /// Full protobuf name of the response type.
    pub output_type: &'static str,
}

/// Describes a service: its names and its methods.
#[derive(Debug, PartialEq, Eq)]
pub struct ServiceDescriptor {
    /// Short name, e.g. `UserServiceRpc`. The course's wire format uses this one.
    pub name: &'static str,
    /// Name with the protobuf package, e.g. `fixbug.UserServiceRpc`.
    pub full_name: &'static str,
    /// The methods, in `.proto` order (so `methods[i].index == i`).
    pub methods: &'static [MethodDescriptor],
}

impl ServiceDescriptor {
    /// The method called `name`, if the service has one.
    pub fn find_method_by_name(&self, name: &str) -> Option<&'static MethodDescriptor> {
        self.methods.iter().find(|method| method.name == name)
    }
}
// ANCHOR_END: descriptors

// ANCHOR: service
/// A service as the framework sees it: no types, only names and bytes. A
/// provider keeps a table of these and needs nothing else to serve a call.
pub trait Service: Send + Sync + 'static {
    /// The service's names and methods.
    fn descriptor(&self) -> &'static ServiceDescriptor;

    /// Decodes `request` as `method`'s request type, runs the method, and
    /// returns the encoded response.
    fn call_method(&self, method: &MethodDescriptor, request: &[u8]) -> Result<Vec<u8>, CallError>;
}
// ANCHOR_END: service

/// Why [`Service::call_method`] could not run a method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The service has no method by that name.
    UnknownMethod {
        /// The service that was asked.
        service: &'static str,
        /// The method name that was asked for.
        method: String,
    },
    /// The request bytes are not a valid request message for the method.
    BadRequest {
        /// The method whose request failed to decode.
        method: &'static str,
        /// prost's description of the problem.
        reason: String,
    },
}

impl CallError {
    /// `service` has no method called `method`.
    pub fn unknown_method(service: &ServiceDescriptor, method: &str) -> Self {
        CallError::UnknownMethod {
            service: service.name,
            method: method.to_string(),
        }
    }

    /// The request for `method` did not decode.
    pub fn bad_request(method: &MethodDescriptor, error: prost::DecodeError) -> Self {
        CallError::BadRequest {
            method: method.name,
            reason: error.to_string(),
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::UnknownMethod { service, method } => {
                write!(f, "service {service} has no method {method:?}")
            }
            CallError::BadRequest { method, reason } => {
                write!(f, "request for {method} does not decode: {reason}")
            }
        }
    }
}

impl std::error::Error for CallError {}

// ANCHOR: channel
/// The caller's transport: every stub method ends up here.
///
/// A stub knows which method it calls and the message types; the channel
/// knows how to get the request to a provider and the response back. Step 08
/// writes the real one, `MprpcChannel`, which speaks TCP.
pub trait RpcChannel {
    /// Sends `request` to `method` and fills `response` with the answer.
    ///
    /// There is no return value, as in C++: a failure is reported through
    /// `controller`, when the caller passes one (step 09).
    fn call_method<Req, Resp>(
        &self,
        method: &'static MethodDescriptor,
        controller: Option<&mut dyn RpcController>,
        request: &Req,
        response: &mut Resp,
    ) where
        Req: prost::Message,
        Resp: prost::Message + Default;
}
// ANCHOR_END: channel

// ANCHOR: controller
/// Carries the outcome of one call back to the caller.
///
/// The C++ interface also has `StartCancel`/`IsCanceled`/`NotifyOnCancel`;
/// the course never implements them, so neither do we. final/ adds deadlines
/// and cancellation.
pub trait RpcController {
    /// Clears the state, so the controller can be used for another call.
    fn reset(&mut self);
    /// Whether the last call failed.
    fn failed(&self) -> bool;
    /// What went wrong, when [`failed`](Self::failed) is true.
    fn error_text(&self) -> &str;
    /// Marks the call as failed, with a reason.
    fn set_failed(&mut self, reason: String);
}
// ANCHOR_END: controller
