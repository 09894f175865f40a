//! `mprpc`, the command-line tool: call any method from a shell, see the
//! bytes, find the providers — grpcurl for mprpc. It is built on the `mprpc`
//! crate like any user's program: calls go through [`mprpc::MprpcChannel`]
//! (pooling, TLS, metadata, deadlines, ZooKeeper, the course's format), and
//! messages are dynamic, from `.proto` files compiled at run time (protox
//! and prost-reflect, no protoc).
//!
//! Exit status: 0 on success; for a failed call, the status code's number
//! (1–9 from the provider, 100–105 from this side, e.g. 100 when nobody
//! answers), with `mprpc: <code>: <text>` on stderr; 64 for input the tool
//! refuses before calling (a bad address, JSON, `.proto` or flag), with one
//! line saying why.
//!
//! | file | what |
//! |---|---|
//! | `schema.rs` | `.proto` files compiled, services and methods found, JSON in and out, `describe` |
//! | `call.rs` | `ADDR` (`host:port`, `course://`, `zk://`), the channel, the call |
//! | `exchange.rs` | one call on a raw TCP connection, for `--dump` |
//! | `dump.rs` | bytes annotated field by field |
//! | `providers.rs` | the registered providers in ZooKeeper, both layouts |
//! | `reflect.rs` | the schema from the provider's reflection service |
//! | `bench.rs` | a closed-loop load |

mod bench;
mod call;
mod dump;
mod exchange;
mod providers;
mod reflect;
mod schema;

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use mprpc::{Metadata, MprpcController, Status};
use prost_reflect::DynamicMessage;

use call::{Addr, Connect};
use schema::{Method, Schema};

/// The exit status for input refused before any call (EX_USAGE).
const BAD_INPUT: u8 = 64;

/// Command line of the `mprpc` tool.
#[derive(Debug, Parser)]
#[command(
    name = "mprpc",
    version,
    about = "Call mprpc services from a shell, see their bytes, find their providers",
    after_help = "ADDR is host:port (mprpc's framed format), course://host:port (the C++ course's \
                  format) or zk://host:port[,host:port] (the service's providers in ZooKeeper, \
                  both layouts). REQUEST is JSON, @FILE or - (stdin); default {}."
)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Call one method and print the response as JSON.
    Call {
        /// Where: host:port, course://host:port or zk://host:port[,…].
        addr: String,
        /// SERVICE/METHOD, the service by full or short name.
        target: String,
        /// The request: JSON, @FILE or - for stdin.
        request: Option<String>,
        /// Schema and connection options.
        #[command(flatten)]
        opts: CallOpts,
        /// Also print the request and response bytes, annotated (plain TCP).
        #[arg(long)]
        dump: bool,
        /// Print the metadata sent and received on stderr.
        #[arg(short, long)]
        verbose: bool,
    },
    /// List the services and methods (of --proto, or the provider's own).
    List {
        /// The provider; without --proto, its reflection service is asked.
        addr: String,
        /// Schema and connection options.
        #[command(flatten)]
        opts: CallOpts,
    },
    /// Show a service or a method with its messages, as .proto text.
    Describe {
        /// The provider; without --proto, its reflection service is asked.
        addr: String,
        /// SERVICE or SERVICE/METHOD.
        target: String,
        /// Schema and connection options.
        #[command(flatten)]
        opts: CallOpts,
    },
    /// The registered providers of every service, in both ZooKeeper layouts.
    Providers {
        /// zk://host:port, or zk://host1:port1,host2:port2 for an ensemble.
        addr: String,
        /// Only this service (full or short name).
        service: Option<String>,
        /// The root of mprpc's layout (the providers' `zk_root`).
        #[arg(long, default_value = "/mprpc")]
        zk_root: String,
    },
    /// Print a request's bytes, annotated field by field, without sending it.
    Dump {
        /// SERVICE/METHOD.
        target: String,
        /// The request: JSON, @FILE or - (needs --proto).
        request: Option<String>,
        /// The already encoded request message in hex, instead of JSON.
        #[arg(long, conflicts_with = "request")]
        args_hex: Option<String>,
        /// Only the plain hex, no annotation.
        #[arg(long)]
        raw: bool,
        /// Schema and connection options (`--course` for the course's format).
        #[command(flatten)]
        opts: CallOpts,
    },
    /// A closed-loop load: calls/s and latency percentiles, client-side.
    Bench {
        /// Where: host:port, course://host:port or zk://host:port[,…].
        addr: String,
        /// SERVICE/METHOD.
        target: String,
        /// The request: JSON, @FILE or -.
        request: Option<String>,
        /// Calls in flight.
        #[arg(short = 'c', long, default_value_t = 16)]
        concurrency: usize,
        /// How long to measure (after a 1 s warm-up): 10s, 500ms, 1m.
        #[arg(short = 'd', long, default_value = "10s", value_parser = parse_duration)]
        duration: Duration,
        /// Schema and connection options.
        #[command(flatten)]
        opts: CallOpts,
    },
}

/// Where the messages' schema comes from.
#[derive(Debug, Args)]
struct SchemaOpts {
    /// A .proto file defining the service (repeatable). Without one, the
    /// provider's reflection service is asked (host:port only).
    #[arg(long = "proto", value_name = "FILE")]
    protos: Vec<PathBuf>,
    /// A folder to find imports in (repeatable).
    #[arg(short = 'I', long = "import-path", value_name = "DIR")]
    includes: Vec<PathBuf>,
}

/// Options of every command that makes (or encodes) a call.
#[derive(Debug, Args)]
struct CallOpts {
    /// Schema options.
    #[command(flatten)]
    schema: SchemaOpts,
    /// Speak the course's format (as course://).
    #[arg(long)]
    course: bool,
    /// Request metadata, key:value (repeatable).
    #[arg(short = 'H', long = "header", value_name = "KEY:VALUE")]
    headers: Vec<String>,
    /// The call's deadline: 5s, 500ms, 1m.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
    /// CA certificate (PEM) that signs the provider's: turns TLS on.
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// Client certificate (PEM), for providers that require one.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The name to check the provider's certificate against.
    #[arg(long)]
    server_name: Option<String>,
}

impl CallOpts {
    /// The connection settings.
    fn connect(&self) -> Connect {
        Connect {
            tls_ca: self.tls_ca.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            server_name: self.server_name.clone(),
            timeout: self.timeout,
        }
    }

    /// The `-H` metadata.
    fn metadata(&self) -> Result<Metadata, String> {
        let mut md = Metadata::new();
        for h in &self.headers {
            let Some((k, v)) = h.split_once(':') else {
                return Err(format!("-H {h:?} is not key:value"));
            };
            md.try_insert(k.trim(), v.trim_start())
                .map_err(|e| format!("-H {h:?}: {e}"))?;
        }
        Ok(md)
    }

    /// The schema, compiled.
    fn load(&self) -> Result<Schema, String> {
        Schema::load(&self.schema.protos, &self.schema.includes)
    }

    /// What `call` and `bench` need before the first call: the address, the
    /// method `target` names in the schema, the request (JSON from
    /// `request`, or stdin) and the `-H` metadata.
    async fn prepare(
        &self,
        addr: &str,
        target: &str,
        request: Option<&str>,
    ) -> Result<Prepared, Failure> {
        let addr = Addr::parse(addr, self.course)?;
        let method = self.schema(&addr).await?.method(target)?;
        let request = read_request(&method, request)?;
        let metadata = self.metadata()?;
        Ok(Prepared {
            addr,
            method,
            request,
            metadata,
        })
    }

    /// The schema from `--proto`, or else from `addr`'s reflection service.
    async fn schema(&self, addr: &Addr) -> Result<Schema, Failure> {
        if !self.schema.protos.is_empty() {
            return Ok(self.load()?);
        }
        match addr {
            Addr::Framed(a) => reflect::schema(a, &self.connect(), &self.metadata()?)
                .await
                .map_err(Failure::Call),
            Addr::Course(_) => Err(Failure::Input(
                "the course's format has no reflection: pass --proto FILE".into(),
            )),
            Addr::Zk(_) => Err(Failure::Input(
                "reflection asks one provider: give its host:port, or pass --proto FILE".into(),
            )),
        }
    }
}

/// A call's parts, parsed and checked: see [`CallOpts::prepare`].
struct Prepared {
    /// Where to call.
    addr: Addr,
    /// The method, from the schema.
    method: Method,
    /// The request message.
    request: DynamicMessage,
    /// The `-H` metadata.
    metadata: Metadata,
}

/// What a command ends with: printed output, or why it failed.
enum Failure {
    /// Refused before calling: one line, exit 64.
    Input(String),
    /// The call failed: its status, exit its code's number.
    Call(Status),
}

impl From<String> for Failure {
    fn from(s: String) -> Failure {
        Failure::Input(s)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mprpc: cannot start the runtime: {e}");
            return ExitCode::from(BAD_INPUT);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(Failure::Input(reason)) => {
            eprintln!("mprpc: {}", one_line(&reason));
            ExitCode::from(BAD_INPUT)
        }
        Err(Failure::Call(status)) => {
            eprintln!(
                "mprpc: {}: {}",
                status.code().as_str(),
                one_line(status.message())
            );
            ExitCode::from(call::exit_code(status.code()))
        }
    }
}

/// Runs one command; its standard output, or why it failed.
async fn run(cli: Cli) -> Result<String, Failure> {
    match cli.command {
        Command::Call {
            addr,
            target,
            request,
            opts,
            dump,
            verbose,
        } => {
            let Prepared {
                addr,
                method,
                request,
                metadata,
            } = opts.prepare(&addr, &target, request.as_deref()).await?;
            if dump {
                return dump_call(&addr, &opts, &method, &request, &metadata).await;
            }
            let channel = call::channel(&addr, &opts.connect()).await?;
            let controller = MprpcController::with_timeout(opts.timeout);
            for (k, v) in metadata.iter() {
                if verbose {
                    eprintln!("> {k}: {v}");
                }
                controller.set_metadata(k, v).map_err(Failure::Call)?;
            }
            let service = call::descriptor(&method);
            let bytes = call::call(&channel, &controller, service, &method, &request)
                .await
                .map_err(Failure::Call)?;
            if verbose {
                for (k, v) in controller.response_metadata().iter() {
                    eprintln!("< {k}: {v}");
                }
            }
            let response = decode(&method, &bytes)?;
            Ok(schema::to_json(&response)? + "\n")
        }
        Command::List { addr, opts } => {
            let addr = Addr::parse(&addr, opts.course)?;
            let schema = opts.schema(&addr).await?;
            let mut out = String::new();
            for s in schema.services() {
                out.push_str(s.full_name());
                out.push('\n');
                for m in s.methods() {
                    out.push_str(&format!("  {}/{}\n", s.full_name(), m.name()));
                }
            }
            Ok(out)
        }
        Command::Describe { addr, target, opts } => {
            let addr = Addr::parse(&addr, opts.course)?;
            let schema = opts.schema(&addr).await?;
            if let Ok(service) = schema.service(&target) {
                return Ok(schema::describe_service(&service));
            }
            if let Some(message) = schema.message(&target) {
                return Ok(schema::describe_message(&message));
            }
            let method = schema.method(&target)?;
            Ok(schema::describe_method(&method))
        }
        Command::Providers {
            addr,
            service,
            zk_root,
        } => {
            let Addr::Zk(servers) = Addr::parse(&addr, false)? else {
                return Err(format!(
                    "{addr:?}: providers are listed from ZooKeeper: zk://host:port"
                )
                .into());
            };
            Ok(providers::list(&servers, &zk_root, service.as_deref()).await?)
        }
        Command::Dump {
            target,
            request,
            args_hex,
            raw,
            opts,
        } => dump_only(&target, request.as_deref(), args_hex.as_deref(), raw, &opts),
        Command::Bench {
            addr,
            target,
            request,
            concurrency,
            duration,
            opts,
        } => {
            let Prepared {
                addr,
                method,
                request,
                metadata,
            } = opts.prepare(&addr, &target, request.as_deref()).await?;
            let channel = call::channel(&addr, &opts.connect()).await?;
            let service = call::descriptor(&method);
            // One call first: a bench of a call that fails measures nothing.
            let controller = MprpcController::with_timeout(opts.timeout);
            for (k, v) in metadata.iter() {
                controller.set_metadata(k, v).map_err(Failure::Call)?;
            }
            call::call(&channel, &controller, service, &method, &request)
                .await
                .map_err(Failure::Call)?;
            let report = bench::run(
                channel,
                service,
                method,
                request,
                metadata,
                concurrency,
                duration,
            )
            .await;
            Ok(report.render(concurrency))
        }
    }
}

/// `call --dump`: the call on a connection of its own, both directions'
/// bytes annotated, then the response as JSON.
async fn dump_call(
    addr: &Addr,
    opts: &CallOpts,
    method: &Method,
    request: &DynamicMessage,
    metadata: &Metadata,
) -> Result<String, Failure> {
    if opts.tls_ca.is_some() {
        return Err(
            "--dump shows plain TCP bytes; it cannot be combined with TLS"
                .to_string()
                .into(),
        );
    }
    let (target, course) = match addr {
        Addr::Framed(a) => (a, false),
        Addr::Course(a) => (a, true),
        Addr::Zk(_) => {
            return Err("--dump needs one provider: host:port or course://host:port"
                .to_string()
                .into());
        }
    };
    let sent = if course {
        exchange::course_bytes(method.service_short(), method.name(), request)
    } else {
        exchange::framed_bytes(
            method.service_full(),
            method.name(),
            request,
            metadata,
            opts.timeout,
        )?
    };
    let ex = exchange::exchange(target, sent, course, opts.timeout).await?;
    let (input, output) = (method.method.input(), method.method.output());
    let mut out = format!("> {} bytes to {target}\n", ex.sent.len());
    let (req, resp) = if course {
        (
            dump::course_request(&ex.sent, Some(&input)),
            dump::course_response(&ex.received, Some(&output)),
        )
    } else {
        (
            dump::framed(&ex.sent, Some(&input)),
            dump::framed(&ex.received, Some(&output)),
        )
    };
    out.push_str(&req.render());
    out.push_str(&format!("\n< {} bytes from {target}\n", ex.received.len()));
    out.push_str(&resp.render());
    out.push('\n');
    if let Some((code, text)) = ex.failure {
        print!("{out}");
        return Err(Failure::Call(Status::new(code, text)));
    }
    let bytes = ex.response.unwrap_or_default();
    out.push_str(&(schema::to_json(&decode(method, &bytes)?)? + "\n"));
    Ok(out)
}

/// `dump`: a request's bytes without sending it.
fn dump_only(
    target: &str,
    request: Option<&str>,
    args_hex: Option<&str>,
    raw: bool,
    opts: &CallOpts,
) -> Result<String, Failure> {
    let (bytes, input) = match args_hex {
        Some(hex) => {
            let args = dump::from_hex(hex)?;
            let (service, method) = schema::split_target(target)?;
            let schema = (!opts.schema.protos.is_empty())
                .then(|| opts.load())
                .transpose()?;
            let input = match &schema {
                Some(s) => Some(s.method(target)?.method.input()),
                None => None,
            };
            let bytes = if opts.course {
                // The course sends short names.
                let short = service.rsplit('.').next().unwrap_or(service);
                mprpc::legacy::encode_bytes(short, method, &args)
            } else {
                let raw = call::Raw(args);
                let md = opts.metadata()?;
                let mut out = bytes::BytesMut::from(&mprpc::frame::PREAMBLE[..]);
                let timeout_ms = opts.timeout.as_millis().clamp(1, u32::MAX as u128) as u32;
                mprpc::frame::encode_request_with_metadata(
                    &mut out,
                    1,
                    timeout_ms,
                    service,
                    method,
                    Some(&md),
                    &raw,
                    mprpc::frame::MAX_FRAME_SIZE_CAP,
                )
                .map_err(|(_, why)| why)?;
                out.to_vec()
            };
            (bytes, input)
        }
        None => {
            let schema = opts.load()?;
            let method = schema.method(target)?;
            let message = read_request(&method, request)?;
            let bytes = if opts.course {
                exchange::course_bytes(method.service_short(), method.name(), &message)
            } else {
                exchange::framed_bytes(
                    method.service_full(),
                    method.name(),
                    &message,
                    &opts.metadata()?,
                    opts.timeout,
                )?
            };
            (bytes, Some(method.method.input()))
        }
    };
    if raw {
        return Ok(dump::hex(&bytes) + "\n");
    }
    let table = if opts.course {
        dump::course_request(&bytes, input.as_ref())
    } else {
        dump::framed(&bytes, input.as_ref())
    };
    Ok(format!("{}\n{}", dump::hex(&bytes), table.render()))
}

/// The request from JSON text, `@file` or `-` (stdin); `{}` when absent.
fn read_request(method: &Method, request: Option<&str>) -> Result<DynamicMessage, String> {
    let text = match request {
        None => "{}".to_string(),
        Some("-") => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| format!("reading the request from stdin: {e}"))?;
            s
        }
        Some(arg) => match arg.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("reading the request from {path}: {e}"))?,
            None => arg.to_string(),
        },
    };
    schema::from_json(&method.method.input(), &text)
}

/// The response message from its bytes.
fn decode(method: &Method, bytes: &[u8]) -> Result<DynamicMessage, Failure> {
    DynamicMessage::decode(method.method.output(), bytes).map_err(|e| {
        Failure::Call(Status::new(
            mprpc::ErrorCode::BadResponse,
            format!(
                "the response is not a valid {}: {e}",
                method.method.output().full_name()
            ),
        ))
    })
}

/// `5s`, `500ms`, `2m`, or a number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (5s, 500ms, 1m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("{text:?}: unit must be ms, s or m")),
    };
    if !(secs > 0.0 && secs < 1e7) {
        return Err(format!("{text:?}: must be more than zero"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Text on one line: every bad input is reported in one.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
