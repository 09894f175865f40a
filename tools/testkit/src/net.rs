//! Raw TCP for tests: free ports, the course's captured bytes, request
//! frames built by hand, a client that reads a reply until the provider
//! closes, and a scripted provider that answers exactly what a test says.
//!
//! Everything here is written independently of the code under test: a frame
//! is encoded byte by byte from the wire format, not with the step's own
//! `RpcHeader`, so a bug in a step's encoder cannot hide in its tests.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How long a raw client waits for a reply before the test fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Asks the OS for a free loopback port, then releases it.
///
/// Another process could take the port in between; [`crate::ZkServer::start`]
/// notices from the server log and tries a new port, and a test that binds
/// it itself gets a clear error.
pub fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// `<repo>/proto/captures`: the course's bytes, copied into the
/// repository. Found from testkit's own folder, so it is the same for every
/// crate that uses it.
pub fn captures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto/captures")
}

/// The bytes of one of the course's captures, `proto/captures/<name>.hex`
/// (copied from the course's material; see that folder's README). Panics
/// with the path and the reason when the file is missing or not hex: a
/// test that compares against the course must not run without it.
pub fn capture(name: &str) -> Vec<u8> {
    let path = captures_dir().join(format!("{name}.hex"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read the course capture {}: {error}\n\
             These tests compare against the bytes captured from the C++ course; \
             they live in proto/captures/ of this repository.",
            path.display()
        )
    });
    let digits: String = text.split_whitespace().collect();
    from_hex(&digits)
}

/// `"0a00"` -> `[0x0a, 0x00]`. Panics on an odd count or a non-hex digit.
pub fn from_hex(hex: &str) -> Vec<u8> {
    assert!(hex.len() % 2 == 0, "odd number of hex digits: {hex}");
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            let pair = hex
                .get(i..i + 2)
                .unwrap_or_else(|| panic!("not hex: {hex}"));
            u8::from_str_radix(pair, 16).unwrap_or_else(|_| panic!("not hex: {pair}"))
        })
        .collect()
}

/// Lower-case hex, two digits a byte, no separators (like the captures).
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Appends `value` as a protobuf varint.
fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// The protobuf encoding of an `RpcHeader` (proto/rpcheader.proto), by
/// hand: field 1 `service_name` and 2 `method_name` length-delimited, 3
/// `args_size` a varint; proto3 leaves out empty and zero fields.
pub fn header(service: &str, method: &str, args_size: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for (tag, text) in [(0x0a, service), (0x12, method)] {
        if !text.is_empty() {
            out.push(tag);
            put_varint(&mut out, text.len() as u64);
            out.extend_from_slice(text.as_bytes());
        }
    }
    if args_size != 0 {
        out.push(0x18);
        put_varint(&mut out, u64::from(args_size));
    }
    out
}

/// A request frame built by hand: `[u32 header_size LE][RpcHeader][args]`.
pub fn frame(service: &str, method: &str, args: &[u8]) -> Vec<u8> {
    let args_size = u32::try_from(args.len()).expect("args under 4 GiB");
    let header = header(service, method, args_size);
    let header_size = u32::try_from(header.len()).expect("a small header");
    let mut frame = header_size.to_le_bytes().to_vec();
    frame.extend_from_slice(&header);
    frame.extend_from_slice(args);
    frame
}

/// Connects to `addr`, with a read timeout so a test can never hang.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to the provider");
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .expect("set a read timeout");
    stream
}

/// Reads until the provider closes. A reset counts as a close; a timeout
/// fails the test: the provider must answer or close, never leave the
/// caller waiting (the course's provider did).
pub fn read_reply(stream: &mut TcpStream) -> Vec<u8> {
    let mut reply = Vec::new();
    match stream.read_to_end(&mut reply) {
        Ok(_) => {}
        Err(error) if error.kind() == ErrorKind::ConnectionReset => {}
        Err(error) => panic!("the provider neither replied nor closed: {error}"),
    }
    reply
}

/// Sends `request` on a new connection and returns the whole reply.
pub fn call_raw(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = connect(addr);
    stream.write_all(request).expect("send the request");
    read_reply(&mut stream)
}

/// A one-shot provider with a script: it accepts one connection, reads
/// exactly `request_len` bytes, writes `reply`, closes its sending side,
/// and returns everything the client sent (the request, plus anything the
/// client sent after it).
pub fn scripted_provider(request_len: usize, reply: Vec<u8>) -> (SocketAddr, JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a scripted provider");
    let addr = listener.local_addr().expect("its address");
    let thread = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept the channel");
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("set a read timeout");
        let mut received = vec![0; request_len];
        stream.read_exact(&mut received).expect("read the request");
        // Write in small pieces: the channel must read to the end, not
        // once. A channel that gives up early (a limit) makes the rest of
        // these fail, which is fine.
        for piece in reply.chunks(1000) {
            if stream.write_all(piece).is_err() {
                return received;
            }
        }
        let _ = stream.shutdown(Shutdown::Write);
        let _ = stream.read_to_end(&mut received);
        received
    });
    (addr, thread)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_are_found_and_decoded() {
        let request = capture("request");
        // [u32 header_size LE][header][args]: the header is the rest of the
        // course's frame minus the args it announces.
        assert!(request.len() > 4);
        assert_eq!(to_hex(&from_hex("0a00ff")), "0a00ff");
    }

    #[test]
    fn a_hand_built_frame_matches_the_course_capture() {
        // request.hex is the course's Login of "zhang san" / "123456".
        let args = from_hex("0a097a68616e672073616e1206313233343536");
        assert_eq!(frame("UserServiceRpc", "Login", &args), capture("request"));
    }

    #[test]
    fn empty_fields_are_left_out() {
        assert_eq!(header("", "", 0), Vec::<u8>::new());
        assert_eq!(header("S", "", 300), vec![0x0a, 1, b'S', 0x18, 0xac, 0x02]);
    }
}
