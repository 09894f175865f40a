//! Harness pieces the ZooKeeper test files share: the runtime their plain
//! `#[test]` functions drive async code on, a session expiry on a real
//! server, and the check that a failure was reported quickly instead of
//! after a whole retry budget.

// Not every test binary that includes `support` uses these.
#![allow(dead_code)]

use std::io;
use std::time::{Duration, Instant};

use mprpc::ZkRegistry;

use super::zk_server::ZkServer;

/// The one-worker runtime and the time check, from the shared harness.
#[allow(unused_imports)]
pub use testkit::{assert_within, runtime};

/// Expires `registry`'s session the way an outage does: ZooKeeper stops for
/// twice the session timeout `session` (so the session, and its ephemeral
/// znodes, expire) and starts again; then waits, at most 30 s, until the
/// registry has a session other than the one it had. Returns the old and the
/// current session id, equal if no new session came in time.
pub fn expire_session(
    server: &mut ZkServer,
    session: Duration,
    registry: &ZkRegistry,
) -> io::Result<(i64, i64)> {
    let old = registry.session_id();
    server.stop()?;
    std::thread::sleep(session * 2);
    server.restart()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while registry.session_id() == old && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok((old, registry.session_id()))
}
