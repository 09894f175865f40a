//! The course's caller: registers a user, logs in, lists friends, then shows
//! what a failure looks like. Start `callee` and `friend_service` first.
//!
//! ```text
//! cargo run -p mprpc-examples --example caller                 # final/examples/mprpc.toml
//! ```

use std::time::Duration;

use mprpc::{MprpcChannel, MprpcController};
use mprpc_examples::fixbug::{
    FriendServiceRpcStub, GetFriendsListRequest, LoginRequest, RegisterRequest, UserServiceRpcStub,
};

#[tokio::main]
async fn main() {
    let setup = mprpc_examples::cli::setup_from_command_line("caller", "mprpc.toml");
    let channel = match MprpcChannel::from_config(&setup.config).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("caller: {e}");
            std::process::exit(1);
        }
    };
    let users = UserServiceRpcStub::new(channel.clone());
    let controller = MprpcController::with_timeout(Duration::from_secs(2));

    let register = RegisterRequest {
        id: 4099,
        name: b"zhang san".to_vec(),
        pwd: b"888888".to_vec(),
    };
    match users.register_with(&controller, &register).await {
        Ok(r) => println!("Register: success = {}", r.success),
        Err(e) => println!("Register failed: {e}"),
    }

    for pwd in ["123456", "888888"] {
        let login = LoginRequest {
            name: b"zhang san".to_vec(),
            pwd: pwd.as_bytes().to_vec(),
        };
        // Course style: the controller says whether the call itself failed;
        // the response says whether the login did.
        let response = users.login_with(&controller, &login).await;
        if controller.failed() {
            println!("Login failed: {}", controller.error_text());
        } else if let Ok(r) = response {
            println!("Login with password {pwd}: success = {}", r.success);
        }
    }

    let friends = FriendServiceRpcStub::new(channel);
    match friends
        .get_friends_list_with(&controller, &GetFriendsListRequest { userid: 4099 })
        .await
    {
        Ok(r) => {
            let names: Vec<String> = r
                .friends
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect();
            println!("GetFriendsList: {}", names.join(", "));
        }
        Err(e) => println!("GetFriendsList failed: {e}"),
    }
}
