//! `cargo run -p step-09 [-- -i <configfile>]`: the course's callee and
//! caller in one process, now with a controller on every call. A provider
//! with the example services serves on a background thread, and the example
//! calls go to it. Then three calls fail in three ways — a service the
//! provider does not publish, no provider at all, a provider that never
//! answers — and the controller says how. The provider's log goes to
//! stderr, the results to stdout.
//!
//! To run the two halves as separate programs, as in the course:
//!
//!     cargo run -p step-09 --bin callee      # in one terminal
//!     cargo run -p step-09 --bin caller      # in another

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use step::application::MprpcApplication;
use step::channel::MprpcChannel;
use step::config::MprpcConfig;
use step::controller::MprpcController;
use step::fixbug::{
    FriendServiceRpcServer, FriendServiceRpcStub, GetFriendsListRequest, GetFriendsListResponse,
    LoginRequest, LoginResponse, UserServiceRpcServer, UserServiceRpcStub,
};
use step::provider::{Level, RpcProvider};
use step::rpc::RpcController;
use step::user_client::call_examples;
use step::user_service::{FriendService, UserService};

fn main() -> ExitCode {
    let app = match MprpcApplication::init(std::env::args_os().skip(1)) {
        Ok(app) => app,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(error) = channel_demo(&app) {
        eprintln!("error: {error}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// A provider on 127.0.0.1 with a port the system picks, logging to stderr
/// (so stdout holds only the caller's results), publishing the user
/// service and, if `with_friends`, the friend service.
fn start_provider(config: &MprpcConfig, with_friends: bool) -> Result<RpcProvider, String> {
    let mut provider = RpcProvider::new(config);
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

/// A channel to the provider at `config`'s `rpcserverip:rpcserverport`.
fn channel_to(config: &MprpcConfig) -> MprpcChannel {
    MprpcChannel::new(config)
}

/// Runs the example calls through `MprpcChannel` to providers in this process.
fn channel_demo(app: &MprpcApplication) -> Result<(), String> {
    let any_port = "127.0.0.1:0".parse().map_err(|_| "bad address")?;

    // ANCHOR: main
    let provider = start_provider(app.config(), true)?
        .start(any_port)
        .map_err(|e| e.to_string())?;
    // The caller's config names the provider; here, the port just chosen.
    let mut config = app.config().clone();
    config.rpcserverport = provider.local_addr().port();
    println!("\n== the example calls, to a provider with both services");
    call_examples(&channel_to(&config));
    provider.shutdown();
    println!("\n== GetFriendsList, to a provider without FriendServiceRpc");
    let provider = start_provider(app.config(), false)?
        .start(any_port)
        .map_err(|e| e.to_string())?;
    config.rpcserverport = provider.local_addr().port();
    let stub = FriendServiceRpcStub::new(channel_to(&config));
    let mut controller = MprpcController::new();
    let mut response = GetFriendsListResponse::default();
    let request = &GetFriendsListRequest { userid: 1000 };
    stub.get_friends_list(Some(&mut controller), request, &mut response);
    if controller.failed() {
        println!("failed: {}", controller.error_text());
    } else {
        println!("friends: {:?}", response.friends);
    }
    provider.shutdown();
    // The provider is gone: nothing listens on its port any more.
    println!("\n== Login, with no provider at all");
    login(&config, None);
    // A socket that listens but never accepts: the kernel completes the
    // connection, and nobody ever answers.
    println!("\n== Login, to a provider that never answers (200 ms timeout)");
    let silent = std::net::TcpListener::bind(any_port).map_err(|e| e.to_string())?;
    config.rpcserverport = silent.local_addr().map_err(|e| e.to_string())?.port();
    login(&config, Some(Duration::from_millis(200)));
    // ANCHOR_END: main
    Ok(())
}

/// One `Login` through `config`'s provider, reporting through a controller.
fn login(config: &step::config::MprpcConfig, read_timeout: Option<Duration>) {
    let mut channel = channel_to(config);
    if let Some(timeout) = read_timeout {
        channel.set_read_timeout(timeout);
    }
    let stub = UserServiceRpcStub::new(channel);
    let mut controller = MprpcController::new();
    let (request, mut response) = (LoginRequest::default(), LoginResponse::default());
    stub.login(Some(&mut controller), &request, &mut response);
    if controller.failed() {
        println!("failed: {}", controller.error_text());
    } else {
        println!("success = {}", response.success);
    }
}
