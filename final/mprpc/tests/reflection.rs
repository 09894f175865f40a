//! The built-in reflection service over real TCP: refused as an unknown
//! service unless `[reflection] enabled = true`, and then it lists the
//! published services and returns the files of their descriptor sets.

use mprpc::reflection::{
    FileContainingSymbolRequest, FileDescriptorResponse, ListServicesRequest, ListServicesResponse,
    REFLECTION,
};
use mprpc::{
    CallContext, ErrorCode, MprpcChannel, MprpcConfig, ResponseFuture, RpcProvider, Service,
    ServiceDescriptor,
};

/// A file descriptor set of one file, encoded by hand: `set.file[0]` (tag
/// 0x0a) is a FileDescriptorProto whose name (tag 0x0a) is "echo.proto".
const SET: &[u8] = b"\x0a\x0c\x0a\x0aecho.proto";

/// The one published service's names, carrying [`SET`].
static ECHO: ServiceDescriptor =
    ServiceDescriptor::new("Echo", "test.Echo", &["Echo"]).with_file_descriptor_set(SET);

/// Answers every call with its request.
struct Echo;

impl Service for Echo {
    fn descriptor(&self) -> &'static ServiceDescriptor {
        &ECHO
    }

    fn call(&self, _method: usize, _ctx: CallContext, request: bytes::Bytes) -> ResponseFuture {
        Box::pin(std::future::ready(Ok(request.to_vec())))
    }
}

/// A provider of [`Echo`] on a free port, reflection on or off; a channel
/// to it.
async fn provider(reflection: bool) -> (mprpc::RunningProvider, MprpcChannel) {
    let mut config = MprpcConfig::default();
    config.rpcserverip = "127.0.0.1".into();
    config.rpcserverport = 0;
    config.reflection.enabled = reflection;
    let mut provider = RpcProvider::new(config.clone());
    provider.notify_service(Echo);
    let running = provider
        .start()
        .await
        .unwrap_or_else(|e| panic!("start: {e}"));
    let channel = MprpcChannel::direct_with(&config, &running.local_addr().to_string());
    (running, channel)
}

#[tokio::test]
async fn reflection_is_not_served_when_disabled() {
    let (running, channel) = provider(false).await;
    let listed: Result<ListServicesResponse, _> = channel
        .call(None, &REFLECTION, 0, &ListServicesRequest {})
        .await;
    let status = listed.expect_err("reflection answered while disabled");
    assert_eq!(status.code(), ErrorCode::UnknownService, "{status:?}");
    // The provider still serves its own service on the same connection.
    let echoed: Result<ListServicesResponse, _> = channel
        .call(None, &ECHO, 0, &ListServicesResponse::default())
        .await;
    assert!(echoed.is_ok(), "{echoed:?}");
    running
        .shutdown()
        .await
        .unwrap_or_else(|e| panic!("shutdown: {e}"));
}

#[tokio::test]
async fn reflection_lists_services_and_returns_their_files_when_enabled() {
    let (running, channel) = provider(true).await;
    let listed: ListServicesResponse = channel
        .call(None, &REFLECTION, 0, &ListServicesRequest {})
        .await
        .unwrap_or_else(|e| panic!("ListServices: {e:?}"));
    assert_eq!(listed.service, ["test.Echo"]);
    for symbol in ["test.Echo", "test.Echo.Echo"] {
        let files: FileDescriptorResponse = channel
            .call(
                None,
                &REFLECTION,
                1,
                &FileContainingSymbolRequest {
                    symbol: symbol.into(),
                },
            )
            .await
            .unwrap_or_else(|e| panic!("FileContainingSymbol({symbol}): {e:?}"));
        assert_eq!(
            files.file_descriptor_proto,
            [b"\x0a\x0aecho.proto".to_vec()]
        );
    }
    let unknown: Result<FileDescriptorResponse, _> = channel
        .call(
            None,
            &REFLECTION,
            1,
            &FileContainingSymbolRequest {
                symbol: "test.Nope".into(),
            },
        )
        .await;
    let status = unknown.expect_err("an unknown symbol was found");
    assert!(status.message().contains("test.Nope"), "{status:?}");
    running
        .shutdown()
        .await
        .unwrap_or_else(|e| panic!("shutdown: {e}"));
}
