//! What the provider announces to the registry: `advertise_host`, or
//! `rpcserverip` when it is a real address.
//!
//! The bind address is not always an address callers can use: a container
//! or a multi-homed host binds `0.0.0.0` (every interface), and a registry
//! entry `0.0.0.0:8000` sends every caller on another host to itself. Worse,
//! two hosts both bound to `0.0.0.0:8000` would write the same znode, and the
//! second would take the first's node for its own leftover. So a provider
//! that announces itself and binds an unspecified address must be told what
//! to announce.

use std::net::{IpAddr, SocketAddr};

use crate::config::{ADVERTISE_AUTO, MprpcConfig};
use crate::error::Error;

// ANCHOR: advertised_host
/// The host part of the address to register: `advertise_host` (with
/// `"auto"` resolved), else `rpcserverip`. `announces` says whether the
/// registry tells other hosts (ZooKeeper does, a static table does not);
/// only then is an unspecified `rpcserverip` without `advertise_host` an
/// error.
pub(super) async fn advertised_host(
    config: &MprpcConfig,
    announces: bool,
) -> Result<String, Error> {
    match config.advertise_host.as_deref() {
        Some(ADVERTISE_AUTO) => route_to_zookeeper(config).await.map(|ip| ip.to_string()),
        Some(host) => Ok(host.to_string()),
        None => {
            let ip = config.rpcserverip.parse::<IpAddr>();
            if announces && ip.is_ok_and(|ip| ip.is_unspecified()) {
                return Err(Error::Config(format!(
                    "rpcserverip = {:?} listens on every interface, which is no address a caller \
                     can connect to; set advertise_host to this host's IP address or DNS name \
                     (or \"auto\": the address of the interface that routes to ZooKeeper)",
                    config.rpcserverip
                )));
            }
            Ok(config.rpcserverip.clone())
        }
    }
}
// ANCHOR_END: advertised_host

/// "host:port", with an IPv6 address in brackets as every parser expects.
pub(super) fn with_port(host: &str, port: u16) -> String {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => SocketAddr::from((ip, port)).to_string(),
        _ => format!("{host}:{port}"),
    }
}

/// The local address of the interface that routes to the first ZooKeeper
/// server: a UDP socket `connect`ed to it asks the kernel's routing table
/// and sends nothing.
async fn route_to_zookeeper(config: &MprpcConfig) -> Result<IpAddr, Error> {
    let connect = config.zookeeper_address().unwrap_or_default();
    let first = connect.split(',').next().unwrap_or_default().to_string();
    let failed = |what: &str, e: std::io::Error| {
        Error::io(format!("advertise_host = \"auto\": {what} {first}"), e)
    };
    let zk = tokio::net::lookup_host(first.as_str())
        .await
        .map_err(|e| failed("resolving", e))?
        .next()
        .ok_or_else(|| {
            failed(
                "resolving",
                std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
            )
        })?;
    let any: SocketAddr = if zk.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = tokio::net::UdpSocket::bind(any)
        .await
        .map_err(|e| failed("opening a socket towards", e))?;
    socket
        .connect(zk)
        .await
        .map_err(|e| failed("finding the route to", e))?;
    let local = socket
        .local_addr()
        .map_err(|e| failed("reading the local address towards", e))?;
    log::info!(
        "advertise_host = \"auto\": {} routes to ZooKeeper at {zk}",
        local.ip()
    );
    Ok(local.ip())
}
