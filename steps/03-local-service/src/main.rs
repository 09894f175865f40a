//! `cargo run -p step-03`: one service called three ways — as a local
//! method, through the generated trait, and as bytes through `rpc::Service`,
//! which is how a provider will call it from step 07 on.

use prost::Message;
use step::fixbug::{
    LoginRequest, LoginResponse, RegisterRequest, USER_SERVICE_RPC_DESCRIPTOR, UserServiceRpc,
    UserServiceRpcServer,
};
use step::rpc::{CallError, Service};
use step::user_service::UserService;

fn main() -> Result<(), CallError> {
    // ANCHOR: three_ways
    let service = UserService::default();

    // 1. A local call: the caller and the service share a process.
    let registered = service.register(1000, b"li si", b"123456");
    println!("local:  register(1000, li si) -> {registered}");

    // 2. Through the generated trait, with protobuf messages.
    let request = LoginRequest {
        name: b"li si".to_vec(),
        pwd: b"123456".to_vec(),
    };
    let mut response = LoginResponse::default();
    UserServiceRpc::login(&service, &request, &mut response);
    println!("trait:  login(li si) -> {response:?}");

    // 3. As bytes through the untyped Service: what a provider does with a
    //    request that came off the network.
    let server = UserServiceRpcServer(service);
    let register = USER_SERVICE_RPC_DESCRIPTOR
        .find_method_by_name("Register")
        .ok_or_else(|| CallError::unknown_method(&USER_SERVICE_RPC_DESCRIPTOR, "Register"))?;
    let request = RegisterRequest {
        id: 4099,
        name: b"zhang san".to_vec(),
        pwd: b"888888".to_vec(),
    };
    let reply = server.call_method(register, &request.encode_to_vec())?;
    // ANCHOR_END: three_ways
    let hex: String = reply.iter().map(|b| format!("{b:02x}")).collect();
    println!("bytes:  Register(4099, zhang san) -> {hex}");
    Ok(())
}
