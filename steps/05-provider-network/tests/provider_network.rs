//! The provider's network service over real TCP on 127.0.0.1: what clients
//! send reaches `on_message`, many clients are served at once, and one
//! client misbehaving does not disturb the others.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use step::provider::{Level, RpcProvider, to_hex};
use support::{config, received_hex, start_provider};

#[test]
fn bytes_sent_arrive_at_on_message() {
    let (provider, log) = start_provider();
    let mut client = TcpStream::connect(provider.local_addr()).unwrap();
    let me = client.local_addr().unwrap();
    log.wait_for(&format!("on_connection: {me} connected"));

    client.write_all(b"ping").unwrap();
    log.wait_for(&format!("on_message: {me} sent 4 bytes: 70696e67"));

    drop(client);
    log.wait_for(&format!("on_connection: {me} disconnected"));
}

#[test]
fn many_concurrent_connections_are_served_at_once() {
    const CLIENTS: usize = 64;
    let (provider, log) = start_provider();
    let addr = provider.local_addr();
    // Every client connects and sends its first half before any client
    // closes: the provider must hold all 64 connections at once.
    let all_connected = Arc::new(Barrier::new(CLIENTS));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let all_connected = Arc::clone(&all_connected);
            std::thread::spawn(move || {
                let payload = format!("client {i:02} says hello");
                let (first, second) = payload.as_bytes().split_at(9);
                let mut stream = TcpStream::connect(addr).unwrap();
                stream.write_all(first).unwrap();
                all_connected.wait();
                stream.write_all(second).unwrap();
                (stream.local_addr().unwrap(), payload, stream)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|thread| thread.join().unwrap())
        .collect();

    log.wait_until("every payload", |lines| {
        clients
            .iter()
            .all(|(peer, payload, _)| received_hex(lines, *peer) == to_hex(payload.as_bytes()))
    });
    drop(clients);
    log.wait_until("every disconnect", |lines| {
        lines
            .iter()
            .filter(|(_, l)| l.ends_with(" disconnected"))
            .count()
            == CLIENTS
    });
}

#[test]
fn a_vanishing_client_does_not_affect_others() {
    let (provider, log) = start_provider();
    let addr = provider.local_addr();
    let mut steady = TcpStream::connect(addr).unwrap();
    let steady_addr = steady.local_addr().unwrap();

    // A client that sends half a message and then vanishes with a reset
    // (SO_LINGER 0), as a crashed process or a dropped network would.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let vanished_addr = runtime.block_on(async {
        use tokio::io::AsyncWriteExt;
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let local = stream.local_addr().unwrap();
        stream.write_all(b"half a mess").await.unwrap();
        stream.set_zero_linger().unwrap();
        local
    });
    log.wait_for(&format!("on_connection: {vanished_addr} disconnected"));

    steady.write_all(b"still here").unwrap();
    log.wait_for(&format!("on_message: {steady_addr} sent 10 bytes"));
    let mut newcomer = TcpStream::connect(addr).unwrap();
    let newcomer_addr = newcomer.local_addr().unwrap();
    newcomer.write_all(b"hi").unwrap();
    log.wait_for(&format!("on_message: {newcomer_addr} sent 2 bytes: 6869"));
}

#[test]
fn a_large_message_arrives_in_bounded_pieces() {
    let (provider, log) = start_provider();
    let mut client = TcpStream::connect(provider.local_addr()).unwrap();
    let me = client.local_addr().unwrap();
    client.write_all(&[0xab; 100_000]).unwrap();

    let prefix = format!("on_message: {me} sent ");
    let sizes = |lines: &[(Level, String)]| -> Vec<usize> {
        lines
            .iter()
            .filter_map(|(_, line)| line.strip_prefix(&prefix))
            .map(|rest| rest.split(' ').next().unwrap().parse().unwrap())
            .collect()
    };
    log.wait_until("all 100000 bytes", |lines| {
        sizes(lines).iter().sum::<usize>() == 100_000
    });
    let lines = log.snapshot();
    assert!(
        sizes(&lines).iter().all(|&n| n <= 4096),
        "one read is at most the buffer"
    );
    // Only the first 32 bytes of a read are shown.
    let shown = format!("{}...", "ab".repeat(32));
    assert!(
        lines
            .iter()
            .any(|(_, l)| l.starts_with(&prefix) && l.ends_with(&shown))
    );
}

#[test]
fn shutdown_stops_accepting() {
    let (provider, log) = start_provider();
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
