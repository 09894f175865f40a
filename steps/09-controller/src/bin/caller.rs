//! The course's caller (`example/caller/calluserservice.cc`): calls the
//! example services of a provider at the config's
//! `rpcserverip:rpcserverport` (start `callee` first) and prints the
//! results.
//!
//!     cargo run -p step-09 --bin caller [-- -i <configfile>]

use std::process::ExitCode;
use step::application::MprpcApplication;
use step::channel::MprpcChannel;
use step::user_client::call_examples;

// ANCHOR: caller
fn main() -> ExitCode {
    let app = match MprpcApplication::init(std::env::args_os().skip(1)) {
        Ok(app) => app,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    call_examples(&MprpcChannel::new(app.config()));
    ExitCode::SUCCESS
}
// ANCHOR_END: caller
