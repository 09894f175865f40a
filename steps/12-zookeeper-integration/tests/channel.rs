//! `MprpcChannel` over real TCP: byte for byte the course's requests, the
//! course's replies decoded, calls end to end against a real provider,
//! and failures that leave a default response instead of a wrong one.

mod support;

use prost::Message;
use std::process::{Child, Command, Stdio};
use step::channel::{ChannelError, MprpcChannel};
use step::fixbug::{
    FRIEND_SERVICE_RPC_DESCRIPTOR, FriendServiceRpcStub, GetFriendsListRequest,
    GetFriendsListResponse, LoginRequest, LoginResponse, RegisterRequest, RegisterResponse,
    ResultCode, USER_SERVICE_RPC_DESCRIPTOR, UserServiceRpcServer, UserServiceRpcStub,
};
use step::user_service::UserService;
use step::wire::encode_request;
use support::{capture, config, scripted_provider, start_provider_with, start_services};
use testkit::{ZkServer, zookeeper::wait_for_znode};

/// The course's login request for zhang san with `pwd`.
fn login(pwd: &[u8]) -> LoginRequest {
    LoginRequest {
        name: b"zhang san".to_vec(),
        pwd: pwd.to_vec(),
    }
}

/// The course's register request: id 4099, zhang san, 888888.
fn register() -> RegisterRequest {
    RegisterRequest {
        id: 4099,
        name: b"zhang san".to_vec(),
        pwd: b"888888".to_vec(),
    }
}

/// A channel to the provider at `addr`.
fn channel_to(addr: std::net::SocketAddr) -> MprpcChannel {
    MprpcChannel::direct(config(addr.port()).rpc_server_addr())
}

#[test]
fn login_sends_exactly_the_course_request_and_decodes_the_course_reply() {
    let request = capture("request");
    let (addr, provider) = scripted_provider(request.len(), capture("response"));
    let stub = UserServiceRpcStub::new(channel_to(addr));
    let mut response = LoginResponse {
        success: true, // must be overwritten by the reply
        ..Default::default()
    };
    stub.login(None, &login(b"123456"), &mut response);

    assert_eq!(
        provider.join().unwrap(),
        request,
        "the exact bytes, nothing more"
    );
    assert_eq!(
        response,
        LoginResponse {
            result: Some(ResultCode::default()),
            success: false,
        }
    );
}

#[test]
fn register_sends_exactly_the_course_request_and_decodes_the_course_reply() {
    let request = capture("register_request");
    let (addr, provider) = scripted_provider(request.len(), capture("register_response"));
    let stub = UserServiceRpcStub::new(channel_to(addr));
    let mut response = RegisterResponse::default();
    stub.register(None, &register(), &mut response);

    assert_eq!(provider.join().unwrap(), request);
    assert!(response.success);
    assert_eq!(response.result, Some(ResultCode::default()));
}

#[test]
fn the_frame_encoder_writes_the_course_bytes() {
    let args = login(b"123456").encode_to_vec();
    assert_eq!(
        encode_request("UserServiceRpc", "Login", &args).unwrap(),
        capture("request")
    );
    let args = LoginRequest {
        name: b"li si".to_vec(),
        pwd: b"123456".to_vec(),
    }
    .encode_to_vec();
    assert_eq!(
        encode_request("UserServiceRpc", "Login", &args).unwrap(),
        capture("login_request_lisi")
    );
}

#[test]
fn calls_end_to_end_against_a_real_provider() {
    let (provider, _log) = start_services();
    let channel = channel_to(provider.local_addr());
    let user = UserServiceRpcStub::new(channel.clone());
    let friend = FriendServiceRpcStub::new(channel);

    let mut logged_in = LoginResponse::default();
    user.login(None, &login(b"888888"), &mut logged_in);
    assert!(!logged_in.success, "not registered yet");

    let mut registered = RegisterResponse::default();
    user.register(None, &register(), &mut registered);
    assert!(registered.success);
    user.register(None, &register(), &mut registered);
    assert!(!registered.success, "id 4099 is taken now");

    user.login(None, &login(b"888888"), &mut logged_in);
    assert!(logged_in.success);
    user.login(None, &login(b"123456"), &mut logged_in);
    assert!(!logged_in.success, "wrong password");

    let mut friends = GetFriendsListResponse::default();
    friend.get_friends_list(None, &GetFriendsListRequest { userid: 1000 }, &mut friends);
    assert_eq!(
        friends.friends,
        [&b"gao yang"[..], b"liu hong", b"wang shuo"]
    );
}

#[test]
fn many_callers_at_once() {
    let (provider, _log) = start_services();
    let channel = channel_to(provider.local_addr());
    let threads: Vec<_> = (0..16u32)
        .map(|id| {
            let stub = UserServiceRpcStub::new(channel.clone());
            std::thread::spawn(move || {
                let mut response = RegisterResponse::default();
                let request = RegisterRequest {
                    id,
                    name: format!("user {id}").into_bytes(),
                    pwd: b"pwd".to_vec(),
                };
                stub.register(None, &request, &mut response);
                response.success
            })
        })
        .collect();
    for thread in threads {
        assert!(thread.join().unwrap());
    }
}

#[test]
fn a_large_response_is_read_to_the_end() {
    // The course read once, into 1024 bytes: this reply would be cut.
    let big = GetFriendsListResponse {
        result: Some(ResultCode::default()),
        friends: (0..2000)
            .map(|i| format!("friend {i}").into_bytes())
            .collect(),
    };
    let reply = big.encode_to_vec();
    assert!(reply.len() > 20_000);
    let request_len = encode_request("FriendServiceRpc", "GetFriendsList", &[0x08, 0x01])
        .unwrap()
        .len();
    let (addr, provider) = scripted_provider(request_len, reply);
    let stub = FriendServiceRpcStub::new(channel_to(addr));
    let mut response = GetFriendsListResponse::default();
    stub.get_friends_list(None, &GetFriendsListRequest { userid: 1 }, &mut response);
    provider.join().unwrap();
    assert_eq!(response, big);
}

#[test]
fn a_response_over_the_limit_is_refused() {
    let request_len = capture("request").len();
    let (addr, provider) = scripted_provider(request_len, vec![0x0a; 5000]);
    let mut channel = channel_to(addr);
    channel.set_max_response_size(1024);
    let args = login(b"123456").encode_to_vec();
    let error = channel
        .call_bytes(&USER_SERVICE_RPC_DESCRIPTOR.methods[0], &args)
        .unwrap_err();
    assert!(
        matches!(error, ChannelError::ResponseTooLarge { limit: 1024 }),
        "{error}"
    );
    drop(provider);
}

#[test]
fn a_refused_connection_leaves_a_default_response() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let channel = MprpcChannel::direct(config(port).rpc_server_addr());
    let args = login(b"123456").encode_to_vec();
    let error = channel
        .call_bytes(&USER_SERVICE_RPC_DESCRIPTOR.methods[0], &args)
        .unwrap_err();
    assert!(matches!(error, ChannelError::Connect { .. }), "{error}");
    assert!(
        error.to_string().starts_with(&format!(
            "cannot connect to the provider at 127.0.0.1:{port}"
        )),
        "{error}"
    );

    let stub = UserServiceRpcStub::new(channel);
    let mut response = LoginResponse {
        success: true, // stale: must be cleared
        ..Default::default()
    };
    stub.login(None, &login(b"123456"), &mut response);
    assert_eq!(response, LoginResponse::default());
}

#[test]
fn a_provider_that_closes_without_answering_is_not_a_success() {
    // A provider without FriendServiceRpc closes the connection with no
    // reply. The course's caller decoded the empty reply as a response.
    let (provider, log) = start_provider_with(|p| {
        p.notify_service(UserServiceRpcServer(UserService::default()))
            .unwrap();
    });
    let channel = channel_to(provider.local_addr());
    let error = channel
        .call_bytes(&FRIEND_SERVICE_RPC_DESCRIPTOR.methods[0], &[0x08, 0x01])
        .unwrap_err();
    assert!(matches!(error, ChannelError::NoResponse), "{error}");
    assert!(
        error
            .to_string()
            .contains("does not publish this service or method")
    );
    log.wait_for("no service FriendServiceRpc is published");
}

#[test]
fn a_reply_that_does_not_decode_leaves_a_default_response() {
    let request_len = capture("request").len();
    // Field 1, length 9, then nothing.
    let (addr, provider) = scripted_provider(request_len, vec![0x0a, 0x09]);
    let stub = UserServiceRpcStub::new(channel_to(addr));
    let mut response = LoginResponse {
        success: true,
        ..Default::default()
    };
    stub.login(None, &login(b"123456"), &mut response);
    provider.join().unwrap();
    assert_eq!(response, LoginResponse::default());
}

/// Kills the child process when dropped, so a failing test leaves no
/// callee running.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_callee_and_caller_programs_talk() {
    // The callee registers in ZooKeeper; the caller finds it there.
    let zookeeper = ZkServer::start().unwrap();
    // A free port for the callee, in a config file of its own.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mprpc.toml");
    std::fs::write(
        &file,
        format!(
            "rpcserverip = \"127.0.0.1\"\nrpcserverport = {port}\n\
             zookeeperip = \"127.0.0.1\"\nzookeeperport = {}\n",
            zookeeper.port()
        ),
    )
    .unwrap();

    let _callee = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_callee"))
            .arg("-i")
            .arg(&file)
            // Its log goes to logs/ in the temporary directory.
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // It registers its services in name order: the last node is there when all are.
    wait_for_znode(&zookeeper.addr(), "/UserServiceRpc/Register");

    let output = Command::new(env!("CARGO_BIN_EXE_caller"))
        .arg("-i")
        .arg(&file)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert_eq!(
        stdout,
        "Login zhang san/123456: success = false\n\
         Register 4099 zhang san/888888: success = true\n\
         Login zhang san/888888: success = true\n\
         GetFriendsList 1000: [gao yang, liu hong, wang shuo]\n"
    );
}
