//! `advertise_host` over real TCP and a REAL ZooKeeper: what a provider bound
//! to every interface (`0.0.0.0`) registers, in both layouts it registers in
//! (`/mprpc/<service>/providers/<addr>` and, with `course_compat.register`,
//! the course's `/<Service>/<Method>`).
//!
//! * bound to `0.0.0.0` without `advertise_host`: refused, naming the key,
//!   and nothing registered;
//! * `advertise_host = "127.0.0.2"` (a loopback address that is not the
//!   bound one's default) and a DNS name: registered under it, read back
//!   from ZooKeeper, and a caller reaches the provider through it;
//! * `"auto"`: the address of the interface that routes to ZooKeeper —
//!   `127.0.0.1` for a ZooKeeper on loopback, and this machine's
//!   non-loopback address for a ZooKeeper reached through it (a forwarder on
//!   that address in front of the test's ZooKeeper, which listens on
//!   loopback only).

mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use mprpc::{MprpcChannel, MprpcConfig, RpcProvider, RunningProvider, ZkClient};
use mprpc_examples::UserService;
use mprpc_examples::fixbug::{LoginRequest, UserServiceRpcServer, UserServiceRpcStub};
use support::harness::runtime;
use support::zk_server::ZkServer;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const SESSION: Duration = Duration::from_secs(4);

/// A provider config bound to `0.0.0.0`, any port, talking to ZooKeeper at
/// `zk` ("host:port"), plus `extra` top-level lines.
fn config(zk: &str, extra: &str) -> Result<MprpcConfig, mprpc::Error> {
    MprpcConfig::from_toml(&format!(
        "rpcserverip = \"0.0.0.0\"\nrpcserverport = 0\nzookeeperip = \"{zk}\"\n\
         zk_session_timeout_ms = {}\n{extra}\n[timeouts]\nzk_connect_ms = 20000\n",
        SESSION.as_millis()
    ))
}

/// Starts a provider of the demo `UserServiceRpc`.
async fn start(config: MprpcConfig) -> Result<RunningProvider, mprpc::Error> {
    let mut provider = RpcProvider::new(config);
    provider.notify_service(UserServiceRpcServer::new(UserService::default()));
    provider.start().await
}

/// The providers registered for the demo service, as "addr = data".
async fn registered(zk: &ZkClient) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let parent = "/mprpc/fixbug.UserServiceRpc/providers";
    let mut found = Vec::new();
    if zk.exists(parent).await?.is_none() {
        return Ok(found);
    }
    for child in zk.get_children(parent).await? {
        let data = zk.get_data(&format!("{parent}/{child}")).await?;
        found.push(format!("{child} = {}", String::from_utf8_lossy(&data)));
    }
    Ok(found)
}

/// A Login through ZooKeeper succeeds (the caller connects to whatever the
/// provider registered).
async fn call_through_zookeeper(zk: &str) -> TestResult {
    let channel = MprpcChannel::from_config(&config(zk, "")?).await?;
    let stub = UserServiceRpcStub::new(channel);
    let request = LoginRequest {
        name: b"zhang san".to_vec(),
        pwd: b"123456".to_vec(),
    };
    stub.login(&request).await?;
    Ok(())
}

#[test]
fn bound_to_every_interface_without_advertise_host_is_refused_naming_the_key() -> TestResult {
    let server = ZkServer::start()?;
    runtime()?.block_on(async {
        for any in ["0.0.0.0", "::"] {
            let mut c = config(&server.addr(), "")?;
            c.rpcserverip = any.into();
            let error = match start(c).await {
                Ok(p) => return Err(format!("{any}: started, advertising {}", p.address()).into()),
                Err(e) => e.to_string(),
            };
            assert!(
                error.contains("advertise_host") && error.contains(any),
                "{any}: {error}"
            );
        }
        let zk = ZkClient::start(&server.addr(), SESSION).await?;
        assert_eq!(registered(&zk).await?, Vec::<String>::new());
        // Without ZooKeeper nothing is announced, so binding every
        // interface is fine: callers read the same static table.
        let mut local = MprpcConfig::default();
        local.rpcserverip = "0.0.0.0".into();
        local.rpcserverport = 0;
        let p = start(local).await?;
        assert!(p.local_addr().ip().is_unspecified(), "{}", p.local_addr());
        p.shutdown().await?;
        Ok(())
    })
}

#[test]
fn advertise_host_is_what_both_layouts_register_and_callers_reach() -> TestResult {
    let server = ZkServer::start()?;
    runtime()?.block_on(async {
        let zk = ZkClient::start(&server.addr(), SESSION).await?;
        let extra = "advertise_host = \"127.0.0.2\"\n[course_compat]\nregister = true";
        let provider = start(config(&server.addr(), extra)?).await?;
        let port = provider.local_addr().port();
        assert!(provider.local_addr().ip().is_unspecified());
        let advertised = format!("127.0.0.2:{port}");
        assert_eq!(provider.address(), advertised);
        assert_eq!(
            registered(&zk).await?,
            [format!("{advertised} = {advertised}")]
        );
        // The course's layout holds the same address, for C++ callers.
        for method in ["Login", "Register"] {
            let data = zk.get_data(&format!("/UserServiceRpc/{method}")).await?;
            assert_eq!(String::from_utf8_lossy(&data), advertised, "{method}");
        }
        call_through_zookeeper(&server.addr()).await?;
        provider.shutdown().await?;
        assert_eq!(registered(&zk).await?, Vec::<String>::new());

        // A DNS name is registered as it is; callers resolve it.
        let provider = start(config(&server.addr(), "advertise_host = \"localhost\"")?).await?;
        let advertised = format!("localhost:{}", provider.local_addr().port());
        assert_eq!(provider.address(), advertised);
        assert_eq!(
            registered(&zk).await?,
            [format!("{advertised} = {advertised}")]
        );
        call_through_zookeeper(&server.addr()).await?;
        provider.shutdown().await?;
        Ok(())
    })
}

#[test]
fn auto_for_a_zookeeper_on_loopback_is_the_loopback_address() -> TestResult {
    let server = ZkServer::start()?;
    runtime()?.block_on(async {
        let zk = ZkClient::start(&server.addr(), SESSION).await?;
        let provider = start(config(&server.addr(), "advertise_host = \"auto\"")?).await?;
        let advertised = format!("127.0.0.1:{}", provider.local_addr().port());
        assert_eq!(provider.address(), advertised);
        assert_eq!(
            registered(&zk).await?,
            [format!("{advertised} = {advertised}")]
        );
        provider.shutdown().await?;
        Ok(())
    })
}

/// This machine's non-loopback IPv4 address: the source address of its
/// default route (a UDP `connect` sends nothing).
fn non_loopback_address() -> Result<IpAddr, Box<dyn std::error::Error>> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0")?;
    socket
        .connect("192.0.2.1:9")
        .or_else(|_| socket.connect("10.255.255.1:9"))
        .map_err(|e| {
            format!("this machine has no non-loopback route ({e}); this test needs one")
        })?;
    let ip = socket.local_addr()?.ip();
    if ip.is_loopback() || ip.is_unspecified() {
        return Err(format!(
            "the default route's source address is {ip}; this test needs a non-loopback one"
        )
        .into());
    }
    Ok(ip)
}

/// Forwards every connection to `ip:0` (the port it returns) to `to`.
async fn forwarder(ip: IpAddr, to: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    Ok(local)
}

#[test]
fn auto_registers_the_non_loopback_address_that_routes_to_zookeeper() -> TestResult {
    let server = ZkServer::start()?;
    let ip = non_loopback_address()?;
    runtime()?.block_on(async {
        // The test's ZooKeeper listens on loopback only; reached through
        // `ip`, the route to it leaves from `ip`.
        let zk_addr = forwarder(ip, server.addr().parse()?).await?.to_string();
        let zk = ZkClient::start(&server.addr(), SESSION).await?;
        let provider = start(config(&zk_addr, "advertise_host = \"auto\"")?).await?;
        let advertised = format!("{ip}:{}", provider.local_addr().port());
        assert_eq!(provider.address(), advertised);
        assert_eq!(
            registered(&zk).await?,
            [format!("{advertised} = {advertised}")]
        );
        // Bound to every interface, the provider answers on that address.
        call_through_zookeeper(&zk_addr).await?;
        provider.shutdown().await?;
        Ok(())
    })
}
