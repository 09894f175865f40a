//! The schema from the provider itself: its built-in reflection service
//! (`mprpc.reflection.v1.Reflection`, served with `[reflection] enabled =
//! true`) lists the published services and returns the file descriptors of
//! each; they become the same prost-reflect pool a `--proto` file gives.

use mprpc::reflection::{
    FileContainingSymbolRequest, FileDescriptorResponse, ListServicesRequest, ListServicesResponse,
    REFLECTION,
};
use mprpc::{ErrorCode, Metadata, MprpcController, Status};

use crate::call::{self, Addr, Connect};
use crate::schema::Schema;

/// What a provider without reflection makes the tool say.
pub const NOT_SERVED: &str =
    "the provider does not serve reflection; pass --proto or set [reflection] enabled = true";

/// The schema of every service the provider at `addr` (one framed
/// provider, `host:port`) publishes, asked of its reflection service with
/// the command's `-H` metadata (a provider's interceptors see these calls
/// as any other).
pub async fn schema(addr: &str, connect: &Connect, metadata: &Metadata) -> Result<Schema, Status> {
    let channel = call::channel(&Addr::Framed(addr.to_string()), connect)
        .await
        .map_err(|e| Status::new(ErrorCode::Internal, e))?;
    let controller = || {
        let c = MprpcController::with_timeout(connect.timeout);
        for (k, v) in metadata.iter() {
            // Checked when the command line was read: cannot fail.
            let _ = c.set_metadata(k, v);
        }
        c
    };
    let listed: ListServicesResponse = channel
        .call(Some(&controller()), &REFLECTION, 0, &ListServicesRequest {})
        .await
        .map_err(|status| match status.code() {
            // The provider's answer to a service it does not publish.
            ErrorCode::UnknownService => Status::new(ErrorCode::UnknownService, NOT_SERVED),
            code => Status::new(
                code,
                format!(
                    "asking {addr} for its schema (reflection; or pass --proto FILE): {}",
                    status.message()
                ),
            ),
        })?;
    let mut files: Vec<Vec<u8>> = Vec::new();
    for service in &listed.service {
        let request = FileContainingSymbolRequest {
            symbol: service.clone(),
        };
        let answer: FileDescriptorResponse = channel
            .call(Some(&controller()), &REFLECTION, 1, &request)
            .await
            .map_err(|s| {
                Status::new(
                    s.code(),
                    format!("reflection: the schema of {service}: {}", s.message()),
                )
            })?;
        // Services compiled together share their files: each once.
        for file in answer.file_descriptor_proto {
            if !files.contains(&file) {
                files.push(file);
            }
        }
    }
    Schema::from_files(&files, listed.service).map_err(|e| {
        Status::new(
            ErrorCode::BadResponse,
            format!("reflection: the provider's file descriptors do not make a schema: {e}"),
        )
    })
}
