//! `cargo run -p step-08 [-- -i <configfile>]`: the course's callee and
//! caller in one process. A provider with the example services serves on
//! 127.0.0.1 (a port the system picks) on a background thread, and the
//! example calls go to it through `MprpcChannel`. Then one call goes to a
//! provider that does not publish the service, to show what a caller
//! without a controller sees. The provider's log goes to stderr, the
//! results to stdout.
//!
//! To run the two halves as separate programs, as in the course:
//!
//!     cargo run -p step-08 --bin callee      # in one terminal
//!     cargo run -p step-08 --bin caller      # in another

use std::process::ExitCode;
use std::sync::Arc;
use step::application::MprpcApplication;
use step::channel::MprpcChannel;
use step::fixbug::{
    FriendServiceRpcServer, FriendServiceRpcStub, GetFriendsListRequest, GetFriendsListResponse,
    UserServiceRpcServer,
};
use step::provider::{Level, RpcProvider};
use step::user_client::call_examples;
use step::user_service::{FriendService, UserService};

fn main() -> ExitCode {
    match demo() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// A provider on 127.0.0.1 with a port the system picks, logging to stderr
/// (so stdout holds only the caller's results), publishing the user
/// service and, if `with_friends`, the friend service.
fn start_provider(app: &MprpcApplication, with_friends: bool) -> Result<RpcProvider, String> {
    let mut provider = RpcProvider::new(app.config());
    provider.set_log_sink(Arc::new(|level: Level, line: &str| match level {
        Level::Info => eprintln!("provider | {line}"),
        Level::Error => eprintln!("provider | error: {line}"),
    }));
    provider
        .notify_service(UserServiceRpcServer(UserService::default()))
        .map_err(|e| e.to_string())?;
    if with_friends {
        provider
            .notify_service(FriendServiceRpcServer(FriendService))
            .map_err(|e| e.to_string())?;
    }
    Ok(provider)
}

/// Runs the example calls against a provider in this process.
fn demo() -> Result<(), String> {
    let app = MprpcApplication::init(std::env::args_os().skip(1)).map_err(|e| e.to_string())?;
    let any_port = "127.0.0.1:0".parse().map_err(|_| "bad address")?;

    // ANCHOR: main
    let provider = start_provider(&app, true)?
        .start(any_port)
        .map_err(|e| e.to_string())?;
    // The caller's config names the provider; here, the port just chosen.
    let mut config = app.config().clone();
    config.rpcserverport = provider.local_addr().port();
    println!("== the example calls, to a provider with both services");
    call_examples(&MprpcChannel::new(&config));
    provider.shutdown();

    println!("\n== GetFriendsList, to a provider without FriendServiceRpc");
    let provider = start_provider(&app, false)?
        .start(any_port)
        .map_err(|e| e.to_string())?;
    config.rpcserverport = provider.local_addr().port();
    let stub = FriendServiceRpcStub::new(MprpcChannel::new(&config));
    let mut response = GetFriendsListResponse::default();
    stub.get_friends_list(None, &GetFriendsListRequest { userid: 1000 }, &mut response);
    // The call failed (stderr says why), but nothing here can tell: the
    // response is just empty. Step 09's controller fixes that.
    println!("GetFriendsList 1000: {:?}", response.friends);
    provider.shutdown();
    // ANCHOR_END: main
    Ok(())
}
