//! `notify_service`: the table of published services, looked up the way
//! the dispatcher will look them up, by the short names a call carries.

mod support;

use prost::Message;
use step::fixbug::{
    FRIEND_SERVICE_RPC_DESCRIPTOR, FriendServiceRpcServer, RegisterRequest,
    USER_SERVICE_RPC_DESCRIPTOR, UserServiceRpcServer,
};
use step::provider::{NotifyError, RpcProvider};
use step::user_service::{FriendService, UserService};
use support::{Recorder, config};

/// An encoded `RegisterRequest` for user `id`.
fn register(id: u32) -> Vec<u8> {
    RegisterRequest {
        id,
        name: b"zhang san".to_vec(),
        pwd: b"888888".to_vec(),
    }
    .encode_to_vec()
}

#[test]
fn the_table_records_every_service_and_method() {
    let mut provider = RpcProvider::new(&config(0));
    provider
        .notify_service(UserServiceRpcServer(UserService::default()))
        .unwrap();
    provider
        .notify_service(FriendServiceRpcServer(FriendService))
        .unwrap();

    assert_eq!(
        provider.service_names(),
        ["FriendServiceRpc", "UserServiceRpc"]
    );
    let user = provider.service("UserServiceRpc").unwrap();
    assert_eq!(user.methods.len(), 2);
    assert_eq!(
        user.methods["Login"],
        &USER_SERVICE_RPC_DESCRIPTOR.methods[0]
    );
    assert_eq!(
        user.methods["Register"],
        &USER_SERVICE_RPC_DESCRIPTOR.methods[1]
    );
    let friend = provider.service("FriendServiceRpc").unwrap();
    assert_eq!(
        friend.methods["GetFriendsList"],
        &FRIEND_SERVICE_RPC_DESCRIPTOR.methods[0]
    );
}

#[test]
fn a_call_through_the_table_reaches_the_published_object() {
    let mut provider = RpcProvider::new(&config(0));
    provider
        .notify_service(UserServiceRpcServer(UserService::default()))
        .unwrap();
    let info = provider.service("UserServiceRpc").unwrap();
    let method = info.methods["Register"];
    // First registration of id 4099 succeeds (the course's capture
    // `0a001001`); the same object remembers it, so the second is refused.
    assert_eq!(
        info.service.call_method(method, &register(4099)).unwrap(),
        [0x0a, 0x00, 0x10, 0x01]
    );
    assert_eq!(
        info.service.call_method(method, &register(4099)).unwrap(),
        [0x0a, 0x00]
    );
}

#[test]
fn lookups_use_short_names_and_exact_method_names() {
    let mut provider = RpcProvider::new(&config(0));
    provider
        .notify_service(UserServiceRpcServer(UserService::default()))
        .unwrap();
    assert!(provider.service("fixbug.UserServiceRpc").is_none());
    assert!(provider.service("userservicerpc").is_none());
    assert!(provider.service("FriendServiceRpc").is_none());
    let user = provider.service("UserServiceRpc").unwrap();
    assert!(!user.methods.contains_key("login"));
    assert!(!user.methods.contains_key("GetFriendsList"));
}

#[test]
fn a_duplicate_name_is_refused_and_the_first_service_stays() {
    let mut provider = RpcProvider::new(&config(0));
    provider
        .notify_service(UserServiceRpcServer(UserService::default()))
        .unwrap();
    let first = provider.service("UserServiceRpc").unwrap();
    let method = first.methods["Register"];
    first.service.call_method(method, &register(1)).unwrap();

    let error = provider
        .notify_service(UserServiceRpcServer(UserService::default()))
        .unwrap_err();
    assert_eq!(error, NotifyError::Duplicate("UserServiceRpc"));
    assert_eq!(
        error.to_string(),
        "service UserServiceRpc is already published"
    );
    // Still the first object: it remembers user 1, so registering 1 again
    // fails (a fresh service would accept it).
    let info = provider.service("UserServiceRpc").unwrap();
    assert_eq!(
        info.service.call_method(method, &register(1)).unwrap(),
        [0x0a, 0x00]
    );
    assert_eq!(provider.service_names(), ["UserServiceRpc"]);
}

#[test]
fn publishing_is_logged_with_the_methods() {
    let log = Recorder::default();
    let mut provider = RpcProvider::new(&config(0));
    provider.set_log_sink(log.sink());
    provider
        .notify_service(UserServiceRpcServer(UserService::default()))
        .unwrap();
    log.wait_for("notify_service: UserServiceRpc (Login, Register)");
}

#[test]
fn a_provider_with_services_still_serves_connections() {
    let log = Recorder::default();
    let mut provider = RpcProvider::new(&config(0));
    provider.set_log_sink(log.sink());
    provider
        .notify_service(FriendServiceRpcServer(FriendService))
        .unwrap();
    let handle = provider.start("127.0.0.1:0".parse().unwrap()).unwrap();
    let client = std::net::TcpStream::connect(handle.local_addr()).unwrap();
    let me = client.local_addr().unwrap();
    log.wait_for(&format!("on_connection: {me} connected"));
    drop(client);
    log.wait_for(&format!("on_connection: {me} disconnected"));
}
