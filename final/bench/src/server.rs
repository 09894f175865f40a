//! `bench server`: one variant's server in its own process.
//!
//! Protocol with the driver: the server binds, prints `LISTENING <addr>` on
//! stdout, and serves until its stdin closes (the driver holds the other end,
//! so a driver that dies takes its servers with it) or it is killed.

use std::io::{Read, Write};
use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::variant::Variant;
use crate::{BoxError, floor, grpc, rpc_tarpc};

/// Line prefix the driver waits for.
pub const READY_PREFIX: &str = "LISTENING ";

/// Binds `bind`, announces the address, then serves `variant` forever.
pub async fn run(variant: Variant, bind: SocketAddr) -> Result<(), BoxError> {
    if let Some(features) = crate::final_variant::Features::of(variant) {
        // mprpc's provider binds its own listener (from its config).
        let running = crate::final_variant::start(bind, features).await?;
        announce(running.local_addr())?;
        std::future::pending::<()>().await;
        drop(running);
        return Ok(());
    }
    if variant == Variant::Step {
        // The step's provider runs on its own runtime thread.
        let handle = crate::step_variant::start(bind)?;
        announce(handle.local_addr())?;
        std::future::pending::<()>().await;
        handle.shutdown();
        return Ok(());
    }
    let listener = TcpListener::bind(bind).await?;
    announce(listener.local_addr()?)?;
    match variant {
        Variant::Tonic => grpc::serve(listener).await,
        Variant::Tarpc => rpc_tarpc::serve(listener).await,
        Variant::Floor
        | Variant::FloorCombine
        | Variant::FloorShared
        | Variant::FloorQueue
        | Variant::FloorLock => floor::serve(listener).await,
        Variant::Final | Variant::FinalTls | Variant::FinalMetrics | Variant::Step => {
            Err("served by the variant's own provider, above".into())
        }
    }
}

/// Prints the ready line and arranges for the process to exit when stdin closes.
pub(crate) fn announce(addr: SocketAddr) -> Result<(), BoxError> {
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{READY_PREFIX}{addr}")?;
        out.flush()?;
    }
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        std::process::exit(0);
    });
    Ok(())
}
