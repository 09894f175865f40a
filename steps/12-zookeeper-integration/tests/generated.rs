//! What the service generator wrote, exercised through its public API.

use prost::Message;
use std::cell::RefCell;
use step::fixbug::{
    FRIEND_SERVICE_RPC_DESCRIPTOR, LoginRequest, LoginResponse, RegisterRequest, RegisterResponse,
    USER_SERVICE_RPC_DESCRIPTOR, UserServiceRpc, UserServiceRpcServer, UserServiceRpcStub,
};
use step::rpc::{CallError, MethodDescriptor, RpcChannel, RpcController, Service};

#[test]
fn descriptors_list_methods_in_proto_order() {
    let user = &USER_SERVICE_RPC_DESCRIPTOR;
    assert_eq!(user.name, "UserServiceRpc");
    assert_eq!(user.full_name, "fixbug.UserServiceRpc");
    let names: Vec<_> = user.methods.iter().map(|m| (m.index, m.name)).collect();
    assert_eq!(names, [(0, "Login"), (1, "Register")]);
    assert_eq!(user.methods[0].input_type, "fixbug.LoginRequest");
    assert_eq!(user.methods[1].output_type, "fixbug.RegisterResponse");
    assert_eq!(user.find_method_by_name("Register"), Some(&user.methods[1]));
    assert_eq!(user.find_method_by_name("Logout"), None);

    let friend = &FRIEND_SERVICE_RPC_DESCRIPTOR;
    assert_eq!(friend.methods[0].name, "GetFriendsList");
    assert_eq!(friend.methods[0].service_name, "FriendServiceRpc");
}

/// A channel that keeps what the stub handed it, and answers with a fixed
/// encoded response, as a network peer would.
struct RecordingChannel {
    calls: RefCell<Vec<(&'static MethodDescriptor, Vec<u8>)>>,
    reply: Vec<u8>,
}

impl RpcChannel for RecordingChannel {
    fn call_method<Req, Resp>(
        &self,
        method: &'static MethodDescriptor,
        _controller: Option<&mut dyn RpcController>,
        request: &Req,
        response: &mut Resp,
    ) where
        Req: Message,
        Resp: Message + Default,
    {
        self.calls
            .borrow_mut()
            .push((method, request.encode_to_vec()));
        *response = Resp::decode(self.reply.as_slice()).expect("test reply decodes");
    }
}

#[test]
fn stub_hands_method_and_request_to_the_channel() {
    let channel = RecordingChannel {
        calls: RefCell::default(),
        // LoginResponse { result: {}, success: true }
        reply: vec![0x0a, 0x00, 0x10, 0x01],
    };
    let stub = UserServiceRpcStub::new(channel);
    let request = LoginRequest {
        name: b"zhang san".to_vec(),
        pwd: b"123456".to_vec(),
    };
    let mut response = LoginResponse::default();
    stub.login(None, &request, &mut response);

    assert!(response.success);
    let calls = stub.channel().calls.borrow();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, &USER_SERVICE_RPC_DESCRIPTOR.methods[0]);
    assert_eq!(calls[0].1, request.encode_to_vec());
}

/// A callee that answers from its arguments, so the test can see the
/// request reached it decoded.
struct EchoNames;

impl UserServiceRpc for EchoNames {
    fn login(&self, request: &LoginRequest, response: &mut LoginResponse) {
        response.success = request.name == b"zhang san";
    }
    fn register(&self, request: &RegisterRequest, response: &mut RegisterResponse) {
        response.success = request.id == 4099;
    }
}

#[test]
fn server_adapter_decodes_calls_and_encodes_the_response() {
    let service = UserServiceRpcServer(EchoNames);
    let register = &USER_SERVICE_RPC_DESCRIPTOR.methods[1];
    let request = RegisterRequest {
        id: 4099,
        name: b"zhang san".to_vec(),
        pwd: b"888888".to_vec(),
    };
    let reply = service
        .call_method(register, &request.encode_to_vec())
        .expect("call succeeds");
    assert_eq!(reply, [0x10, 0x01]); // success = true; result absent
}

#[test]
fn server_adapter_rejects_bad_bytes_and_foreign_methods() {
    let service = UserServiceRpcServer(EchoNames);
    let login = &USER_SERVICE_RPC_DESCRIPTOR.methods[0];
    // Field 1, length 9, but only 2 bytes follow.
    let error = service
        .call_method(login, &[0x0a, 0x09, 0x7a, 0x68])
        .unwrap_err();
    assert!(
        matches!(
            error,
            CallError::BadRequest {
                method: "Login",
                ..
            }
        ),
        "{error}"
    );

    let foreign = &FRIEND_SERVICE_RPC_DESCRIPTOR.methods[0];
    let error = service.call_method(foreign, &[]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "service UserServiceRpc has no method \"GetFriendsList\""
    );
}
