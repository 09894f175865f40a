//! The course's callee (`example/callee/userservice.cc`): publishes the
//! example services and serves them on the config's
//! `rpcserverip:rpcserverport` until Ctrl-C.
//!
//!     cargo run -p step-09 --bin callee [-- -i <configfile>]

use std::process::ExitCode;
use step::application::MprpcApplication;
use step::fixbug::{FriendServiceRpcServer, UserServiceRpcServer};
use step::provider::RpcProvider;
use step::user_service::{FriendService, UserService};

// ANCHOR: callee
fn main() -> ExitCode {
    let app = match MprpcApplication::init(std::env::args_os().skip(1)) {
        Ok(app) => app,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut provider = RpcProvider::new(app.config());
    let published = provider
        .notify_service(UserServiceRpcServer(UserService::default()))
        .and_then(|()| provider.notify_service(FriendServiceRpcServer(FriendService)));
    if let Err(error) = published {
        eprintln!("error: {error}");
        return ExitCode::FAILURE;
    }
    match provider.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
// ANCHOR_END: callee
