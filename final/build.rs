//! Build script: compiles the course's `.proto` files with prost and, through
//! our own [`ServiceGenerator`], emits the RPC glue for every `service` block.
//!
//! The C++ course relied on `option cc_generic_services = true;`, which makes
//! protoc emit an abstract `UserServiceRpc` class (callee side) and a
//! `UserServiceRpc_Stub` (caller side). prost emits messages only, so this file
//! plays protoc's part for services. Per service it writes:
//!
//! * `<SERVICE>_DESCRIPTOR` — names and indexes of the methods (what the C++
//!   `ServiceDescriptor` / `MethodDescriptor` gave the course's provider);
//! * `trait <Service>` — the callee interface, one `async` method per RPC;
//! * `<Service>Server<T>` — adapts any implementation to the object-safe
//!   `mprpc::Service` trait the provider dispatches through;
//! * `<Service>Stub` — async client stub over `MprpcChannel`;
//! * `Blocking<Service>Stub` — the same calls for synchronous code.

use std::fmt::Write as _;
use std::path::PathBuf;

use prost_build::{Method, Service, ServiceGenerator};

/// Documentation attached to generated messages and fields. The `.proto`
/// files are shared with the step crates and must not change, so the docs
/// that `#![deny(missing_docs)]` asks for are added here instead.
const DOCS: &[(&str, &str)] = &[
    (
        ".fixbug.ResultCode",
        "Application-level outcome carried inside every response (0 = ok).",
    ),
    (
        ".fixbug.ResultCode.errcode",
        "Application error code; 0 means success.",
    ),
    (
        ".fixbug.ResultCode.errmsg",
        "Human-readable error message; empty on success.",
    ),
    (
        ".fixbug.LoginRequest",
        "Arguments of `UserServiceRpc.Login`.",
    ),
    (
        ".fixbug.LoginRequest.name",
        "User name (raw bytes, as in the course).",
    ),
    (
        ".fixbug.LoginRequest.pwd",
        "Password (raw bytes; a real system would never send it in clear).",
    ),
    (".fixbug.LoginResponse", "Result of `UserServiceRpc.Login`."),
    (".fixbug.LoginResponse.result", "Application outcome."),
    (
        ".fixbug.LoginResponse.success",
        "Whether the credentials were accepted.",
    ),
    (
        ".fixbug.RegisterRequest",
        "Arguments of `UserServiceRpc.Register`.",
    ),
    (
        ".fixbug.RegisterRequest.id",
        "Numeric user id chosen by the caller.",
    ),
    (".fixbug.RegisterRequest.name", "User name."),
    (".fixbug.RegisterRequest.pwd", "Password."),
    (
        ".fixbug.RegisterResponse",
        "Result of `UserServiceRpc.Register`.",
    ),
    (".fixbug.RegisterResponse.result", "Application outcome."),
    (
        ".fixbug.RegisterResponse.success",
        "Whether the user was registered.",
    ),
    (
        ".fixbug.GetFriendsListRequest",
        "Arguments of `FriendServiceRpc.GetFriendsList`.",
    ),
    (
        ".fixbug.GetFriendsListRequest.userid",
        "Whose friends to list.",
    ),
    (
        ".fixbug.GetFriendsListResponse",
        "Result of `FriendServiceRpc.GetFriendsList`.",
    ),
    (
        ".fixbug.GetFriendsListResponse.result",
        "Application outcome.",
    ),
    (".fixbug.GetFriendsListResponse.friends", "Friend names."),
    (
        ".mprpc.RpcHeader",
        "Header of the course's (legacy) request frame.",
    ),
];

/// Emits the mprpc glue for each service (see the file comment).
struct MprpcServiceGenerator;

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
    } = flavour;
    let _ = writeln!(
        s,
        "{doc}\n\
         #[derive(Debug, Clone)]\n\
         pub struct {stub} {{\n\
         \x20   /// {channel_doc}\n\
         \x20   channel: {channel},\n\
         }}\n\n\
         impl {stub} {{\n\
         \x20   /// A stub that sends its calls through `channel`.\n\
         \x20   pub fn new(channel: {channel}) -> Self {{\n\
         \x20       Self {{ channel }}\n\
         \x20   }}\n"
    );
    for (i, m) in service.methods.iter().enumerate() {
        s.push_str(&method_docs(
            m,
            "    ",
            &format!("Calls `{}` {call_doc}", m.proto_name),
        ));
        let _ = writeln!(
            s,
            "    pub {asyncness}fn {r}(&self, request: &{inp}) -> ::core::result::Result<{out}, crate::RpcError> {{\n\
             \x20       self.channel.call(None, &{desc}, {i}, request){wait}\n\
             \x20   }}\n\n\
             \x20   /// Calls `{p}` under `controller`{controller_doc}\n\
             \x20   pub {asyncness}fn {r}_with(&self, controller: &crate::MprpcController, request: &{inp}) -> ::core::result::Result<{out}, crate::RpcError> {{\n\
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
        let full = format!("{}.{}", service.package, proto);
        let desc = format!("{}_DESCRIPTOR", shouty(name));
        let mut s = String::new();

        // Descriptor: the table the provider builds its dispatch map from.
        let _ = writeln!(
            s,
            "/// Names of `{full}` and its methods, in `.proto` order (the index is the\n\
             /// method's number in dispatch).\n\
             pub static {desc}: crate::ServiceDescriptor = crate::ServiceDescriptor {{\n\
             \x20   name: \"{proto}\",\n\
             \x20   full_name: \"{full}\",\n\
             \x20   methods: &["
        );
        for m in &service.methods {
            let _ = writeln!(s, "        \"{}\",", m.proto_name);
        }
        let _ = writeln!(s, "    ],\n}};\n");

        // Callee trait.
        let _ = writeln!(
            s,
            "/// Callee side of `{full}`: implement this, wrap it in [`{name}Server`]\n\
             /// and hand it to `RpcProvider::notify_service`.\n\
             ///\n\
             /// Methods return `impl Future + Send` so implementations may simply write\n\
             /// `async fn`; the `Send` bound lets the provider run them on any worker.\n\
             pub trait {name}: Send + Sync + 'static {{"
        );
        for m in &service.methods {
            s.push_str(&method_docs(
                m,
                "    ",
                &format!("Handles `{}`.", m.proto_name),
            ));
            let _ = writeln!(
                s,
                "    fn {}(&self, ctx: crate::CallContext, request: {}) -> impl ::core::future::Future<Output = ::core::result::Result<{}, crate::Status>> + Send;",
                m.name, m.input_type, m.output_type
            );
        }
        let _ = writeln!(s, "}}\n");

        // Server adapter.
        let _ = writeln!(
            s,
            "/// Adapts a [`{name}`] implementation to the object-safe [`crate::Service`]\n\
             /// the provider dispatches through (the course's `google::protobuf::Service`).\n\
             #[derive(Debug)]\n\
             pub struct {name}Server<T> {{\n\
             \x20   /// The implementation; shared with every in-flight call.\n\
             \x20   inner: ::std::sync::Arc<T>,\n\
             }}\n\n\
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
             impl<T: {name}> crate::Service for {name}Server<T> {{\n\
             \x20   fn descriptor(&self) -> &'static crate::ServiceDescriptor {{\n\
             \x20       &{desc}\n\
             \x20   }}\n\n\
             \x20   fn call(&self, method: usize, ctx: crate::CallContext, request: ::bytes::Bytes) -> crate::ResponseFuture {{\n\
             \x20       match method {{"
        );
        for (i, m) in service.methods.iter().enumerate() {
            let _ = writeln!(
                s,
                "            {i} => {{\n\
                 \x20               let request = match <{input} as ::prost::Message>::decode(request) {{\n\
                 \x20                   ::core::result::Result::Ok(request) => request,\n\
                 \x20                   ::core::result::Result::Err(err) => return crate::service::bad_request(\"{proto}.{mname}\", &err),\n\
                 \x20               }};\n\
                 \x20               let inner = ::std::sync::Arc::clone(&self.inner);\n\
                 \x20               ::std::boxed::Box::pin(async move {{\n\
                 \x20                   inner.{rname}(ctx, request).await.map(|response| ::prost::Message::encode_to_vec(&response))\n\
                 \x20               }})\n\
                 \x20           }}",
                input = m.input_type,
                mname = m.proto_name,
                rname = m.name,
            );
        }
        let _ = writeln!(
            s,
            "            other => crate::service::unknown_method(&{desc}, other),\n        }}\n    }}\n}}\n"
        );

        // Async stub, then its blocking twin: the same text but for these parts.
        write_stub(
            &mut s,
            &service,
            &desc,
            &StubFlavour {
                stub: format!("{name}Stub"),
                doc: format!(
                    "/// Caller side of `{full}` (the course's `{proto}_Stub`): every method\n\
                     /// serializes the request, sends it through the [`crate::MprpcChannel`]\n\
                     /// and decodes the response."
                ),
                channel: "crate::MprpcChannel",
                channel_doc: "Where calls go: connection pool, discovery and load balancing.",
                asyncness: "async ",
                wait: ".await",
                call_doc: "with the channel's default deadline.",
                controller_doc: ": its deadline and cancellation apply,\n    \
                                 /// and it records the outcome (`failed()`, `error_text()`).",
            },
        );
        write_stub(
            &mut s,
            &service,
            &desc,
            &StubFlavour {
                stub: format!("Blocking{name}Stub"),
                doc: format!(
                    "/// Synchronous twin of [`{name}Stub`] for code without an async runtime\n\
                     /// (the course's callers were plain `main` functions)."
                ),
                channel: "crate::BlockingChannel",
                channel_doc: "Channel plus the runtime that drives it.",
                asyncness: "",
                wait: "",
                call_doc: "and blocks until it completes.",
                controller_doc: " and blocks until it completes.",
            },
        );
        buf.push_str(&s);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_dir = manifest.join("..").join("proto");
    let files = ["user.proto", "friend.proto", "rpcheader.proto"].map(|f| proto_dir.join(f));
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        proto_dir.join("common.proto").display()
    );

    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    config.service_generator(Box::new(MprpcServiceGenerator));
    for (path, doc) in DOCS {
        let attr = format!("#[doc = {doc:?}]");
        if path.matches('.').count() > 2 {
            config.field_attribute(path, attr);
        } else {
            config.type_attribute(path, attr);
        }
    }
    config.compile_protos(&files, &[proto_dir])?;
    Ok(())
}
