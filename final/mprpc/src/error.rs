//! Errors: the codes that travel in response frames, [`Status`] — the one
//! error of a call, returned by handlers and seen by callers — and [`Error`],
//! the error of setting up (config, binding, registry).
//!
//! The course's caller had no error channel at all: a provider that did not
//! know the method simply never answered, and an empty reply parsed as a
//! valid, all-default response. Here every failure has a code, and the codes
//! that a provider can report are carried on the wire (see
//! [`crate::frame`]), so the caller can tell "the method does not exist" from
//! "the handler said no" from "the network broke".

use std::fmt;

use crate::metadata::{InvalidMetadata, Metadata};

// ANCHOR: error_code
/// Why a call failed. Values `1..=10` are sent by providers in response frames;
/// the others are produced on the caller's side and never cross the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum ErrorCode {
    /// No error (only used inside response frames).
    Ok = 0,
    /// The provider has no service of that name.
    UnknownService = 1,
    /// The service exists but has no method of that name.
    UnknownMethod = 2,
    /// The request could not be parsed (bad frame header, bad protobuf).
    BadRequest = 3,
    /// The handler ran and returned an error ([`Status`]).
    HandlerError = 4,
    /// The call's deadline passed (on either side).
    DeadlineExceeded = 5,
    /// The provider refused the call: too many connections or calls in flight.
    Overloaded = 6,
    /// A frame was larger than the receiver's `max_frame_size`.
    FrameTooLarge = 7,
    /// The call carries no valid credentials (an interceptor said so).
    Unauthenticated = 8,
    /// The caller is known but may not make this call.
    PermissionDenied = 9,
    /// The peer cannot serve what was asked in this form: a stream to or
    /// from a side whose preamble did not set the streams flag, a unary
    /// call of a streaming method or the other way round.
    Unsupported = 10,
    /// Caller side: connecting, writing or reading failed, or the connection
    /// closed while the call was in flight.
    Transport = 100,
    /// Caller side: the peer sent bytes that are not valid mprpc frames.
    Protocol = 101,
    /// Caller side: the response payload is not a valid protobuf message.
    BadResponse = 102,
    /// Caller side: the call was cancelled through its controller.
    Cancelled = 103,
    /// Caller side: discovery knows no live provider for the service.
    NoProvider = 104,
    /// Caller side: local misuse (for example a blocking call made from
    /// inside an async runtime) or bad configuration.
    Internal = 105,
}
// ANCHOR_END: error_code

impl ErrorCode {
    /// Decodes a code received on the wire. Unknown values map to
    /// [`ErrorCode::Protocol`] so a newer provider cannot crash an older caller.
    pub fn from_wire(byte: u8) -> ErrorCode {
        match byte {
            0 => ErrorCode::Ok,
            1 => ErrorCode::UnknownService,
            2 => ErrorCode::UnknownMethod,
            3 => ErrorCode::BadRequest,
            4 => ErrorCode::HandlerError,
            5 => ErrorCode::DeadlineExceeded,
            6 => ErrorCode::Overloaded,
            7 => ErrorCode::FrameTooLarge,
            8 => ErrorCode::Unauthenticated,
            9 => ErrorCode::PermissionDenied,
            10 => ErrorCode::Unsupported,
            _ => ErrorCode::Protocol,
        }
    }

    /// A short lowercase name, used in error texts and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Ok => "ok",
            ErrorCode::UnknownService => "unknown service",
            ErrorCode::UnknownMethod => "unknown method",
            ErrorCode::BadRequest => "bad request",
            ErrorCode::HandlerError => "handler error",
            ErrorCode::DeadlineExceeded => "deadline exceeded",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::FrameTooLarge => "frame too large",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::PermissionDenied => "permission denied",
            ErrorCode::Unsupported => "unsupported",
            ErrorCode::Transport => "transport error",
            ErrorCode::Protocol => "protocol error",
            ErrorCode::BadResponse => "bad response",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::NoProvider => "no provider",
            ErrorCode::Internal => "internal error",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed call: what a handler returns instead of a response, and what a
/// caller gets back — one type on both sides, as in tonic. The provider sends
/// a handler's `Status` as a response frame with its code and message; the
/// caller's stub returns it unchanged, or a `Status` of its own making when
/// the call failed on the way (codes `100..`).
///
/// Business outcomes that the caller should act on (wrong password, user not
/// found) belong in the response message itself (`ResultCode` in the course's
/// protos); `Status` is for "this call could not be served".
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// Machine-readable reason; handlers normally use
    /// [`ErrorCode::HandlerError`].
    pub code: ErrorCode,
    /// Human-readable explanation (never empty when made by the framework).
    pub message: String,
    /// Metadata that travels with the error: set by a handler or an
    /// interceptor (sent with the error response), or received with one
    /// (on the caller's side). Usually empty.
    pub metadata: Metadata,
}

impl From<InvalidMetadata> for Status {
    /// Metadata a handler or caller tried to set is refused as a bad request.
    fn from(invalid: InvalidMetadata) -> Status {
        Status::new(ErrorCode::BadRequest, invalid.message())
    }
}

// `Metadata::insert` is written here, beside `Status`, and not in
// metadata.rs: a `Status` holds a `Metadata`, so `metadata` must not know
// `Status`, or the two modules would import each other
// (tools/check_modules.py fails on such a circle).
impl Metadata {
    /// Sets `key` to `value`, replacing an earlier value. Fails, changing
    /// nothing, with a `BadRequest` status if the key is not a valid name or
    /// either part is too long for the wire ([`Metadata::try_insert`] says
    /// the same without a `Status`).
    pub fn insert(
        &mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<(), Status> {
        Ok(self.try_insert(key, value)?)
    }
}

/// The name this type had on the caller's side before the two were one;
/// kept so that code written against it still compiles.
pub type RpcError = Status;

impl Status {
    /// A handler error with this message.
    pub fn handler(message: impl Into<String>) -> Status {
        Status {
            code: ErrorCode::HandlerError,
            message: message.into(),
            metadata: Metadata::new(),
        }
    }

    /// A status with an explicit code.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Status {
        Status {
            code,
            message: message.into(),
            metadata: Metadata::new(),
        }
    }

    /// This status with `metadata` to send (or received) with it.
    pub fn with_metadata(mut self, metadata: Metadata) -> Status {
        self.metadata = metadata;
        self
    }

    /// The code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The explanation.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Status {}

/// Errors of setup and lifecycle operations (config, binding, discovery), as
/// opposed to errors of a single call.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Reading the config file or binding a socket failed.
    Io {
        /// What we were doing ("reading config file mprpc.toml", …).
        context: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The configuration is invalid.
    Config(String),
    /// The service registry (ZooKeeper) failed.
    Registry(String),
}

impl Error {
    /// Wraps an I/O error with a sentence saying what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::Config(msg) => write!(f, "configuration error: {msg}"),
            Error::Registry(msg) => write!(f, "registry error: {msg}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
