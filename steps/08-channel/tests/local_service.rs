//! The example services, called directly and through the generated traits.

use prost::Message;
use step::fixbug::{
    FRIEND_SERVICE_RPC_DESCRIPTOR, FriendServiceRpcServer, GetFriendsListRequest,
    GetFriendsListResponse, LoginRequest, LoginResponse, RegisterRequest, RegisterResponse,
    USER_SERVICE_RPC_DESCRIPTOR, UserServiceRpcServer,
};
use step::rpc::Service;
use step::user_service::{FriendService, UserService};

#[test]
fn login_succeeds_only_for_a_registered_name_and_password() {
    let service = UserService::default();
    assert!(!service.login(b"li si", b"123456"));
    assert!(service.register(1000, b"li si", b"123456"));
    assert!(!service.register(1000, b"someone else", b"x"), "id taken");
    assert!(service.login(b"li si", b"123456"));
    assert!(!service.login(b"li si", b"wrong"));
}

/// The course's captured replies: Login of an unknown user is `0a00`
/// (result present and empty, success false) and a first Register is
/// `0a001001` (success true). See proto/captures.
#[test]
fn byte_level_replies_match_the_course() {
    let server = UserServiceRpcServer(UserService::default());
    let login = &USER_SERVICE_RPC_DESCRIPTOR.methods[0];
    let register = &USER_SERVICE_RPC_DESCRIPTOR.methods[1];

    let request = LoginRequest {
        name: b"zhang san".to_vec(),
        pwd: b"123456".to_vec(),
    };
    let reply = server.call_method(login, &request.encode_to_vec()).unwrap();
    assert_eq!(reply, [0x0a, 0x00]);
    assert!(!LoginResponse::decode(reply.as_slice()).unwrap().success);

    let request = RegisterRequest {
        id: 4099,
        name: b"zhang san".to_vec(),
        pwd: b"888888".to_vec(),
    };
    let reply = server
        .call_method(register, &request.encode_to_vec())
        .unwrap();
    assert_eq!(reply, [0x0a, 0x00, 0x10, 0x01]);
    assert!(RegisterResponse::decode(reply.as_slice()).unwrap().success);
}

#[test]
fn friend_service_answers_through_the_untyped_service() {
    let server = FriendServiceRpcServer(FriendService);
    let method = &FRIEND_SERVICE_RPC_DESCRIPTOR.methods[0];
    let request = GetFriendsListRequest { userid: 1000 };
    let reply = server
        .call_method(method, &request.encode_to_vec())
        .unwrap();
    let response = GetFriendsListResponse::decode(reply.as_slice()).unwrap();
    assert_eq!(
        response.friends,
        [&b"gao yang"[..], b"liu hong", b"wang shuo"]
    );
}
