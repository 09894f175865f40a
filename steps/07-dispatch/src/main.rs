//! `cargo run -p step-07 [-- -i <configfile>]`: step 06's table, then the
//! provider serves on 127.0.0.1 (a port the system picks) and this program
//! plays the caller by hand, frames built byte by byte, raw replies printed;
//! two bad requests get the connection closed. Step 08 writes the caller.

use prost::Message;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use step::application::MprpcApplication;
use step::fixbug::{FriendServiceRpcServer, LoginRequest, RegisterRequest, UserServiceRpcServer};
use step::mprpc::RpcHeader;
use step::provider::{RpcProvider, to_hex};
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
    // The same name twice: refused, and the first one stays.
    if let Err(error) = provider.notify_service(UserServiceRpcServer(UserService::default())) {
        println!("publishing UserServiceRpc again: {error}");
    }

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
    if let Err(error) = call_by_hand(provider) {
        eprintln!("error: {error}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Starts `provider`, sends it the course's requests built by hand.
fn call_by_hand(mut provider: RpcProvider) -> Result<(), String> {
    // Its threads log to stderr, so stdout shows the caller's side in order.
    provider.set_log_sink(Arc::new(|level, line: &str| {
        eprintln!("provider | {level:?}: {line}");
    }));
    let any_port = "127.0.0.1:0".parse().map_err(|_| "bad address")?;
    let handle = provider.start(any_port).map_err(|e| e.to_string())?;
    let login = |pwd: &[u8]| {
        let args = LoginRequest {
            name: b"zhang san".to_vec(),
            pwd: pwd.to_vec(),
        };
        frame("UserServiceRpc", "Login", &args.encode_to_vec())
    };
    let (id, name, pwd) = (4099, b"zhang san".to_vec(), b"888888".to_vec());
    let register = RegisterRequest { id, name, pwd }.encode_to_vec();
    let register = frame("UserServiceRpc", "Register", &register);
    let logout = frame("UserServiceRpc", "Logout", &[]);
    for (what, request) in [
        ("Login (capture request.hex)", login(b"123456")),
        ("Register (register_request.hex)", register),
        ("Login, registered password", login(b"888888")),
        ("Logout: no such method", logout),
        ("A header_size of 4 GiB", vec![0xff; 4]),
    ] {
        println!("\n== {what}");
        println!("sent  {} bytes: {}", request.len(), to_hex(&request));
        let reply = exchange(handle.local_addr(), &request)
            .map_err(|e| format!("no reply from the provider: {e}"))?;
        println!("reply {} bytes: {}", reply.len(), to_hex(&reply));
    }
    handle.shutdown();
    Ok(())
}

/// A request frame as the course's caller builds it: `[u32 LE][RpcHeader][args]`.
fn frame(service: &str, method: &str, args: &[u8]) -> Vec<u8> {
    let header = RpcHeader {
        service_name: service.as_bytes().to_vec(),
        method_name: method.as_bytes().to_vec(),
        args_size: args.len() as u32,
    }
    .encode_to_vec();
    [&(header.len() as u32).to_le_bytes()[..], &header, args].concat()
}

/// Sends `request` on a new connection; the reply is all until the close.
fn exchange(addr: SocketAddr, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr)?;
    // A provider that neither answers nor closes would hang the demo.
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(request)?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    Ok(reply)
}
