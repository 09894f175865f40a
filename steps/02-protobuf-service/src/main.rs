//! `cargo run -p step-02`: prints the generated descriptors, then calls
//! `Login` through the generated stub over a channel that only prints what
//! it would send.

use prost::Message;
use step::fixbug::{
    FRIEND_SERVICE_RPC_DESCRIPTOR, LoginRequest, LoginResponse, USER_SERVICE_RPC_DESCRIPTOR,
    UserServiceRpcStub,
};
use step::rpc::{MethodDescriptor, RpcChannel, RpcController, ServiceDescriptor};

// ANCHOR: printing_channel
/// A channel with no network: it shows what a real channel would receive.
#[derive(Debug)]
struct PrintingChannel;

impl RpcChannel for PrintingChannel {
    fn call_method<Req, Resp>(
        &self,
        method: &'static MethodDescriptor,
        _controller: Option<&mut dyn RpcController>,
        request: &Req,
        _response: &mut Resp,
    ) where
        Req: Message,
        Resp: Message + Default,
    {
        let bytes = request.encode_to_vec();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        println!(
            "channel: call {}.{} (method #{}) with {} request bytes: {hex}",
            method.service_name,
            method.name,
            method.index,
            bytes.len()
        );
        println!("channel: no network yet, so the response stays at its default");
    }
}
// ANCHOR_END: printing_channel

fn print_descriptor(service: &ServiceDescriptor) {
    println!("service {} ({})", service.name, service.full_name);
    for method in service.methods {
        println!(
            "  #{} {}({}) returns ({})",
            method.index, method.name, method.input_type, method.output_type
        );
    }
}

fn main() {
    print_descriptor(&USER_SERVICE_RPC_DESCRIPTOR);
    print_descriptor(&FRIEND_SERVICE_RPC_DESCRIPTOR);

    // ANCHOR: stub_call
    let stub = UserServiceRpcStub::new(PrintingChannel);
    let request = LoginRequest {
        name: b"zhang san".to_vec(),
        pwd: b"123456".to_vec(),
    };
    let mut response = LoginResponse::default();
    stub.login(None, &request, &mut response);
    // ANCHOR_END: stub_call
    println!("caller: response = {response:?}");
}
