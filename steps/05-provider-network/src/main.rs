//! `cargo run -p step-05 [-- -i <configfile>]`: starts an `RpcProvider` on
//! 127.0.0.1 with a port the system picks, connects to it as a client, sends
//! a few bytes, and shows what the provider's callbacks logged. Then it
//! stops the provider and exits.
//!
//! The provider runs on its own threads, so its log lines are collected
//! through a channel and printed here, each after the client action that
//! caused it: the output is the same on every run.

use std::io::Write;
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;
use step::application::MprpcApplication;
use step::provider::{Level, RpcProvider};

fn main() -> ExitCode {
    match demo() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Waits for the provider's next log line and prints it.
fn show(lines: &mpsc::Receiver<String>) -> Result<(), String> {
    // Never hang: a line that does not come within seconds is a bug.
    let line = lines
        .recv_timeout(Duration::from_secs(5))
        .map_err(|_| "the provider logged nothing for 5 s".to_string())?;
    println!("provider | {line}");
    Ok(())
}

/// Starts a provider, plays the client, stops the provider.
fn demo() -> Result<(), String> {
    let app = MprpcApplication::init(std::env::args_os().skip(1)).map_err(|e| e.to_string())?;

    // ANCHOR: main
    let mut provider = RpcProvider::new(app.config());
    provider.set_thread_num(4);
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
    // Port 0: the system picks a free port, so the demo never collides
    // with a provider already running on the configured 8000.
    let any_port = "127.0.0.1:0".parse().map_err(|_| "bad address")?;
    let handle = provider.start(any_port).map_err(|e| e.to_string())?;
    show(&lines)?;

    let mut client = TcpStream::connect(handle.local_addr()).map_err(|e| e.to_string())?;
    println!("client   | connected to {}", handle.local_addr());
    show(&lines)?;
    for bytes in [&b"hello"[..], &[0x19, 0x00, 0x00, 0x00]] {
        client.write_all(bytes).map_err(|e| e.to_string())?;
        println!("client   | sent {} bytes", bytes.len());
        show(&lines)?;
    }
    drop(client);
    println!("client   | closed the connection");
    show(&lines)?;

    handle.shutdown();
    show(&lines)?;
    // ANCHOR_END: main
    Ok(())
}
