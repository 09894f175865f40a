//! `cargo run -p step-07 [-- -i <configfile>]`: starts an `RpcProvider`
//! with the example services on 127.0.0.1 (a port the system picks), then
//! plays the caller by hand: it builds request frames byte by byte, sends
//! them, and prints the raw replies next to what the provider logged. Two
//! bad requests show that the provider closes the connection on bad input
//! instead of leaving the caller waiting. Step 08 writes the real caller.

use prost::Message;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;
use step::application::MprpcApplication;
use step::fixbug::{
    FriendServiceRpcServer, LoginRequest, LoginResponse, RegisterRequest, RegisterResponse,
    UserServiceRpcServer,
};
use step::mprpc::RpcHeader;
use step::provider::{Level, RpcProvider, to_hex};
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

// ANCHOR: frame
/// A request frame, built the way the course's caller builds it:
/// `[u32 header_size, little-endian][RpcHeader][args]`.
fn frame(service: &str, method: &str, args: &[u8]) -> Vec<u8> {
    let header = RpcHeader {
        service_name: service.as_bytes().to_vec(),
        method_name: method.as_bytes().to_vec(),
        args_size: args.len() as u32,
    }
    .encode_to_vec();
    let mut frame = (header.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&header);
    frame.extend_from_slice(args);
    frame
}
// ANCHOR_END: frame

/// Sends `request` on a new connection and reads the reply until the
/// provider closes; then prints what the provider logged for it.
fn exchange(
    addr: SocketAddr,
    request: &[u8],
    lines: &mpsc::Receiver<String>,
) -> Result<Vec<u8>, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    // Never hang: the provider must answer or close within seconds.
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let me = stream.local_addr().map_err(|e| e.to_string())?;
    stream.write_all(request).map_err(|e| e.to_string())?;
    println!(
        "client   | sent {} bytes: {}",
        request.len(),
        to_hex(request)
    );
    let mut reply = Vec::new();
    stream
        .read_to_end(&mut reply)
        .map_err(|e| format!("no reply and no close: {e}"))?;
    drop(stream);
    if reply.is_empty() {
        println!("client   | the provider closed the connection without a reply");
    } else {
        println!("client   | reply {} bytes: {}", reply.len(), to_hex(&reply));
    }
    let last = format!("on_connection: {me} disconnected");
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(5))
            .map_err(|_| "the provider logged nothing for 5 s".to_string())?;
        println!("provider | {line}");
        if line == last {
            return Ok(reply);
        }
    }
}

/// Starts a provider with the example services and sends it requests.
fn demo() -> Result<(), String> {
    let app = MprpcApplication::init(std::env::args_os().skip(1)).map_err(|e| e.to_string())?;
    let mut provider = RpcProvider::new(app.config());
    let (sender, lines) = mpsc::channel();
    let sender = Mutex::new(sender);
    provider.set_log_sink(Arc::new(move |level: Level, line: &str| {
        let line = match level {
            Level::Info => line.to_string(),
            Level::Error => format!("error: {line}"),
        };
        if let Ok(sender) = sender.lock() {
            let _ = sender.send(line);
        }
    }));
    provider
        .notify_service(UserServiceRpcServer(UserService::default()))
        .and_then(|()| provider.notify_service(FriendServiceRpcServer(FriendService)))
        .map_err(|e| e.to_string())?;
    let any_port = "127.0.0.1:0".parse().map_err(|_| "bad address")?;
    let handle = provider.start(any_port).map_err(|e| e.to_string())?;
    let addr = handle.local_addr();
    for _ in 0..3 {
        // notify_service twice, then "listening".
        let line = lines
            .recv_timeout(Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
        println!("provider | {line}");
    }

    // ANCHOR: main
    let login = |pwd: &[u8]| {
        let args = LoginRequest {
            name: b"zhang san".to_vec(),
            pwd: pwd.to_vec(),
        };
        frame("UserServiceRpc", "Login", &args.encode_to_vec())
    };
    let register = RegisterRequest {
        id: 4099,
        name: b"zhang san".to_vec(),
        pwd: b"888888".to_vec(),
    };

    println!("\n== Login of an unknown user: the course's capture request.hex");
    let reply = exchange(addr, &login(b"123456"), &lines)?;
    println!("decoded  | {:?}", LoginResponse::decode(reply.as_slice()));

    println!("\n== Register: the course's capture register_request.hex");
    let request = frame("UserServiceRpc", "Register", &register.encode_to_vec());
    let reply = exchange(addr, &request, &lines)?;
    println!(
        "decoded  | {:?}",
        RegisterResponse::decode(reply.as_slice())
    );

    println!("\n== Login with the registered password");
    let reply = exchange(addr, &login(b"888888"), &lines)?;
    println!("decoded  | {:?}", LoginResponse::decode(reply.as_slice()));

    println!("\n== A method the service does not have");
    exchange(addr, &frame("UserServiceRpc", "Logout", &[]), &lines)?;

    println!("\n== A header_size of 4 GiB");
    exchange(addr, &[0xff, 0xff, 0xff, 0xff], &lines)?;
    // ANCHOR_END: main

    handle.shutdown();
    Ok(())
}
