//! `cargo run -p step-10 [-- -i <configfile>]`: step 09's demo, now with
//! the provider logging to a file. A provider with the example services
//! serves on 127.0.0.1 (a port the system picks) on a background thread,
//! the example calls go to it, and three calls fail in three ways. The
//! provider's log lines go to the asynchronous logger, which writes them to
//! `logs/YYYY-MM-DD-log.txt` under the current directory on its own thread;
//! at the end the program reads this run's `ERROR` lines back from the file
//! and prints them. The results go to stdout, as before.
//!
//! To run the two halves as separate programs, as in the course:
//!
//!     cargo run -p step-10 --bin callee      # in one terminal
//!     cargo run -p step-10 --bin caller      # in another

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use step::application::MprpcApplication;
use step::channel::MprpcChannel;
use step::controller::MprpcController;
use step::fixbug::{
    FriendServiceRpcServer, FriendServiceRpcStub, GetFriendsListRequest, GetFriendsListResponse,
    LoginRequest, LoginResponse, UserServiceRpcServer, UserServiceRpcStub,
};
use step::logger::{self, Logger};
use step::provider::RpcProvider;
use step::rpc::RpcController;
use step::user_client::call_examples;
use step::user_service::{FriendService, UserService};

// ANCHOR: guard
fn main() -> ExitCode {
    // The guard lives until `main` returns; dropping it waits until the
    // writer thread has written out every queued line. Without it, lines
    // still in the queue die with the process.
    let _guard = match Logger::init(logger::DEFAULT_DIR) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    match demo() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
// ANCHOR_END: guard

/// A provider on 127.0.0.1 with a port the system picks, logging to the
/// log file (the default), publishing the user service and, if
/// `with_friends`, the friend service.
fn start_provider(app: &MprpcApplication, with_friends: bool) -> Result<RpcProvider, String> {
    let mut provider = RpcProvider::new(app.config());
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
    // Today's file may hold earlier runs: remember where this run starts.
    let log_file = todays_log_file();
    let log_start = std::fs::metadata(&log_file).map_or(0, |m| m.len());

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
    let mut controller = MprpcController::new();
    let mut response = GetFriendsListResponse::default();
    let request = GetFriendsListRequest { userid: 1000 };
    stub.get_friends_list(Some(&mut controller), &request, &mut response);
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
    drop(silent);

    // Without a controller, nobody is told; the channel logs the failure.
    println!("\n== Login, with no provider and no controller: only the log hears of it");
    let stub = UserServiceRpcStub::new(MprpcChannel::new(&config));
    let mut response = LoginResponse::default();
    stub.login(None, &LoginRequest::default(), &mut response);
    println!("success = {} (a default response)", response.success);
    // ANCHOR_END: main

    // ANCHOR: read_back
    // Wait until the writer thread has written everything queued so far,
    // then read this run's part of the file.
    println!("\n== this run's ERROR lines in {}", log_file.display());
    if !Logger::global().flush() {
        println!("(the logger did not finish writing; see stderr)");
    }
    match read_from(&log_file, log_start) {
        Ok(text) => {
            for line in text.lines().filter(|line| line.contains(" [ERROR] ")) {
                println!("{line}");
            }
        }
        Err(error) => println!("cannot read {}: {error}", log_file.display()),
    }
    // ANCHOR_END: read_back
    Ok(())
}

/// The file the logger writes today's lines to: `logs/YYYY-MM-DD-log.txt`.
fn todays_log_file() -> PathBuf {
    let today = chrono::Local::now().date_naive();
    Path::new(logger::DEFAULT_DIR).join(logger::log_file_name(today))
}

/// The text of `path` from byte `start` on (all of it if the file is now
/// shorter, e.g. someone deleted it meanwhile).
fn read_from(path: &Path, start: u64) -> std::io::Result<String> {
    let bytes = std::fs::read(path)?;
    let start = usize::try_from(start).unwrap_or(0);
    let tail = bytes.get(start..).unwrap_or(&bytes);
    Ok(String::from_utf8_lossy(tail).into_owned())
}

/// One `Login` through `config`'s provider, reporting through a controller.
fn login(config: &step::config::MprpcConfig, read_timeout: Option<Duration>) {
    let mut channel = MprpcChannel::new(config);
    if let Some(timeout) = read_timeout {
        channel.set_read_timeout(timeout);
    }
    let stub = UserServiceRpcStub::new(channel);
    let mut controller = MprpcController::new();
    let mut response = LoginResponse::default();
    let request = LoginRequest {
        name: b"zhang san".to_vec(),
        pwd: b"123456".to_vec(),
    };
    stub.login(Some(&mut controller), &request, &mut response);
    if controller.failed() {
        println!("failed: {}", controller.error_text());
    } else {
        println!("success = {}", response.success);
    }
}
