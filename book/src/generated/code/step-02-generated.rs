// PLACEHOLDER written by hand on the book branch from steps/02-protobuf-service/build.rs;
// tools/gen.py replaces it with an excerpt of the real generated fixbug.rs.

/// The callee side of `UserServiceRpc`: implement it to provide the service.
///
/// Returning from a method is the C++ `done->Run()`: the framework then
/// serializes `response` and sends it back.
pub trait UserServiceRpc: Send + Sync + 'static {
    /// `rpc Login(LoginRequest) returns (LoginResponse)`
    fn login(&self, request: &LoginRequest, response: &mut LoginResponse);
    /// `rpc Register(RegisterRequest) returns (RegisterResponse)`
    fn register(&self, request: &RegisterRequest, response: &mut RegisterResponse);
}

/// The caller's proxy for `UserServiceRpc`: each method hands its
/// arguments to [`crate::rpc::RpcChannel::call_method`].
#[derive(Debug)]
pub struct UserServiceRpcStub<C> {
    channel: C,
}
impl<C: crate::rpc::RpcChannel> UserServiceRpcStub<C> {
    /// A stub that sends every call through `channel`.
    pub fn new(channel: C) -> Self {
        Self { channel }
    }
    /// `rpc Login(LoginRequest) returns (LoginResponse)`
    pub fn login(
        &self,
        controller: Option<&mut dyn crate::rpc::RpcController>,
        request: &LoginRequest,
        response: &mut LoginResponse,
    ) {
        self.channel.call_method(&USER_SERVICE_RPC_DESCRIPTOR.methods[0], controller, request, response)
    }
    // `register` is the same with `methods[1]`.
}
