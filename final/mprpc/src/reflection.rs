//! The built-in reflection service `mprpc.reflection.v1.Reflection`: which
//! services a provider publishes, and the `.proto` schema of each, so a
//! tool (the `mprpc` command-line tool's `list`, `describe` and `call`)
//! needs no `.proto` files of its own.
//!
//! The messages are described in `proto/reflection.proto` beside this
//! crate's `Cargo.toml`, modelled on grpc.reflection.v1 but unary: one
//! method lists the services, one returns the file descriptors that define
//! a service or method. The schemas come from the descriptor sets
//! `mprpc-build` embeds in every generated [`ServiceDescriptor`]
//! ([`ServiceDescriptor::file_descriptor_set`]).
//!
//! A provider answers it only with `[reflection] enabled = true`: the
//! schema of every published service is then readable by anybody who can
//! connect, which is a map of the attack surface, so it is off by default.

use std::sync::Arc;

use crate::error::{ErrorCode, Status};
use crate::service::{CallContext, ResponseFuture, Service, ServiceDescriptor};

// ANCHOR: messages
/// `mprpc.reflection.v1.ListServicesRequest` (no fields).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ListServicesRequest {}

/// `mprpc.reflection.v1.ListServicesResponse`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ListServicesResponse {
    /// Full names of the published services, sorted (the built-in Health
    /// and Reflection services are not listed).
    #[prost(string, repeated, tag = "1")]
    pub service: Vec<String>,
}

/// `mprpc.reflection.v1.FileContainingSymbolRequest`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct FileContainingSymbolRequest {
    /// A published service's full name ("fixbug.UserServiceRpc") or one of
    /// its methods ("fixbug.UserServiceRpc.Login").
    #[prost(string, tag = "1")]
    pub symbol: String,
}

/// `mprpc.reflection.v1.FileDescriptorResponse`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct FileDescriptorResponse {
    /// Encoded `google.protobuf.FileDescriptorProto`s: the file defining the
    /// symbol and every file it imports, imports first.
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub file_descriptor_proto: Vec<Vec<u8>>,
}
// ANCHOR_END: messages

/// The service's names; like health, answered but never registered.
pub static REFLECTION: ServiceDescriptor = ServiceDescriptor::new(
    "Reflection",
    "mprpc.reflection.v1.Reflection",
    &["ListServices", "FileContainingSymbol"],
);

/// A `google.protobuf.FileDescriptorSet` seen only as its files' bytes
/// (field 1, `repeated FileDescriptorProto file`): the service hands the
/// files on without parsing them.
#[derive(Clone, PartialEq, Eq, prost::Message)]
struct RawFileDescriptorSet {
    /// Each file, still encoded.
    #[prost(bytes = "vec", repeated, tag = "1")]
    file: Vec<Vec<u8>>,
}

/// The built-in `mprpc.reflection.v1.Reflection` service of one provider.
pub(crate) struct ReflectionService {
    /// The published services' descriptors, sorted by full name.
    services: Vec<&'static ServiceDescriptor>,
}

impl ReflectionService {
    /// The service for a provider publishing `services`.
    pub(crate) fn new(services: impl IntoIterator<Item = &'static ServiceDescriptor>) -> Self {
        let mut services: Vec<_> = services.into_iter().collect();
        services.sort_by_key(|d| d.full_name);
        ReflectionService { services }
    }

    /// The answer to `ListServices`.
    fn list(&self) -> ListServicesResponse {
        ListServicesResponse {
            service: self.services.iter().map(|d| d.full_name.into()).collect(),
        }
    }

    /// The answer to `FileContainingSymbol(symbol)`.
    fn files(&self, symbol: &str) -> Result<FileDescriptorResponse, Status> {
        let found = self.services.iter().find(|d| {
            d.full_name == symbol
                || symbol
                    .strip_prefix(d.full_name)
                    .and_then(|rest| rest.strip_prefix('.'))
                    .is_some_and(|m| d.methods.contains(&m))
        });
        let Some(desc) = found else {
            let names: Vec<&str> = self.services.iter().map(|d| d.full_name).collect();
            return Err(Status::new(
                ErrorCode::HandlerError,
                format!(
                    "no published service or method {symbol:?} (published: {})",
                    names.join(", ")
                ),
            ));
        };
        if desc.file_descriptor_set.is_empty() {
            return Err(Status::new(
                ErrorCode::HandlerError,
                format!(
                    "{} was published without its file descriptor set (a descriptor not made by mprpc-build)",
                    desc.full_name
                ),
            ));
        }
        let set = <RawFileDescriptorSet as prost::Message>::decode(desc.file_descriptor_set)
            .map_err(|e| {
                Status::new(
                    ErrorCode::HandlerError,
                    format!(
                        "{}'s embedded file descriptor set does not decode: {e}",
                        desc.full_name
                    ),
                )
            })?;
        Ok(FileDescriptorResponse {
            file_descriptor_proto: set.file,
        })
    }
}

impl Service for ReflectionService {
    fn descriptor(&self) -> &'static ServiceDescriptor {
        &REFLECTION
    }

    fn call(&self, method: usize, _ctx: CallContext, request: bytes::Bytes) -> ResponseFuture {
        let result = match method {
            0 => match <ListServicesRequest as prost::Message>::decode(request) {
                Ok(_) => Ok(prost::Message::encode_to_vec(&self.list())),
                Err(e) => Err(bad_request("ListServices", &e)),
            },
            1 => match <FileContainingSymbolRequest as prost::Message>::decode(request) {
                Ok(req) => self
                    .files(&req.symbol)
                    .map(|r| prost::Message::encode_to_vec(&r)),
                Err(e) => Err(bad_request("FileContainingSymbol", &e)),
            },
            other => return crate::service::unknown_method(&REFLECTION, other),
        };
        Box::pin(std::future::ready(result))
    }
}

/// The status of a request that is not the method's message.
fn bad_request(method: &str, e: &prost::DecodeError) -> Status {
    Status::new(
        ErrorCode::BadRequest,
        format!("request for {method} is not a valid mprpc.reflection.v1 message: {e}"),
    )
}

/// The reflection service of a provider publishing `services`, as the
/// provider keeps it.
pub(crate) fn service(
    services: impl IntoIterator<Item = &'static ServiceDescriptor>,
) -> Arc<dyn Service> {
    Arc::new(ReflectionService::new(services))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// A set of two files, `a.proto` and `b.proto`, encoded by hand: field 1
    /// (tag 0x0a) twice, each a FileDescriptorProto with only its name
    /// (field 1, tag 0x0a).
    const SET: &[u8] = b"\x0a\x09\x0a\x07a.proto\x0a\x09\x0a\x07b.proto";

    static WITH_SET: ServiceDescriptor =
        ServiceDescriptor::new("S", "p.S", &["Get"]).with_file_descriptor_set(SET);
    static WITHOUT: ServiceDescriptor = ServiceDescriptor::new("T", "p.T", &["Put"]);

    #[test]
    fn messages_encode_as_the_proto_says() {
        let list = ListServicesResponse {
            service: vec!["a.B".into()],
        };
        assert_eq!(list.encode_to_vec(), b"\x0a\x03a.B");
        let req = FileContainingSymbolRequest {
            symbol: "a.B".into(),
        };
        assert_eq!(req.encode_to_vec(), b"\x0a\x03a.B");
        let files = FileDescriptorResponse {
            file_descriptor_proto: vec![b"xy".to_vec()],
        };
        assert_eq!(files.encode_to_vec(), b"\x0a\x02xy");
        assert!(ListServicesRequest {}.encode_to_vec().is_empty());
    }

    #[test]
    fn symbols_find_their_service_s_files_and_nothing_else() {
        let svc = ReflectionService::new([&WITHOUT, &WITH_SET]);
        assert_eq!(svc.list().service, ["p.S", "p.T"]);
        let files = |symbol: &str| svc.files(symbol).map(|r| r.file_descriptor_proto);
        let expected = vec![b"\x0a\x07a.proto".to_vec(), b"\x0a\x07b.proto".to_vec()];
        assert_eq!(files("p.S").ok(), Some(expected.clone()));
        assert_eq!(files("p.S.Get").ok(), Some(expected));
        for unknown in ["p.S.Put", "p.SS", "p", "", "S"] {
            let err = files(unknown).err().map(|e| e.message().to_string());
            assert!(
                err.as_deref().is_some_and(|m| m.contains("no published")),
                "{unknown:?}: {err:?}"
            );
        }
        let err = files("p.T").err().map(|e| e.message().to_string());
        assert!(
            err.as_deref()
                .is_some_and(|m| m.contains("without its file descriptor set")),
            "{err:?}"
        );
    }
}
