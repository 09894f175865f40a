//! The provider's network service over real TCP on 127.0.0.1: many
//! clients are served at once, and one client
//! misbehaving does not disturb the others.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use step::provider::RpcProvider;
use support::{capture, config, connect, read_reply, start_services};

#[test]
fn many_concurrent_connections_are_served_at_once() {
    const CLIENTS: usize = 64;
    let (provider, _log) = start_services();
    let addr = provider.local_addr();
    let request = capture("request");
    // Every client connects and sends the first half of its request before
    // any sends the rest: the provider holds all 64 half-read requests at
    // once, and each must still be answered.
    let all_connected = Arc::new(Barrier::new(CLIENTS));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let all_connected = Arc::clone(&all_connected);
            let request = request.clone();
            std::thread::spawn(move || {
                let (first, second) = request.split_at(20);
                let mut stream = connect(addr);
                stream.write_all(first).unwrap();
                all_connected.wait();
                stream.write_all(second).unwrap();
                read_reply(&mut stream)
            })
        })
        .collect();
    for client in clients {
        assert_eq!(client.join().unwrap(), capture("response"));
    }
}

#[test]
fn a_vanishing_client_does_not_affect_others() {
    let (provider, log) = start_services();
    let addr = provider.local_addr();
    let request = capture("request");
    let mut steady = connect(addr);
    steady.write_all(&request[..10]).unwrap();

    // A client that sends half a request and then vanishes with a reset
    // (SO_LINGER 0), as a crashed process or a dropped network would.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let vanished_addr = runtime.block_on(async {
        use tokio::io::AsyncWriteExt;
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let local = stream.local_addr().unwrap();
        stream.write_all(&request[..30]).await.unwrap();
        stream.set_zero_linger().unwrap();
        local
    });
    log.wait_for(&format!("on_connection: {vanished_addr} disconnected"));

    steady.write_all(&request[10..]).unwrap();
    assert_eq!(read_reply(&mut steady), capture("response"));
}

#[test]
fn shutdown_stops_accepting() {
    let (provider, log) = start_services();
    let addr = provider.local_addr();
    let open = TcpStream::connect(addr).unwrap();
    provider.shutdown();
    log.wait_for("RpcProvider stopped");
    assert!(TcpStream::connect(addr).is_err(), "nobody listens any more");
    drop(open);
}

#[test]
fn run_reports_an_address_in_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let provider = RpcProvider::new(&config(port));
    let error = provider.run().unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse);
    assert!(
        error
            .to_string()
            .starts_with(&format!("cannot listen on 127.0.0.1:{port}")),
        "{error}"
    );
}
