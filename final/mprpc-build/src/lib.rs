//! # mprpc-build — the service generator for `build.rs`
//!
//! The C++ course wrote `option cc_generic_services = true;` in its `.proto`
//! files, and protoc emitted an abstract `UserServiceRpc` class for the callee
//! and a `UserServiceRpc_Stub` for the caller. prost emits messages only, so
//! this crate plays protoc's part for services, as `tonic-build` does for
//! tonic. For every `service` block it writes, next to prost's messages:
//!
//! * `<SERVICE>_DESCRIPTOR` — the service's short and full names and its
//!   methods in `.proto` order (what the course's `ServiceDescriptor` and
//!   `MethodDescriptor` gave its provider), and the encoded file descriptor
//!   set of the compiled files, which the provider's reflection service
//!   hands out (`[reflection] enabled = true`);
//! * `trait <Service>` — the callee interface, one `async` method per RPC;
//! * `<Service>Server<T>` — adapts an implementation to `mprpc::Service`, the
//!   object-safe trait `RpcProvider::notify_service` takes;
//! * `<Service>Stub` — the async caller stub over `mprpc::MprpcChannel`;
//! * `Blocking<Service>Stub` — the same calls for synchronous code.
//!
//! A server-streaming method (`rpc Watch(Req) returns (stream Event)`)
//! gets, as in tonic, an associated type `WatchStream: Stream<Item =
//! Result<Event, Status>>` and `fn watch(…) -> Result<Self::WatchStream,
//! Status>` in the trait, and stub methods returning `mprpc::Streaming<Event>`
//! (`mprpc::BlockingStreaming<Event>` on the blocking stub); its descriptor
//! records the methods' kinds. A client-streaming method (`rpc
//! Upload(stream Chunk) returns (Summary)`) gets `fn upload(&self, ctx,
//! requests: mprpc::Streaming<Chunk>) -> Result<Summary, Status>` in the
//! trait, and stub methods taking any `Stream<Item = Chunk> + Send +
//! 'static` (an `IntoIterator<Item = Chunk>` on the blocking stub); a
//! bidirectional one (`rpc Chat(stream Msg) returns (stream Msg)`) gets
//! both: the handler receives a `Streaming<Msg>` and returns
//! `Self::ChatStream`, the stub takes a stream and returns a
//! `Streaming<Msg>`.
//!
//! The generated code names only `::mprpc::…` paths (prost's derive
//! included, through [`prost_build::Config::prost_path`]), so a crate that
//! uses it depends on `mprpc` alone — no `prost` or `bytes` of its own.
//!
//! ```rust,no_run
//! // build.rs
//! fn main() -> std::io::Result<()> {
//!     mprpc_build::compile_protos(&["proto/kv.proto"], &["proto"])
//! }
//! ```
//!
//! and, in the crate, `mod kv { mprpc::include_proto!("kv"); }`.
//!
//! protoc is the one shipped by the `protoc-bin-vendored` crate unless the
//! `PROTOC` environment variable names another, so nothing needs installing.

use std::fmt;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use prost_build::{Method, Service, ServiceGenerator};

pub use prost_build;

/// Compiles `protos` (searched for imports in `includes`) into Rust: prost
/// messages plus the mprpc glue for every service, written to `OUT_DIR` for
/// [`mprpc::include_proto!`](https://docs.rs/mprpc). The shape of
/// `tonic_build::compile_protos`; [`configure`] gives the knobs.
pub fn compile_protos(
    protos: &[impl AsRef<Path>],
    includes: &[impl AsRef<Path>],
) -> io::Result<()> {
    configure().compile_protos(protos, includes)
}

/// A [`Builder`] with the defaults of [`compile_protos`]: server, async stub
/// and blocking stub for every service, output in `OUT_DIR`.
pub fn configure() -> Builder {
    Builder {
        out_dir: None,
        server: true,
        client: true,
        blocking: true,
        emit_rerun_if_changed: true,
        config: prost_build::Config::new(),
    }
}

/// What to generate and where; made by [`configure`].
pub struct Builder {
    /// Where the `.rs` files go; `None` is cargo's `OUT_DIR`.
    out_dir: Option<PathBuf>,
    /// Emit the callee trait and its server adapter.
    server: bool,
    /// Emit the async stub.
    client: bool,
    /// Emit the blocking stub too (only with `client`).
    blocking: bool,
    /// Print `cargo:rerun-if-changed` for every input.
    emit_rerun_if_changed: bool,
    /// prost's own configuration, for everything about messages.
    config: prost_build::Config,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("out_dir", &self.out_dir)
            .field("server", &self.server)
            .field("client", &self.client)
            .field("blocking", &self.blocking)
            .field("emit_rerun_if_changed", &self.emit_rerun_if_changed)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// Writes the generated files to `dir` instead of `OUT_DIR` (for example
    /// to check them into a repository). `include_proto!` reads `OUT_DIR`, so
    /// such files are included with `include!` or as modules.
    pub fn out_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.out_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Whether to generate the callee side (trait and `<Service>Server`).
    /// Default: yes.
    pub fn build_server(mut self, enable: bool) -> Self {
        self.server = enable;
        self
    }

    /// Whether to generate the caller side (`<Service>Stub`). Default: yes.
    pub fn build_client(mut self, enable: bool) -> Self {
        self.client = enable;
        self
    }

    /// Whether to generate `Blocking<Service>Stub` next to the async stub.
    /// Default: yes; it has no effect without [`build_client`](Self::build_client).
    pub fn build_blocking_stubs(mut self, enable: bool) -> Self {
        self.blocking = enable;
        self
    }

    /// Whether to print `cargo:rerun-if-changed` for every `.proto` file and
    /// include directory, so cargo re-runs the build script when they change.
    /// Default: yes.
    pub fn emit_rerun_if_changed(mut self, enable: bool) -> Self {
        self.emit_rerun_if_changed = enable;
        self
    }

    /// The underlying [`prost_build::Config`], for everything about messages
    /// (attributes, `bytes` fields, extern paths…). Its service generator and
    /// `prost_path` are set by [`compile_protos`](Self::compile_protos).
    pub fn prost_config(&mut self) -> &mut prost_build::Config {
        &mut self.config
    }

    /// Runs protoc and the generators.
    pub fn compile_protos(
        self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> io::Result<()> {
        let Builder {
            out_dir,
            server,
            client,
            blocking,
            emit_rerun_if_changed,
            mut config,
        } = self;
        if std::env::var_os("PROTOC").is_none() {
            let protoc = protoc_bin_vendored::protoc_bin_path().map_err(io::Error::other)?;
            config.protoc_executable(protoc);
        }
        // Messages derive `::mprpc::prost::Message`: the user's crate needs
        // no prost dependency, and its prost is always mprpc's.
        config.prost_path("::mprpc::prost");
        // protoc's descriptor set of these files (imports included), written
        // next to the generated code, which embeds it with `include_bytes!`
        // for reflection. Named after the inputs, so two `compile_protos` in
        // one build script do not overwrite each other's.
        let dir = match out_dir {
            Some(dir) => dir,
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or_else(|| {
                    io::Error::other("OUT_DIR is not set (run from build.rs, or set out_dir)")
                })?,
        };
        let set_name = descriptor_set_name(protos);
        config.out_dir(&dir);
        config.file_descriptor_set_path(dir.join(&set_name));
        config.service_generator(Box::new(MprpcServiceGenerator {
            server,
            client,
            blocking,
            descriptor_set: Some(set_name),
        }));
        let mut include_dirs: Vec<PathBuf> =
            includes.iter().map(|i| i.as_ref().to_path_buf()).collect();
        // google/protobuf/*.proto, for imports of the well-known types.
        if let Ok(dir) = protoc_bin_vendored::include_path() {
            include_dirs.push(dir);
        }
        if emit_rerun_if_changed {
            for path in protos
                .iter()
                .map(AsRef::as_ref)
                .chain(includes.iter().map(AsRef::as_ref))
            {
                println!("cargo:rerun-if-changed={}", path.display());
            }
            println!("cargo:rerun-if-env-changed=PROTOC");
        }
        config.compile_protos(protos, &include_dirs)
    }

    /// The service generator alone, for a build script that drives its own
    /// [`prost_build::Config`]: `config.service_generator(builder.service_generator())`.
    /// Set `config.prost_path("::mprpc::prost")` too, or depend on `prost`.
    /// Descriptors made this way carry no file descriptor set (the
    /// generator does not know where `config` writes one), so reflection
    /// lists their services but cannot give their schemas.
    pub fn service_generator(&self) -> Box<dyn ServiceGenerator> {
        Box::new(MprpcServiceGenerator {
            server: self.server,
            client: self.client,
            blocking: self.blocking,
            descriptor_set: None,
        })
    }
}

/// `mprpc-descriptors-<hash of the inputs>.bin`: the descriptor set's file
/// name, the same for the same inputs.
fn descriptor_set_name(protos: &[impl AsRef<Path>]) -> String {
    // FNV-1a: stable across Rust releases, unlike `DefaultHasher`.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for p in protos {
        for b in p.as_ref().to_string_lossy().bytes().chain([0]) {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("mprpc-descriptors-{hash:016x}.bin")
}

/// Emits the mprpc glue for each service (see the crate documentation).
#[derive(Debug)]
struct MprpcServiceGenerator {
    /// Trait and server adapter.
    server: bool,
    /// Async stub.
    client: bool,
    /// Blocking stub (with `client`).
    blocking: bool,
    /// File name of the descriptor set next to the generated code, if one
    /// is written.
    descriptor_set: Option<String>,
}

/// What a method takes and returns, from its `stream` keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// One message each way.
    Unary,
    /// `returns (stream T)`.
    ServerStreaming,
    /// `(stream T)` in, one message out.
    ClientStreaming,
    /// Streams both ways.
    Bidi,
}

/// The kind of `m`.
fn kind(m: &Method) -> Kind {
    match (m.client_streaming, m.server_streaming) {
        (false, false) => Kind::Unary,
        (false, true) => Kind::ServerStreaming,
        (true, false) => Kind::ClientStreaming,
        (true, true) => Kind::Bidi,
    }
}

/// The `::mprpc::codegen::MethodKind` variant naming `kind`.
fn kind_path(kind: Kind) -> &'static str {
    match kind {
        Kind::Unary => "::mprpc::codegen::MethodKind::Unary",
        Kind::ServerStreaming => "::mprpc::codegen::MethodKind::ServerStreaming",
        Kind::ClientStreaming => "::mprpc::codegen::MethodKind::ClientStreaming",
        Kind::Bidi => "::mprpc::codegen::MethodKind::Bidi",
    }
}

/// `UserServiceRpc` → `USER_SERVICE_RPC`.
fn shouty(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// The `.proto` comments of a method as `///` lines, or a fallback sentence.
fn method_docs(method: &Method, indent: &str, fallback: &str) -> String {
    let mut out = String::new();
    let lines: Vec<&String> = method.comments.leading.iter().collect();
    if lines.is_empty() {
        let _ = writeln!(out, "{indent}/// {fallback}");
    } else {
        for line in lines {
            let _ = writeln!(out, "{indent}///{line}");
        }
    }
    out
}

/// What tells a service's async stub from its blocking twin; the rest of
/// their text is the same and is written by [`write_stub`].
struct StubFlavour {
    /// Name of the struct, e.g. `UserServiceRpcStub`.
    stub: String,
    /// Its doc comment: `///` lines, without the final newline.
    doc: String,
    /// Type of its one field, `channel`.
    channel: &'static str,
    /// Doc line of that field.
    channel_doc: &'static str,
    /// `"async "` or nothing, before every `fn`.
    asyncness: &'static str,
    /// `".await"` or nothing, after every channel call.
    wait: &'static str,
    /// Rest of the fallback doc line "Calls `Method` ...".
    call_doc: &'static str,
    /// Rest of the doc line "Calls `Method` under `controller`...".
    controller_doc: &'static str,
    /// What a server-streaming method returns: `::mprpc::Streaming` or
    /// `::mprpc::BlockingStreaming`.
    streaming: &'static str,
    /// Type of a client-streaming method's `requests`, `{}` standing for
    /// the message type.
    client_requests: &'static str,
    /// Type of a bidirectional method's `requests`, likewise.
    bidi_requests: &'static str,
}

/// Appends one caller-side stub of `service` to `s`: a struct around a
/// channel and, per method, a call with the channel's default deadline and
/// a `_with` call under a controller.
fn write_stub(s: &mut String, service: &Service, desc: &str, flavour: &StubFlavour) {
    let StubFlavour {
        stub,
        doc,
        channel,
        channel_doc,
        asyncness,
        wait,
        call_doc,
        controller_doc,
        streaming,
        client_requests,
        bidi_requests,
    } = flavour;
    let _ = writeln!(
        s,
        "{doc}\n\
         #[allow(dead_code)]\n\
         #[derive(Debug, Clone)]\n\
         pub struct {stub} {{\n\
         \x20   /// {channel_doc}\n\
         \x20   channel: {channel},\n\
         }}\n\n\
         #[allow(dead_code)]\n\
         impl {stub} {{\n\
         \x20   /// A stub that sends its calls through `channel`.\n\
         \x20   pub fn new(channel: {channel}) -> Self {{\n\
         \x20       Self {{ channel }}\n\
         \x20   }}\n"
    );
    for (i, m) in service.methods.iter().enumerate() {
        match kind(m) {
            Kind::Unary => {}
            Kind::ServerStreaming => {
                s.push_str(&method_docs(
                    m,
                    "    ",
                    &format!("Opens the stream `{}` {call_doc}", m.proto_name),
                ));
                let _ = writeln!(
                    s,
                    "    ///\n\
                     \x20   /// The deadline covers the whole stream; dropping the stream cancels it.\n\
                     \x20   pub {asyncness}fn {r}(&self, request: &{inp}) -> ::core::result::Result<{streaming}<{out}>, ::mprpc::Status> {{\n\
                     \x20       self.channel.server_stream(None, &{desc}, {i}, request){wait}\n\
                     \x20   }}\n\n\
                     \x20   /// Opens the stream `{p}` under `controller`: its deadline covers the whole\n\
                     \x20   /// stream and its metadata goes with the opening.\n\
                     \x20   pub {asyncness}fn {r}_with(&self, controller: &::mprpc::MprpcController, request: &{inp}) -> ::core::result::Result<{streaming}<{out}>, ::mprpc::Status> {{\n\
                     \x20       self.channel.server_stream(Some(controller), &{desc}, {i}, request){wait}\n\
                     \x20   }}\n",
                    r = m.name,
                    p = m.proto_name,
                    inp = m.input_type,
                    out = m.output_type,
                );
                continue;
            }
            Kind::ClientStreaming | Kind::Bidi => {
                let (what, requests, ret, call) = if kind(m) == Kind::Bidi {
                    (
                        "Opens the bidirectional stream",
                        bidi_requests.replace("{}", &m.input_type),
                        format!("{streaming}<{}>", m.output_type),
                        "bidi_stream",
                    )
                } else {
                    (
                        "Calls the client stream",
                        client_requests.replace("{}", &m.input_type),
                        m.output_type.clone(),
                        "client_stream",
                    )
                };
                s.push_str(&method_docs(
                    m,
                    "    ",
                    &format!("{what} `{}` {call_doc}", m.proto_name),
                ));
                let _ = writeln!(
                    s,
                    "    ///\n\
                     \x20   /// `requests` go out as the provider's credit allows; their end is the\n\
                     \x20   /// half-close. The deadline covers the whole stream.\n\
                     \x20   pub {asyncness}fn {r}(&self, requests: {requests}) -> ::core::result::Result<{ret}, ::mprpc::Status> {{\n\
                     \x20       self.channel.{call}(None, &{desc}, {i}, requests){wait}\n\
                     \x20   }}\n\n\
                     \x20   /// {what} `{p}` under `controller`: its deadline covers the whole\n\
                     \x20   /// stream and its metadata goes with the opening.\n\
                     \x20   pub {asyncness}fn {r}_with(&self, controller: &::mprpc::MprpcController, requests: {requests}) -> ::core::result::Result<{ret}, ::mprpc::Status> {{\n\
                     \x20       self.channel.{call}(Some(controller), &{desc}, {i}, requests){wait}\n\
                     \x20   }}\n",
                    r = m.name,
                    p = m.proto_name,
                );
                continue;
            }
        }
        s.push_str(&method_docs(
            m,
            "    ",
            &format!("Calls `{}` {call_doc}", m.proto_name),
        ));
        let _ = writeln!(
            s,
            "    pub {asyncness}fn {r}(&self, request: &{inp}) -> ::core::result::Result<{out}, ::mprpc::Status> {{\n\
             \x20       self.channel.call(None, &{desc}, {i}, request){wait}\n\
             \x20   }}\n\n\
             \x20   /// Calls `{p}` under `controller`{controller_doc}\n\
             \x20   pub {asyncness}fn {r}_with(&self, controller: &::mprpc::MprpcController, request: &{inp}) -> ::core::result::Result<{out}, ::mprpc::Status> {{\n\
             \x20       self.channel.call(Some(controller), &{desc}, {i}, request){wait}\n\
             \x20   }}\n",
            r = m.name,
            p = m.proto_name,
            inp = m.input_type,
            out = m.output_type,
        );
    }
    let _ = writeln!(s, "}}\n");
}

impl ServiceGenerator for MprpcServiceGenerator {
    fn generate(&mut self, service: Service, buf: &mut String) {
        let name = &service.name;
        let proto = &service.proto_name;
        // The name callers and providers agree on in the framed format and the
        // registry: package-qualified, so `a.Store` and `b.Store` do not collide.
        let full = if service.package.is_empty() {
            proto.clone()
        } else {
            format!("{}.{}", service.package, proto)
        };
        let desc = format!("{}_DESCRIPTOR", shouty(name));
        let mut s = String::new();

        // Descriptor: the table the provider builds its dispatch map from.
        let _ = writeln!(
            s,
            "/// Names of `{full}` and its methods, in `.proto` order (the index is the\n\
             /// method's number in dispatch).\n\
             #[allow(dead_code)]\n\
             pub static {desc}: ::mprpc::ServiceDescriptor = ::mprpc::ServiceDescriptor::new(\n\
             \x20   \"{proto}\",\n\
             \x20   \"{full}\",\n\
             \x20   &["
        );
        for m in &service.methods {
            let _ = writeln!(s, "        \"{}\",", m.proto_name);
        }
        let _ = write!(s, "    ],\n)");
        // Relative to the generated file, so it also works when that file
        // is `include!`d from OUT_DIR or checked in with `out_dir`.
        if let Some(set) = &self.descriptor_set {
            let _ = write!(
                s,
                "\n.with_file_descriptor_set(::core::include_bytes!(\"{set}\"))"
            );
        }
        // Only services with a streaming method carry the kinds: for the
        // others the descriptor's default (all unary) says the same.
        if service.methods.iter().any(|m| kind(m) != Kind::Unary) {
            let _ = writeln!(s, "\n.with_method_kinds(&[");
            for m in &service.methods {
                let _ = writeln!(s, "    {},", kind_path(kind(m)));
            }
            let _ = write!(s, "])");
        }
        let _ = writeln!(s, ";\n");

        if self.server {
            write_server(&mut s, &service, &full, &desc);
        }
        if self.client {
            write_stubs(&mut s, &service, &full, &desc, self.blocking);
        }
        buf.push_str(&s);
    }
}

/// Appends the callee side of `service`: the trait to implement and the
/// adapter that makes an implementation a [`::mprpc::Service`].
fn write_server(s: &mut String, service: &Service, full: &str, desc: &str) {
    let name = &service.name;
    let proto = &service.proto_name;
    // Callee trait.
    let _ = writeln!(
        s,
        "/// Callee side of `{full}`: implement this, wrap it in [`{name}Server`]\n\
             /// and hand it to `RpcProvider::notify_service`.\n\
             ///\n\
             /// Methods return `impl Future + Send` so implementations may simply write\n\
             /// `async fn`; the `Send` bound lets the provider run them on any worker.\n\
             #[allow(dead_code)]\n\
             pub trait {name}: Send + Sync + 'static {{"
    );
    for m in &service.methods {
        let p = &m.proto_name;
        let streams_in = "reads the caller's messages from `requests`\n    /// (`Ok(None)` after its half-close) and";
        // What each kind takes and returns; the rest of the method is the same.
        let (doc, arg, ret) = match kind(m) {
            Kind::Unary => (
                format!("Handles `{p}`."),
                format!("request: {}", m.input_type),
                m.output_type.clone(),
            ),
            Kind::ServerStreaming => (
                format!("Handles `{p}`: returns the stream of responses."),
                format!("request: {}", m.input_type),
                format!("Self::{p}Stream"),
            ),
            Kind::ClientStreaming => (
                format!("Handles `{p}`: {streams_in} returns the one response."),
                format!("requests: ::mprpc::Streaming<{}>", m.input_type),
                m.output_type.clone(),
            ),
            Kind::Bidi => (
                format!("Handles `{p}`: {streams_in} returns the stream of responses."),
                format!("requests: ::mprpc::Streaming<{}>", m.input_type),
                format!("Self::{p}Stream"),
            ),
        };
        if matches!(kind(m), Kind::ServerStreaming | Kind::Bidi) {
            write_stream_type(s, m);
        }
        s.push_str(&method_docs(m, "    ", &doc));
        let _ = writeln!(
            s,
            "    fn {}(&self, ctx: ::mprpc::CallContext, {arg}) -> impl ::core::future::Future<Output = ::core::result::Result<{ret}, ::mprpc::Status>> + Send;",
            m.name
        );
    }
    let _ = writeln!(s, "}}\n");

    // Server adapter.
    let _ = writeln!(
        s,
        "/// Adapts a [`{name}`] implementation to the object-safe [`::mprpc::Service`]\n\
             /// the provider dispatches through (the course's `google::protobuf::Service`).\n\
             #[allow(dead_code)]\n\
             #[derive(Debug)]\n\
             pub struct {name}Server<T> {{\n\
             \x20   /// The implementation; shared with every in-flight call.\n\
             \x20   inner: ::std::sync::Arc<T>,\n\
             }}\n\n\
             #[allow(dead_code)]\n\
             impl<T: {name}> {name}Server<T> {{\n\
             \x20   /// Wraps an implementation.\n\
             \x20   pub fn new(service: T) -> Self {{\n\
             \x20       Self {{ inner: ::std::sync::Arc::new(service) }}\n\
             \x20   }}\n\n\
             \x20   /// Wraps an implementation that is already shared.\n\
             \x20   pub fn from_arc(service: ::std::sync::Arc<T>) -> Self {{\n\
             \x20       Self {{ inner: service }}\n\
             \x20   }}\n\
             }}\n\n\
             impl<T: {name}> ::mprpc::Service for {name}Server<T> {{\n\
             \x20   fn descriptor(&self) -> &'static ::mprpc::ServiceDescriptor {{\n\
             \x20       &{desc}\n\
             \x20   }}\n\n\
             \x20   fn call(&self, method: usize, ctx: ::mprpc::CallContext, request: ::mprpc::codegen::Bytes) -> ::mprpc::ResponseFuture {{\n\
             \x20       match method {{"
    );
    for (i, m) in service.methods.iter().enumerate() {
        if kind(m) != Kind::Unary {
            let _ = writeln!(
                s,
                "            {i} => ::mprpc::codegen::not_unary(&{desc}, {i}),"
            );
            continue;
        }
        let _ = writeln!(
            s,
            "            {i} => {{\n\
                 \x20               let request = match <{input} as ::mprpc::prost::Message>::decode(request) {{\n\
                 \x20                   ::core::result::Result::Ok(request) => request,\n\
                 \x20                   ::core::result::Result::Err(err) => return ::mprpc::codegen::bad_request(\"{proto}.{mname}\", &err),\n\
                 \x20               }};\n\
                 \x20               let inner = ::std::sync::Arc::clone(&self.inner);\n\
                 \x20               ::std::boxed::Box::pin(async move {{\n\
                 \x20                   inner.{rname}(ctx, request).await.map(|response| ::mprpc::prost::Message::encode_to_vec(&response))\n\
                 \x20               }})\n\
                 \x20           }}",
            input = m.input_type,
            mname = m.proto_name,
            rname = m.name,
        );
    }
    let _ = writeln!(
        s,
        "            other => ::mprpc::codegen::unknown_method(&{desc}, other),\n        }}\n    }}"
    );
    if service
        .methods
        .iter()
        .any(|m| kind(m) == Kind::ServerStreaming)
    {
        write_server_stream(s, service, desc);
    }
    if service
        .methods
        .iter()
        .any(|m| matches!(kind(m), Kind::ClientStreaming | Kind::Bidi))
    {
        write_client_stream(s, service, desc);
    }
    let _ = writeln!(s, "}}\n");
}

/// Appends the trait's associated type for the responses of a server or
/// bidirectional stream `m`.
fn write_stream_type(s: &mut String, m: &Method) {
    let _ = writeln!(
        s,
        "    /// The stream of `{p}`'s responses: each item a message or the\n\
         \x20   /// status that ends the stream.\n\
         \x20   type {p}Stream: ::mprpc::codegen::Stream<Item = ::core::result::Result<{out}, ::mprpc::Status>> + ::core::marker::Send + 'static;",
        p = m.proto_name,
        out = m.output_type,
    );
}

/// Appends `Service::client_stream` of the adapter: hand the handler the
/// caller's messages, encode what it returns.
fn write_client_stream(s: &mut String, service: &Service, desc: &str) {
    let _ = writeln!(
        s,
        "\n    fn client_stream(&self, method: usize, ctx: ::mprpc::CallContext, requests: ::mprpc::codegen::RawRequests) -> ::mprpc::codegen::StreamFuture {{\n\
         \x20       match method {{"
    );
    for (i, m) in service.methods.iter().enumerate() {
        let finish = match kind(m) {
            Kind::ClientStreaming => "::mprpc::codegen::one_response(",
            Kind::Bidi => "::core::result::Result::map(",
            _ => continue,
        };
        let tail = if kind(m) == Kind::Bidi {
            ", ::mprpc::codegen::encode_stream)"
        } else {
            ")"
        };
        let _ = writeln!(
            s,
            "            {i} => {{\n\
             \x20               let inner = ::std::sync::Arc::clone(&self.inner);\n\
             \x20               ::std::boxed::Box::pin(async move {{\n\
             \x20                   {finish}inner.{rname}(ctx, ::mprpc::codegen::requests(requests)).await{tail}\n\
             \x20               }})\n\
             \x20           }}",
            rname = m.name,
        );
    }
    let _ = writeln!(
        s,
        "            other => ::mprpc::codegen::no_stream_method(&{desc}, other),\n        }}\n    }}"
    );
}

/// Appends `Service::server_stream` of the adapter: decode the request,
/// call the handler, encode its stream's messages.
fn write_server_stream(s: &mut String, service: &Service, desc: &str) {
    let proto = &service.proto_name;
    let _ = writeln!(
        s,
        "\n    fn server_stream(&self, method: usize, ctx: ::mprpc::CallContext, request: ::mprpc::codegen::Bytes) -> ::mprpc::codegen::StreamFuture {{\n\
         \x20       match method {{"
    );
    for (i, m) in service.methods.iter().enumerate() {
        if kind(m) != Kind::ServerStreaming {
            continue;
        }
        let _ = writeln!(
            s,
            "            {i} => {{\n\
             \x20               let request = match <{input} as ::mprpc::prost::Message>::decode(request) {{\n\
             \x20                   ::core::result::Result::Ok(request) => request,\n\
             \x20                   ::core::result::Result::Err(err) => return ::mprpc::codegen::bad_stream_request(\"{proto}.{mname}\", &err),\n\
             \x20               }};\n\
             \x20               let inner = ::std::sync::Arc::clone(&self.inner);\n\
             \x20               ::std::boxed::Box::pin(async move {{\n\
             \x20                   inner.{rname}(ctx, request).await.map(::mprpc::codegen::encode_stream)\n\
             \x20               }})\n\
             \x20           }}",
            input = m.input_type,
            mname = m.proto_name,
            rname = m.name,
        );
    }
    let _ = writeln!(
        s,
        "            other => ::mprpc::codegen::no_stream_method(&{desc}, other),\n        }}\n    }}"
    );
}

/// Appends the caller side of `service`: the async stub and, if `blocking`,
/// its synchronous twin.
fn write_stubs(s: &mut String, service: &Service, full: &str, desc: &str, blocking: bool) {
    let name = &service.name;
    let proto = &service.proto_name;
    // Async stub, then its blocking twin: the same text but for these parts.
    write_stub(
        s,
        service,
        desc,
        &StubFlavour {
            stub: format!("{name}Stub"),
            doc: format!(
                "/// Caller side of `{full}` (the course's `{proto}_Stub`): every method\n\
                     /// serializes the request, sends it through the [`::mprpc::MprpcChannel`]\n\
                     /// and decodes the response."
            ),
            channel: "::mprpc::MprpcChannel",
            channel_doc: "Where calls go: connection pool, discovery and load balancing.",
            asyncness: "async ",
            wait: ".await",
            call_doc: "with the channel's default deadline.",
            controller_doc: ": its deadline and cancellation apply,\n    \
                                 /// and it records the outcome (`failed()`, `error_text()`).",
            streaming: "::mprpc::Streaming",
            client_requests: "impl ::mprpc::codegen::Stream<Item = {}> + ::core::marker::Send + 'static",
            bidi_requests: "impl ::mprpc::codegen::Stream<Item = {}> + ::core::marker::Send + 'static",
        },
    );
    if !blocking {
        return;
    }
    write_stub(
        s,
        service,
        desc,
        &StubFlavour {
            stub: format!("Blocking{name}Stub"),
            doc: format!(
                "/// Synchronous twin of [`{name}Stub`] for code without an async runtime\n\
                     /// (the course's callers were plain `main` functions)."
            ),
            channel: "::mprpc::BlockingChannel",
            channel_doc: "Channel plus the runtime that drives it.",
            asyncness: "",
            wait: "",
            call_doc: "and blocks until it completes.",
            controller_doc: " and blocks until it completes.",
            streaming: "::mprpc::BlockingStreaming",
            client_requests: "impl ::core::iter::IntoIterator<Item = {}>",
            bidi_requests: "impl ::core::iter::IntoIterator<Item = {}, IntoIter: ::core::marker::Send + 'static>",
        },
    );
}
