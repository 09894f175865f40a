//! The course's example caller (`example/caller/calluserservice.cc` and
//! `callfriendservice.cc`): calls to the example services through the
//! generated stubs. The `caller` program and this step's `main` both run
//! them.

use crate::channel::MprpcChannel;
use crate::fixbug::{
    FriendServiceRpcStub, GetFriendsListRequest, GetFriendsListResponse, LoginRequest,
    LoginResponse, RegisterRequest, RegisterResponse, UserServiceRpcStub,
};

// ANCHOR: calls
/// Calls `Login`, `Register`, `Login` again and `GetFriendsList`, and
/// prints what came back.
pub fn call_examples(channel: &MprpcChannel) {
    let user = UserServiceRpcStub::new(channel.clone());
    let friend = FriendServiceRpcStub::new(channel.clone());

    for pwd in [&b"123456"[..], b"888888"] {
        let request = LoginRequest {
            name: b"zhang san".to_vec(),
            pwd: pwd.to_vec(),
        };
        let mut response = LoginResponse::default();
        // No controller yet (step 09): pass None, as the course passes
        // nullptr.
        user.login(None, &request, &mut response);
        println!(
            "Login zhang san/{}: success = {}",
            String::from_utf8_lossy(pwd),
            response.success
        );
        if pwd == b"123456" {
            let request = RegisterRequest {
                id: 4099,
                name: b"zhang san".to_vec(),
                pwd: b"888888".to_vec(),
            };
            let mut response = RegisterResponse::default();
            user.register(None, &request, &mut response);
            println!(
                "Register 4099 zhang san/888888: success = {}",
                response.success
            );
        }
    }

    let request = GetFriendsListRequest { userid: 1000 };
    let mut response = GetFriendsListResponse::default();
    friend.get_friends_list(None, &request, &mut response);
    let friends: Vec<_> = response
        .friends
        .iter()
        .map(|name| String::from_utf8_lossy(name))
        .collect();
    println!("GetFriendsList 1000: [{}]", friends.join(", "));
}
// ANCHOR_END: calls
