//! The course's callee (`example/callee/userservice.cc`): publishes the
//! example services and serves them on the config's
//! `rpcserverip:rpcserverport` until Ctrl-C.
//!
//!     cargo run -p step-11 --bin callee [-- -i <configfile>]
//!
//! Its log goes to `logs/YYYY-MM-DD-log.txt` under the current directory.

use std::process::ExitCode;
use step::application::MprpcApplication;
use step::fixbug::{FriendServiceRpcServer, UserServiceRpcServer};
use step::logger::{self, Logger};
use step::provider::RpcProvider;
use step::user_service::{FriendService, UserService};

// ANCHOR: callee
fn main() -> ExitCode {
    // Flushes the log when `main` returns (after Ctrl-C).
    let _guard = match Logger::init(logger::DEFAULT_DIR) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
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
    // The log is in a file now; say once where to look.
    println!(
        "callee: serving {} on {}; log in {}/; Ctrl-C stops",
        provider.service_names().join(", "),
        provider.addr(),
        logger::DEFAULT_DIR
    );
    match provider.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
// ANCHOR_END: callee
