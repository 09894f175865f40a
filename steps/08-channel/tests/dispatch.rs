//! Dispatching calls over real TCP: the course's exact bytes in, the
//! course's exact bytes out; and every kind of bad input ends with the
//! connection closed, no reply, a clear line in the log, and a provider
//! that still serves the next call.

mod support;

use prost::Message;
use std::io::Write;
use std::net::Shutdown;
use std::time::{Duration, Instant};
use step::mprpc::RpcHeader;
use step::wire::FrameLimits;
use support::{
    assert_good_call, call_raw, capture, connect, frame, read_reply, start_services,
    start_services_with,
};

#[test]
fn the_course_login_capture_gets_the_course_reply() {
    let (provider, log) = start_services();
    // Login of an unknown user: LoginResponse { result: {} } = 0a00.
    assert_eq!(
        call_raw(provider.local_addr(), &capture("request")),
        capture("response")
    );
    log.wait_for("calls UserServiceRpc.Login with 19 bytes of args");
}

#[test]
fn the_course_register_capture_gets_the_course_reply() {
    let (provider, _log) = start_services();
    let addr = provider.local_addr();
    assert_eq!(
        call_raw(addr, &capture("register_request")),
        capture("register_response")
    );
    assert_eq!(capture("register_response"), [0x0a, 0x00, 0x10, 0x01]);
    // li si never registered.
    assert_eq!(call_raw(addr, &capture("login_request_lisi")), [0x0a, 0x00]);
}

/// Sends `request`, expects the connection closed with no reply, the log
/// to contain `reason`, and the provider to serve a good call afterwards.
fn assert_rejected(request: &[u8], reason: &str) {
    let (provider, log) = start_services();
    let addr = provider.local_addr();
    assert_eq!(call_raw(addr, request), b"", "no reply bytes");
    log.wait_for(reason);
    log.wait_for("closing without a reply");
    assert_good_call(addr);
}

#[test]
fn bad_requests_are_rejected_and_logged() {
    let args = &capture("request")[29..];
    let header = RpcHeader {
        service_name: b"UserServiceRpc".to_vec(),
        method_name: b"Login".to_vec(),
        args_size: u32::MAX,
    }
    .encode_to_vec();
    let mut huge_args = (header.len() as u32).to_le_bytes().to_vec();
    huge_args.extend_from_slice(&header);
    let cases: [(&[u8], &str); 9] = [
        // Garbage: "GET " read as a little-endian u32 is 542393671.
        (
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            "header_size 542393671 is over the limit of 65536 bytes",
        ),
        (
            &[0xff, 0xff, 0xff, 0xff, 0x0a],
            "header_size 4294967295 is over the limit of 65536 bytes",
        ),
        (
            &huge_args,
            "args_size 4294967295 is over the limit of 4194304 bytes",
        ),
        (
            &[0x03, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff],
            "the header is not an RpcHeader",
        ),
        (
            &frame("NoSuchServiceRpc", "Login", args),
            "no service NoSuchServiceRpc is published",
        ),
        // The course's wire format carries short names only.
        (
            &frame("fixbug.UserServiceRpc", "Login", args),
            "no service fixbug.UserServiceRpc is published",
        ),
        (
            &frame("UserServiceRpc", "Logout", &[]),
            "service UserServiceRpc has no method Logout",
        ),
        // Field 1, length 9, but only one byte follows.
        (
            &frame("UserServiceRpc", "Login", &[0x0a, 0x09, 0x7a]),
            "request for Login does not decode",
        ),
        // A hostile name cannot write lines into the log.
        (
            &frame("User\nerror: forged", "Login", &[]),
            r"no service User\nerror: forged is published",
        ),
    ];
    for (request, reason) in cases {
        assert_rejected(request, reason);
    }
}

/// Sends `bytes`, then closes the sending side (end of file).
fn assert_truncated(bytes: &[u8], reason: &str) {
    let (provider, log) = start_services();
    let addr = provider.local_addr();
    let mut stream = connect(addr);
    stream.write_all(bytes).expect("send");
    stream.shutdown(Shutdown::Write).expect("half-close");
    assert_eq!(read_reply(&mut stream), b"", "no reply bytes");
    log.wait_for(reason);
    assert_good_call(addr);
}

#[test]
fn a_truncated_frame_then_end_of_file_is_rejected() {
    let request = capture("request");
    for (sent, part) in [
        (2, "2 of the 4 bytes of header_size"),
        (10, "6 of the 25 bytes of header"),
        (40, "11 of the 19 bytes of args"),
    ] {
        let reason = format!("the peer closed the connection after {part}");
        assert_truncated(&request[..sent], &reason);
    }
}

#[test]
fn a_frame_split_byte_by_byte_is_served() {
    let (provider, _log) = start_services();
    let mut stream = connect(provider.local_addr());
    for byte in capture("request") {
        stream.write_all(&[byte]).unwrap();
        stream.flush().unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(read_reply(&mut stream), capture("response"));
}

#[test]
fn bytes_after_the_frame_are_dropped_and_logged() {
    let (provider, log) = start_services();
    let addr = provider.local_addr();
    // Two frames in one write: the course's provider would have parsed
    // them as one. One call per connection: the second is not served.
    let mut both = capture("request");
    both.extend_from_slice(&capture("register_request"));
    assert_eq!(call_raw(addr, &both), capture("response"));
    log.wait_for("dropped 54 bytes sent after the request");
    // The Register was never run: registering the same user succeeds now.
    assert_eq!(
        call_raw(addr, &capture("register_request")),
        capture("register_response")
    );
}

#[test]
fn an_idle_client_is_closed_after_the_io_timeout() {
    let (provider, log) = start_services_with(|p| p.set_io_timeout(Duration::from_millis(200)));
    let addr = provider.local_addr();
    let started = Instant::now();
    let mut idle = connect(addr);
    assert_eq!(read_reply(&mut idle), b"");
    assert!(started.elapsed() < Duration::from_secs(3));
    log.wait_for("no complete request within 200ms; closing without a reply");
    assert_good_call(addr);
}

#[test]
fn a_trickling_client_is_closed_after_the_io_timeout() {
    let (provider, log) = start_services_with(|p| p.set_io_timeout(Duration::from_millis(300)));
    let addr = provider.local_addr();
    // One byte every 50 ms: each read is quick, the whole frame is not.
    // The deadline is for the frame, so this client cannot hold on.
    let mut slow = connect(addr);
    for byte in capture("request") {
        if slow.write_all(&[byte]).is_err() {
            break; // closed by the provider, as expected
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(read_reply(&mut slow), b"");
    log.wait_for("no complete request within 300ms");
    assert_good_call(addr);
}

#[test]
fn the_limits_are_configurable() {
    let (provider, log) = start_services_with(|p| {
        p.set_frame_limits(FrameLimits {
            max_header_size: 64,
            max_args_size: 20,
        })
    });
    let addr = provider.local_addr();
    // Login's args are 19 bytes: allowed. Register's are 22: refused.
    assert_eq!(call_raw(addr, &capture("request")), capture("response"));
    assert_eq!(call_raw(addr, &capture("register_request")), b"");
    log.wait_for("args_size 22 is over the limit of 20 bytes");
    let long_name = "S".repeat(100);
    assert_eq!(call_raw(addr, &frame(&long_name, "Login", &[])), b"");
    log.wait_for("header_size 109 is over the limit of 64 bytes");
}

#[test]
fn concurrent_calls_each_get_their_own_reply() {
    let (provider, _log) = start_services();
    let addr = provider.local_addr();
    let threads: Vec<_> = (0..32u32)
        .map(|id| {
            std::thread::spawn(move || {
                let args = step::fixbug::RegisterRequest {
                    id,
                    name: format!("user {id}").into_bytes(),
                    pwd: b"pwd".to_vec(),
                };
                call_raw(
                    addr,
                    &frame("UserServiceRpc", "Register", &args.encode_to_vec()),
                )
            })
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap(), [0x0a, 0x00, 0x10, 0x01]);
    }
}
