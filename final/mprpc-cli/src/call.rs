//! Where a call goes (`host:port`, `course://host:port`, `zk://…`) and the
//! call itself, through the same [`MprpcChannel`] a Rust program uses: the
//! tool gets pooling, TLS, metadata, deadlines, ZooKeeper discovery and the
//! course's format from `mprpc`, and adds only what a dynamic message needs.

use std::path::PathBuf;
use std::time::Duration;

use bytes::{Buf, BufMut};
use mprpc::{ErrorCode, MprpcChannel, MprpcConfig, MprpcController, ServiceDescriptor, Status};
use prost::encoding::{DecodeContext, WireType};

use crate::schema::Method;

/// Where to send calls, as the command line gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    /// `host:port`: one provider, the framed format.
    Framed(String),
    /// `course://host:port` (or `--course`): one provider of the C++ course,
    /// in its own format — one connection per call, short names.
    Course(String),
    /// `zk://host:port[,host:port]`: the service's providers, found in
    /// ZooKeeper (mprpc's layout and the course's).
    Zk(String),
}

impl Addr {
    /// Parses `ADDR`; `course` is the `--course` flag.
    pub fn parse(addr: &str, course: bool) -> Result<Addr, String> {
        let (scheme, rest) = match addr.split_once("://") {
            Some((s, r)) => (s, r),
            None => ("", addr),
        };
        let check = |hostport: &str| -> Result<(), String> {
            for one in hostport.split(',') {
                match one.rsplit_once(':') {
                    Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok() => {}
                    _ => return Err(format!("{addr:?}: {one:?} is not host:port")),
                }
            }
            Ok(())
        };
        match scheme {
            "" if course => check(rest).map(|()| Addr::Course(rest.into())),
            "" => check(rest).map(|()| Addr::Framed(rest.into())),
            "course" => check(rest).map(|()| Addr::Course(rest.into())),
            "zk" => check(rest).map(|()| Addr::Zk(rest.into())),
            other => Err(format!(
                "{addr:?}: unknown scheme {other:?}; ADDR is host:port, course://host:port or zk://host:port[,host:port]"
            )),
        }
        .and_then(|a| match (&a, rest.contains(',')) {
            (Addr::Zk(_), _) | (_, false) => Ok(a),
            _ => Err(format!("{addr:?}: only zk:// takes a list of servers")),
        })
    }
}

/// How to reach providers: TLS files, the call's deadline.
#[derive(Debug, Clone, Default)]
pub struct Connect {
    /// CA that signs the provider's certificate (turns TLS on).
    pub tls_ca: Option<PathBuf>,
    /// Client certificate, for providers that require one.
    pub tls_cert: Option<PathBuf>,
    /// Its key.
    pub tls_key: Option<PathBuf>,
    /// Name to check the provider's certificate against.
    pub server_name: Option<String>,
    /// The call's deadline.
    pub timeout: Duration,
}

/// The config a channel to `addr` is made from.
pub fn config(addr: &Addr, connect: &Connect) -> MprpcConfig {
    let mut config = MprpcConfig::default();
    config.timeouts.call_ms = connect.timeout.as_millis().clamp(1, u64::MAX as u128) as u64;
    config.timeouts.connect_ms = config.timeouts.connect_ms.min(config.timeouts.call_ms);
    config.tls.ca = connect.tls_ca.clone();
    config.tls.client_cert = connect.tls_cert.clone();
    config.tls.client_key = connect.tls_key.clone();
    config.tls.server_name = connect.server_name.clone();
    if let Addr::Zk(servers) = addr {
        config.zookeeperip = Some(servers.clone());
        // A provider keeps retrying an unreachable ZooKeeper for a minute;
        // a command waits no longer than its own deadline.
        config.timeouts.zk_connect_ms = config.timeouts.call_ms;
        // Providers of either layout: mprpc's and the C++ course's.
        config.course_compat.discover = true;
    }
    config
}

/// A channel to `addr` (connecting lazily, on the first call).
pub async fn channel(addr: &Addr, connect: &Connect) -> Result<MprpcChannel, String> {
    let config = config(addr, connect);
    config.validate().map_err(|e| e.to_string())?;
    match addr {
        Addr::Framed(a) => Ok(MprpcChannel::direct_with(&config, a)),
        Addr::Course(a) => Ok(MprpcChannel::direct_with(&config, &format!("course://{a}"))),
        Addr::Zk(_) => MprpcChannel::from_config(&config)
            .await
            .map_err(|e| format!("ZooKeeper: {e}")),
    }
}

/// The service's names as the channel wants them: a `'static` descriptor.
/// Generated code has one `static` per service; a tool learns services at
/// run time, so it leaks one per service it calls — a few bytes, once.
pub fn descriptor(method: &Method) -> &'static ServiceDescriptor {
    let leak = |s: &str| -> &'static str { Box::leak(s.to_string().into_boxed_str()) };
    let methods: Vec<&'static str> = method.all_methods().iter().map(|m| leak(m)).collect();
    Box::leak(Box::new(ServiceDescriptor::new(
        leak(method.service_short()),
        leak(method.service_full()),
        Box::leak(methods.into_boxed_slice()),
    )))
}

/// One call: the request's bytes out, the response's bytes back (decoded
/// by the caller against the method's output type). The request is a
/// [`DynamicMessage`](prost_reflect::DynamicMessage), or for repeated calls the same one already encoded
/// as [`Raw`].
pub async fn call(
    channel: &MprpcChannel,
    controller: &MprpcController,
    service: &'static ServiceDescriptor,
    method: &Method,
    request: &impl prost::Message,
) -> Result<Vec<u8>, Status> {
    let raw: Raw = channel
        .call(Some(controller), service, method.index(), request)
        .await?;
    Ok(raw.0)
}

/// A response kept as its encoded bytes: the channel decodes into a
/// `prost::Message + Default`, and a dynamic message needs its descriptor
/// first. [`prost::Message::decode`] goes through `merge`, which takes the
/// bytes whole.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Raw(pub Vec<u8>);

impl prost::Message for Raw {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        // Only reached through `merge_length_delimited` or a caller of
        // `merge_field` itself; `merge` below takes everything at once.
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn merge(&mut self, mut buf: impl Buf) -> Result<(), prost::DecodeError> {
        while buf.has_remaining() {
            let chunk = buf.chunk();
            self.0.extend_from_slice(chunk);
            let n = chunk.len();
            buf.advance(n);
        }
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// The process exit code for a failed call: the status code's number
/// (1–9 from the provider, 100–105 from the caller's side).
pub fn exit_code(code: ErrorCode) -> u8 {
    match code as u8 {
        0 => 1,
        n => n,
    }
}
