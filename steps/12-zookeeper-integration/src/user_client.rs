//! The course's example caller (`example/caller/calluserservice.cc` and
//! `callfriendservice.cc`): calls to the example services through the
//! generated stubs. The `caller` program and this step's `main` both run
//! them.

use crate::channel::MprpcChannel;
use crate::controller::MprpcController;
use crate::fixbug::{
    FriendServiceRpcStub, GetFriendsListRequest, GetFriendsListResponse, LoginRequest,
    LoginResponse, RegisterRequest, RegisterResponse, UserServiceRpcStub,
};
use crate::rpc::RpcController;

// ANCHOR: report
/// Prints `what` and either the failure or, only when the call worked,
/// the result `describe` makes from the response.
fn report(what: &str, controller: &MprpcController, describe: impl FnOnce() -> String) {
    if controller.failed() {
        println!("{what}: failed: {}", controller.error_text());
    } else {
        println!("{what}: {}", describe());
    }
}
// ANCHOR_END: report

// ANCHOR: calls
/// Calls `Login`, `Register`, `Login` again and `GetFriendsList`, and
/// prints what came back.
pub fn call_examples(channel: &MprpcChannel) {
    let user = UserServiceRpcStub::new(channel.clone());
    let friend = FriendServiceRpcStub::new(channel.clone());
    // One controller for all calls: the channel clears it before each.
    let mut controller = MprpcController::new();

    for pwd in [&b"123456"[..], b"888888"] {
        let request = LoginRequest {
            name: b"zhang san".to_vec(),
            pwd: pwd.to_vec(),
        };
        let mut response = LoginResponse::default();
        user.login(Some(&mut controller), &request, &mut response);
        let what = format!("Login zhang san/{}", String::from_utf8_lossy(pwd));
        report(&what, &controller, || {
            format!("success = {}", response.success)
        });
        if pwd == b"123456" {
            let request = RegisterRequest {
                id: 4099,
                name: b"zhang san".to_vec(),
                pwd: b"888888".to_vec(),
            };
            let mut response = RegisterResponse::default();
            user.register(Some(&mut controller), &request, &mut response);
            report("Register 4099 zhang san/888888", &controller, || {
                format!("success = {}", response.success)
            });
        }
    }

    let request = GetFriendsListRequest { userid: 1000 };
    let mut response = GetFriendsListResponse::default();
    friend.get_friends_list(Some(&mut controller), &request, &mut response);
    report("GetFriendsList 1000", &controller, || {
        let friends: Vec<_> = response
            .friends
            .iter()
            .map(|name| String::from_utf8_lossy(name))
            .collect();
        format!("[{}]", friends.join(", "))
    });
}
// ANCHOR_END: calls
