//! Messages known at run time: `.proto` files compiled by protox (no
//! protoc), services and methods found by name, requests parsed from JSON
//! and responses printed as JSON (protobuf's JSON mapping, through
//! prost-reflect), and schemas printed back as `.proto` text.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
    SerializeOptions, ServiceDescriptor,
};

/// The `.proto` files of one run, compiled.
#[derive(Debug)]
pub struct Schema {
    /// Every file and its imports.
    pool: DescriptorPool,
    /// From reflection: the services the provider publishes. Its files may
    /// define more (a build script compiles several `.proto` files into one
    /// set); `list` shows only these. `None` for `--proto`: every service.
    published: Option<Vec<String>>,
}

/// One method, with what a call needs to know of it.
#[derive(Debug, Clone)]
pub struct Method {
    /// The service, as compiled.
    pub service: ServiceDescriptor,
    /// The method, as compiled.
    pub method: MethodDescriptor,
}

impl Method {
    /// Fully qualified service name ("fixbug.UserServiceRpc"): what the
    /// framed format and the registry carry.
    pub fn service_full(&self) -> &str {
        self.service.full_name()
    }

    /// Short service name ("UserServiceRpc"): what the course's format
    /// and its ZooKeeper layout carry.
    pub fn service_short(&self) -> &str {
        self.service.name()
    }

    /// The method's name ("Login").
    pub fn name(&self) -> &str {
        self.method.name()
    }

    /// Every method of the service, in `.proto` order (a method's index is
    /// its position, as in generated code).
    pub fn all_methods(&self) -> Vec<String> {
        self.service
            .methods()
            .map(|m| m.name().to_string())
            .collect()
    }

    /// This method's position in [`all_methods`](Self::all_methods).
    pub fn index(&self) -> usize {
        self.method.index()
    }
}

impl Schema {
    /// Compiles `protos`, finding imports in `includes` (each file's own
    /// folder is searched too, after them). A file that does not parse is an
    /// error naming the file and line.
    pub fn load(protos: &[PathBuf], includes: &[PathBuf]) -> Result<Schema, String> {
        if protos.is_empty() {
            return Err("no schema: give the service's .proto file with --proto FILE".into());
        }
        let mut dirs: Vec<PathBuf> = includes.to_vec();
        for file in protos {
            if !file.is_file() {
                return Err(format!("--proto {}: no such file", file.display()));
            }
            let parent = file.parent().filter(|p| !p.as_os_str().is_empty());
            let parent = parent.unwrap_or(Path::new(".")).to_path_buf();
            if !dirs.contains(&parent) {
                dirs.push(parent);
            }
        }
        let mut compiler = protox::Compiler::new(&dirs).map_err(|e| one_line(&e))?;
        compiler.include_imports(true);
        compiler.open_files(protos).map_err(|e| one_line(&e))?;
        Ok(Schema {
            pool: compiler.descriptor_pool(),
            published: None,
        })
    }

    /// The schema of encoded `google.protobuf.FileDescriptorProto`s (what
    /// the reflection service returns), each file once, of a provider that
    /// publishes the services named `published`.
    pub fn from_files(files: &[Vec<u8>], published: Vec<String>) -> Result<Schema, String> {
        // A FileDescriptorSet is its files as field 1, length-delimited:
        // written here as bytes, the pool decodes it and checks every
        // reference between the files.
        let mut set = Vec::new();
        for file in files {
            prost::encoding::bytes::encode(1, file, &mut set);
        }
        let pool = DescriptorPool::decode(set.as_slice()).map_err(|e| e.to_string())?;
        Ok(Schema {
            pool,
            published: Some(published),
        })
    }

    /// Every service of the compiled files (imports included), or with a
    /// schema from reflection, the ones the provider publishes.
    pub fn services(&self) -> Vec<ServiceDescriptor> {
        self.pool
            .services()
            .filter(|s| {
                self.published
                    .as_ref()
                    .is_none_or(|p| p.iter().any(|n| n == s.full_name()))
            })
            .collect()
    }

    /// The service called `name`: its full name, or its short name when
    /// only one service has it.
    pub fn service(&self, name: &str) -> Result<ServiceDescriptor, String> {
        if let Some(s) = self.pool.get_service_by_name(name) {
            return Ok(s);
        }
        let mut short: Vec<ServiceDescriptor> =
            self.pool.services().filter(|s| s.name() == name).collect();
        match short.len() {
            1 => Ok(short.remove(0)),
            0 => {
                let known: Vec<String> = self
                    .pool
                    .services()
                    .map(|s| s.full_name().to_string())
                    .collect();
                Err(format!(
                    "unknown service {name:?}; the schema defines: {}",
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                ))
            }
            _ => {
                let names: Vec<&str> = short.iter().map(|s| s.full_name()).collect();
                Err(format!(
                    "service name {name:?} is ambiguous: {}",
                    names.join(", ")
                ))
            }
        }
    }

    /// `SERVICE/METHOD` (or `SERVICE.METHOD`), the service by full or
    /// short name.
    pub fn method(&self, target: &str) -> Result<Method, String> {
        let (service, method) = split_target(target)?;
        let service = self.service(service)?;
        let Some(found) = service.methods().find(|m| m.name() == method) else {
            let names: Vec<String> = service.methods().map(|m| m.name().to_string()).collect();
            return Err(format!(
                "{} has no method {method:?}; it has: {}",
                service.full_name(),
                names.join(", ")
            ));
        };
        if found.is_client_streaming() || found.is_server_streaming() {
            return Err(format!(
                "{}.{method} streams; mprpc calls unary methods only",
                service.full_name()
            ));
        }
        Ok(Method {
            service,
            method: found,
        })
    }

    /// The message called `name` (full name, or short when unique).
    pub fn message(&self, name: &str) -> Option<MessageDescriptor> {
        self.pool.get_message_by_name(name).or_else(|| {
            let mut short = self.pool.all_messages().filter(|m| m.name() == name);
            match (short.next(), short.next()) {
                (Some(m), None) => Some(m),
                _ => None,
            }
        })
    }
}

/// `("UserServiceRpc", "Login")` from `UserServiceRpc/Login`; the last `.`
/// separates them when there is no `/` (`fixbug.UserServiceRpc.Login`).
pub fn split_target(target: &str) -> Result<(&str, &str), String> {
    let split = target.rsplit_once('/').or_else(|| target.rsplit_once('.'));
    match split {
        Some((s, m)) if !s.is_empty() && !m.is_empty() => Ok((s, m)),
        _ => Err(format!(
            "{target:?} is not SERVICE/METHOD (for example fixbug.UserServiceRpc/Login)"
        )),
    }
}

/// A request of type `desc` from JSON text (protobuf's JSON mapping: field
/// names as in the `.proto` or lowerCamelCase, `bytes` as base64). A field
/// that does not exist, or a value of the wrong type, is an error naming it.
pub fn from_json(desc: &MessageDescriptor, text: &str) -> Result<DynamicMessage, String> {
    let text = if text.trim().is_empty() { "{}" } else { text };
    let mut de = serde_json::Deserializer::from_str(text);
    let message = DynamicMessage::deserialize(desc.clone(), &mut de)
        .map_err(|e| format!("request is not a valid {} in JSON: {e}", desc.full_name()))?;
    de.end()
        .map_err(|e| format!("request is not a valid {} in JSON: {e}", desc.full_name()))?;
    Ok(message)
}

/// A response as pretty JSON, every field shown (defaults included, so a
/// `false` or `0` answer is visible).
pub fn to_json(message: &DynamicMessage) -> Result<String, String> {
    let options = SerializeOptions::new()
        .skip_default_fields(false)
        .stringify_64_bit_integers(false);
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::pretty(&mut out);
    message
        .serialize_with_options(&mut ser, &options)
        .map_err(|e| format!("the response cannot be written as JSON: {e}"))?;
    String::from_utf8(out).map_err(|e| format!("the response's JSON is not UTF-8: {e}"))
}

/// The service as `.proto` text, then every message its methods use.
pub fn describe_service(service: &ServiceDescriptor) -> String {
    let mut out = format!("service {} {{\n", service.full_name());
    for m in service.methods() {
        // `stream` as in the `.proto`, so a streaming method does not read
        // as a unary one.
        let stream = |yes: bool| if yes { "stream " } else { "" };
        let _ = writeln!(
            out,
            "  rpc {}({}{}) returns ({}{});",
            m.name(),
            stream(m.is_client_streaming()),
            m.input().full_name(),
            stream(m.is_server_streaming()),
            m.output().full_name()
        );
    }
    out.push_str("}\n");
    let mut seen = Vec::new();
    for m in service.methods() {
        for desc in [m.input(), m.output()] {
            collect_messages(&desc, &mut seen);
        }
    }
    for desc in &seen {
        out.push('\n');
        out.push_str(&describe_message(desc));
    }
    out
}

/// One method's line, then its two messages (and the messages they use).
pub fn describe_method(method: &Method) -> String {
    let m = &method.method;
    let mut out = format!(
        "rpc {}.{}({}) returns ({});\n",
        method.service_full(),
        m.name(),
        m.input().full_name(),
        m.output().full_name()
    );
    let mut seen = Vec::new();
    collect_messages(&m.input(), &mut seen);
    collect_messages(&m.output(), &mut seen);
    for desc in &seen {
        out.push('\n');
        out.push_str(&describe_message(desc));
    }
    out
}

/// `desc` and every message type its fields use, each once, in order of
/// first use.
fn collect_messages(desc: &MessageDescriptor, seen: &mut Vec<MessageDescriptor>) {
    if seen.iter().any(|s| s.full_name() == desc.full_name()) || desc.is_map_entry() {
        return;
    }
    seen.push(desc.clone());
    for field in desc.fields() {
        if let Kind::Message(inner) = field.kind() {
            if inner.is_map_entry() {
                for f in inner.fields() {
                    if let Kind::Message(value) = f.kind() {
                        collect_messages(&value, seen);
                    }
                }
            } else {
                collect_messages(&inner, seen);
            }
        }
    }
}

/// A message as `.proto` text: `message X { bytes name = 1; … }`.
pub fn describe_message(desc: &MessageDescriptor) -> String {
    let mut out = format!("message {} {{\n", desc.full_name());
    for field in desc.fields() {
        let _ = writeln!(
            out,
            "  {}{} {} = {};",
            label(&field),
            type_name(&field),
            field.name(),
            field.number()
        );
    }
    out.push_str("}\n");
    out
}

/// `repeated ` for lists (maps carry their own syntax), else nothing.
fn label(field: &FieldDescriptor) -> &'static str {
    if field.is_list() { "repeated " } else { "" }
}

/// A field's type as the `.proto` writes it.
fn type_name(field: &FieldDescriptor) -> String {
    if field.is_map() {
        if let Kind::Message(entry) = field.kind() {
            let (k, v) = (entry.map_entry_key_field(), entry.map_entry_value_field());
            return format!("map<{}, {}>", kind_name(&k.kind()), kind_name(&v.kind()));
        }
    }
    kind_name(&field.kind())
}

/// A scalar's keyword, or a message's or enum's full name.
fn kind_name(kind: &Kind) -> String {
    match kind {
        Kind::Double => "double".into(),
        Kind::Float => "float".into(),
        Kind::Int32 => "int32".into(),
        Kind::Int64 => "int64".into(),
        Kind::Uint32 => "uint32".into(),
        Kind::Uint64 => "uint64".into(),
        Kind::Sint32 => "sint32".into(),
        Kind::Sint64 => "sint64".into(),
        Kind::Fixed32 => "fixed32".into(),
        Kind::Fixed64 => "fixed64".into(),
        Kind::Sfixed32 => "sfixed32".into(),
        Kind::Sfixed64 => "sfixed64".into(),
        Kind::Bool => "bool".into(),
        Kind::String => "string".into(),
        Kind::Bytes => "bytes".into(),
        Kind::Message(m) => m.full_name().into(),
        Kind::Enum(e) => e.full_name().into(),
    }
}

/// An error's text on one line. protox's `Debug` form is the one that
/// names the file, line and column of a parse error
/// (`user.proto:3:1: expected …`); its `Display` leaves them out.
fn one_line(e: &protox::Error) -> String {
    format!("{e:?}")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
