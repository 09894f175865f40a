//! `cargo run -p step-06 [-- -i <configfile>]`: publishes the example
//! services on an `RpcProvider`, shows that a second service with the same
//! name is refused, and prints the provider's table of services and methods:
//! what the dispatcher of step 07 will look calls up in.

use std::process::ExitCode;
use step::application::MprpcApplication;
use step::fixbug::{FriendServiceRpcServer, UserServiceRpcServer};
use step::provider::RpcProvider;
use step::user_service::{FriendService, UserService};

fn main() -> ExitCode {
    let app = match MprpcApplication::init(std::env::args_os().skip(1)) {
        Ok(app) => app,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };

    // ANCHOR: main
    let mut provider = RpcProvider::new(app.config());
    let published = provider
        .notify_service(UserServiceRpcServer(UserService::default()))
        .and_then(|()| provider.notify_service(FriendServiceRpcServer(FriendService)));
    if let Err(error) = published {
        eprintln!("error: {error}");
        return ExitCode::FAILURE;
    }
    // The same name twice: refused, and the first one stays.
    if let Err(error) = provider.notify_service(UserServiceRpcServer(UserService::default())) {
        println!("publishing UserServiceRpc again: {error}");
    }
    // ANCHOR_END: main

    println!();
    println!("service table:");
    for name in provider.service_names() {
        let Some(info) = provider.service(name) else {
            continue;
        };
        // Methods in .proto order, from the descriptor; the table's own map
        // is for lookups and has no order.
        for method in info.service.descriptor().methods {
            println!(
                "  {name}.{}({}) returns ({})",
                method.name, method.input_type, method.output_type
            );
        }
    }

    println!();
    // ANCHOR: lookup
    for (service, method) in [
        ("UserServiceRpc", "Login"),
        ("UserServiceRpc", "Logout"),
        ("fixbug.UserServiceRpc", "Login"),
    ] {
        let found = provider
            .service(service)
            .and_then(|info| info.methods.get(method));
        match found {
            Some(method) => println!("lookup {service}.{}: method #{}", method.name, method.index),
            None => println!("lookup {service}.{method}: not published"),
        }
    }
    // ANCHOR_END: lookup
    ExitCode::SUCCESS
}
