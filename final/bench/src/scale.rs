//! How cost grows with connections (issue 25, round 3): `bench idle`, the
//! provider's memory per idle connection, and what the driver records of it
//! and of `bench load --connections N` (N connections × 1 call in flight
//! each) in the report's `scale` section.
//!
//! `idle` opens N connections to a server in another process and reads the
//! server's resident set (`VmRSS` in `/proc/<pid>/status`) before and after:
//! the growth divided by N is what one idle connection costs the server —
//! its buffers, its task, its timers, the kernel's socket being counted
//! elsewhere (socket buffers are not in a process's RSS).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::BoxError;
use crate::load::LoadResult;
use crate::variant::Variant;

/// Idle connections the full run opens (`--quick`: [`IDLE_QUICK`]).
pub const IDLE_CONNECTIONS: usize = 10_000;
/// Idle connections of a `--quick` run.
pub const IDLE_QUICK: usize = 1_000;
/// Connections (one call in flight each) of the full run's many-connection load.
pub const LOAD_CONNECTIONS: usize = 1_000;
/// The same for `--quick`.
pub const LOAD_QUICK: usize = 100;
/// How long the server is given to accept and settle before RSS is read
/// again (the floor says nothing back, so there is no reply to wait for).
const SETTLE: Duration = Duration::from_millis(1_000);
/// File descriptors kept free besides the connections (stdio, the runtime,
/// the server pid's files read from `/proc`).
const FD_SPARE: u64 = 64;

/// What one `bench idle` run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdleResult {
    /// Server variant.
    pub variant: Variant,
    /// Connections held open.
    pub connections: usize,
    /// Server's VmRSS before connecting, KiB.
    pub rss_before_kib: u64,
    /// Server's VmRSS with every connection open and settled, KiB.
    pub rss_after_kib: u64,
    /// `(after - before) / connections`, bytes.
    pub bytes_per_connection: f64,
}

/// The report's `scale` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Scale {
    /// Memory per idle connection, per variant.
    pub idle: Vec<IdleResult>,
    /// Calls/s with many connections, one call in flight on each.
    pub load: Vec<LoadResult>,
    /// Runs that failed, described.
    pub failures: Vec<String>,
}

/// `VmRSS` of process `pid`, KiB.
pub fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// This process's soft limit on open files, from `/proc/self/limits`
/// (`None`: unknown, or unlimited).
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Fails clearly, before opening anything, if `connections` sockets would
/// not fit under this process's open-file limit.
pub fn check_fd_limit(connections: usize) -> Result<(), BoxError> {
    match open_files_limit() {
        Some(limit) if (connections as u64).saturating_add(FD_SPARE) > limit => Err(format!(
            "{connections} connections need about {} file descriptors, but the soft limit is {limit} \
             (raise it with `ulimit -n`, up to the hard limit)",
            connections as u64 + FD_SPARE
        )
        .into()),
        _ => Ok(()),
    }
}

/// Opens `connections` idle connections to the `variant` server at `addr`
/// (process `server_pid`) and measures its memory growth. A framed
/// `final` connection sends mprpc's preamble and waits for the provider's,
/// so the provider has set the connection up; the floor has no handshake.
pub async fn idle(
    variant: Variant,
    addr: SocketAddr,
    server_pid: u32,
    connections: usize,
) -> Result<IdleResult, BoxError> {
    if connections == 0 {
        return Err("connections must be at least 1".into());
    }
    check_fd_limit(connections)?;
    let framed = match variant {
        Variant::Final => true,
        Variant::Floor => false,
        other => return Err(format!("idle measures final and floor, not {other}").into()),
    };
    // Let the server's start-up allocations settle before the baseline.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = vm_rss_kib(server_pid).ok_or("cannot read the server's VmRSS")?;
    let mut held = Vec::with_capacity(connections);
    let started = Instant::now();
    for i in 0..connections {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connection {i} of {connections}: {e}"))?;
        if framed {
            stream.write_all(&mprpc::frame::PREAMBLE).await?;
            let mut preamble = [0u8; 8];
            tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut preamble))
                .await
                .map_err(|_| format!("connection {i}: no preamble from the provider within 10 s"))?
                .map_err(|e| format!("connection {i}: reading the preamble: {e}"))?;
        }
        held.push(stream);
    }
    tokio::time::sleep(SETTLE).await;
    let after = vm_rss_kib(server_pid).ok_or("cannot read the server's VmRSS")?;
    eprintln!(
        "idle {variant}: {connections} connections in {:?}, VmRSS {before} -> {after} KiB",
        started.elapsed()
    );
    drop(held);
    Ok(IdleResult {
        variant,
        connections,
        rss_before_kib: before,
        rss_after_kib: after,
        bytes_per_connection: after.saturating_sub(before) as f64 * 1024.0 / connections as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_rss_and_fd_limit_are_read() {
        let rss = vm_rss_kib(std::process::id()).expect("VmRSS of this process");
        assert!(rss > 0);
        // A limit is found on Linux (tests run with a finite one), and a
        // request over it is refused with a message naming it.
        let limit = open_files_limit().expect("Max open files");
        let err = check_fd_limit(usize::try_from(limit).unwrap_or(usize::MAX))
            .expect_err("over the limit");
        assert!(err.to_string().contains("ulimit -n"), "{err}");
        check_fd_limit(1).expect("one connection fits");
    }
}
