//! `cargo run -p step-08 [-- -i <configfile>]`: the course's callee and
//! caller in one process: a provider with the example services serves on a
//! background thread, and the example calls go to it through
//! `MprpcChannel`. Then the same calls go to the provider after it has
//! stopped, to show what a caller without a controller sees. The
//! provider's log goes to stderr once it serves, so stdout shows the
//! caller's side in order.
//!
//! To run the two halves as separate programs, as in the course:
//!
//!     cargo run -p step-08 --bin callee      # in one terminal
//!     cargo run -p step-08 --bin caller      # in another

use std::process::ExitCode;
use std::sync::Arc;
use step::application::MprpcApplication;
use step::channel::MprpcChannel;
use step::fixbug::{FriendServiceRpcServer, UserServiceRpcServer};
use step::provider::RpcProvider;
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

    let mut provider = RpcProvider::new(app.config());
    let published = provider
        .notify_service(UserServiceRpcServer(UserService::default()))
        .and_then(|()| provider.notify_service(FriendServiceRpcServer(FriendService)));
    if let Err(error) = published {
        eprintln!("error: {error}");
        return ExitCode::FAILURE;
    }
    if let Err(error) = call_through_channel(provider, &app) {
        eprintln!("error: {error}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Starts `provider` and makes the course's calls to it through
/// `MprpcChannel`; then the same calls after it has stopped.
fn call_through_channel(mut provider: RpcProvider, app: &MprpcApplication) -> Result<(), String> {
    // Its threads log to stderr, so stdout shows the caller's side in order.
    provider.set_log_sink(Arc::new(|level, line: &str| {
        eprintln!("provider | {level:?}: {line}");
    }));
    let any_port = "127.0.0.1:0".parse().map_err(|_| "bad address")?;
    // ANCHOR: main
    let handle = provider.start(any_port).map_err(|e| e.to_string())?;
    // The caller's config names the provider; here, the port just chosen.
    let mut config = app.config().clone();
    config.rpcserverport = handle.local_addr().port();
    println!("\n== the example calls, to a provider with both services");
    call_examples(&MprpcChannel::new(&config));
    handle.shutdown();

    // Nothing listens on that port any more: no call can even connect. The
    // channel says so on stderr, but the program only sees default
    // responses, as if every answer were "no". Step 09's controller fixes
    // that.
    println!("\n== the same calls, to the provider just stopped");
    call_examples(&MprpcChannel::new(&config));
    // ANCHOR_END: main
    Ok(())
}
