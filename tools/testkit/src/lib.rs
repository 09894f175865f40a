//! The test harness shared by the tutorial's steps and by `final/`.
//!
//! Nothing here is part of what the book teaches: it is the scaffolding that
//! lets every step be tested for real — a real ZooKeeper, real TCP, real
//! child processes — without each step carrying its own copy, so that the
//! diff between two steps shows the step's piece and not the harness.
//!
//! - [`ZkServer`] / [`ZkEnsemble`]: throw-away ZooKeeper servers (the
//!   Debian package `zookeeper`) on free loopback ports with temporary data.
//!   Missing Java or ZooKeeper is an error that names the package to
//!   install: a test that needs ZooKeeper fails, it never skips.
//! - [`net`]: free ports, the course's captures (`proto/captures/`), request
//!   frames built by hand, raw clients, a scripted provider.
//! - [`process`]: programs built by cargo and run as child processes.
//! - [`Recorder`]: waits for a log line instead of sleeping.
//! - [`log_file`]: reads the async logger's daily files back.
//! - [`runtime`]: async code from plain `#[test]`s, timing checks.
//! - [`TestPki`]: a CA and certificates made at test time, as PEM files.

pub mod ensemble;
pub mod log_file;
pub mod net;
pub mod process;
pub mod recorder;
pub mod runtime;
pub mod tls;
pub mod zookeeper;

pub use ensemble::{Mode, ZkEnsemble};
pub use net::{
    call_raw, capture, captures_dir, connect, frame, free_port, from_hex, read_reply,
    scripted_provider, to_hex,
};
pub use process::{ChildProcess, Target, cargo_build, send_signal};
pub use recorder::Recorder;
pub use runtime::{assert_within, block_on, runtime};
pub use tls::TestPki;
pub use zookeeper::ZkServer;
