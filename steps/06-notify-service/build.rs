//! Generates Rust code for the course's protos at build time: prost writes the
//! message structs, and [`MprpcServiceGenerator`] writes, for each `service`,
//! what protoc's `option cc_generic_services = true` writes for C++.

use prost_build::{Method, Service, ServiceGenerator};
use std::fmt::Write;

// ANCHOR: build
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    prost_build::Config::new()
        .protoc_executable(protoc)
        .service_generator(Box::new(MprpcServiceGenerator))
        .compile_protos(
            &[
                "../../proto/common.proto",
                "../../proto/user.proto",
                "../../proto/friend.proto",
            ],
            &["../../proto"],
        )?;
    Ok(())
}
// ANCHOR_END: build

/// Writes four items per protobuf `service` (shown for `UserServiceRpc`):
///
/// - `USER_SERVICE_RPC_DESCRIPTOR`: the service and method names
///   (C++: `UserServiceRpc::descriptor()`);
/// - `trait UserServiceRpc`: one method per rpc, implemented by the callee
///   (C++: the virtual methods of class `UserServiceRpc`);
/// - `UserServiceRpcServer<T>`: adapts any implementation to the untyped
///   `rpc::Service` a provider can store (C++: `Service::CallMethod`);
/// - `UserServiceRpcStub<C>`: the caller's proxy; every method goes through
///   `RpcChannel::call_method` (C++: `UserServiceRpc_Stub`).
struct MprpcServiceGenerator;

impl ServiceGenerator for MprpcServiceGenerator {
    fn generate(&mut self, service: Service, buf: &mut String) {
        // `write!` into a String cannot fail; the results are ignored.
        let _ = write_descriptor(&service, buf);
        let _ = write_callee_trait(&service, buf);
        let _ = write_server_adapter(&service, buf);
        let _ = write_stub(&service, buf);
    }
}

/// `UserServiceRpc` -> `USER_SERVICE_RPC_DESCRIPTOR`.
fn descriptor_name(service: &Service) -> String {
    let mut out = String::new();
    for (i, c) in service.name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out + "_DESCRIPTOR"
}

/// prost gives ".fixbug.LoginRequest"; descriptors say "fixbug.LoginRequest".
fn full_name(proto_type: &str) -> &str {
    proto_type.trim_start_matches('.')
}

// ANCHOR: descriptor
fn write_descriptor(service: &Service, buf: &mut String) -> std::fmt::Result {
    let name = descriptor_name(service);
    writeln!(
        buf,
        "/// Names of `{}.{}` and its methods.",
        service.package, service.proto_name
    )?;
    writeln!(
        buf,
        "pub static {name}: crate::rpc::ServiceDescriptor = crate::rpc::ServiceDescriptor {{"
    )?;
    writeln!(buf, "    name: {:?},", service.proto_name)?;
    writeln!(
        buf,
        "    full_name: \"{}.{}\",",
        service.package, service.proto_name
    )?;
    writeln!(buf, "    methods: &[")?;
    for (index, method) in service.methods.iter().enumerate() {
        writeln!(buf, "        crate::rpc::MethodDescriptor {{")?;
        writeln!(buf, "            index: {index},")?;
        writeln!(buf, "            service_name: {:?},", service.proto_name)?;
        writeln!(buf, "            name: {:?},", method.proto_name)?;
        writeln!(
            buf,
            "            input_type: {:?},",
            full_name(&method.input_proto_type)
        )?;
        writeln!(
            buf,
            "            output_type: {:?},",
            full_name(&method.output_proto_type)
        )?;
        writeln!(buf, "        }},")?;
    }
    writeln!(buf, "    ],")?;
    writeln!(buf, "}};")
}
// ANCHOR_END: descriptor

fn write_doc(method: &Method, buf: &mut String) -> std::fmt::Result {
    for line in &method.comments.leading {
        writeln!(buf, "    ///{line}")?;
    }
    writeln!(
        buf,
        "    /// `rpc {}({}) returns ({})`",
        method.proto_name, method.input_type, method.output_type
    )
}

// ANCHOR: callee_trait
fn write_callee_trait(service: &Service, buf: &mut String) -> std::fmt::Result {
    writeln!(
        buf,
        "/// The callee side of `{}`: implement it to provide the service.",
        service.proto_name
    )?;
    writeln!(buf, "///")?;
    writeln!(
        buf,
        "/// Returning from a method is the C++ `done->Run()`: the framework then"
    )?;
    writeln!(buf, "/// serializes `response` and sends it back.")?;
    writeln!(buf, "pub trait {}: Send + Sync + 'static {{", service.name)?;
    for method in &service.methods {
        write_doc(method, buf)?;
        writeln!(
            buf,
            "    fn {}(&self, request: &{}, response: &mut {});",
            method.name, method.input_type, method.output_type
        )?;
    }
    writeln!(buf, "}}")
}
// ANCHOR_END: callee_trait

// ANCHOR: server_adapter
fn write_server_adapter(service: &Service, buf: &mut String) -> std::fmt::Result {
    let name = &service.name;
    let descriptor = descriptor_name(service);
    writeln!(
        buf,
        "/// Wraps a [`{name}`] implementation as an untyped [`crate::rpc::Service`]."
    )?;
    writeln!(buf, "#[derive(Debug)]")?;
    writeln!(buf, "pub struct {name}Server<T>(pub T);")?;
    writeln!(
        buf,
        "impl<T: {name}> crate::rpc::Service for {name}Server<T> {{"
    )?;
    writeln!(
        buf,
        "    fn descriptor(&self) -> &'static crate::rpc::ServiceDescriptor {{"
    )?;
    writeln!(buf, "        &{descriptor}")?;
    writeln!(buf, "    }}")?;
    // ANCHOR_END: server_adapter
    // ANCHOR: call_method
    writeln!(buf, "    fn call_method(")?;
    writeln!(buf, "        &self,")?;
    writeln!(buf, "        method: &crate::rpc::MethodDescriptor,")?;
    writeln!(buf, "        request: &[u8],")?;
    writeln!(buf, "    ) -> Result<Vec<u8>, crate::rpc::CallError> {{")?;
    writeln!(buf, "        use prost::Message;")?;
    writeln!(
        buf,
        "        if method.service_name != {descriptor}.name {{"
    )?;
    writeln!(
        buf,
        "            return Err(crate::rpc::CallError::unknown_method(&{descriptor}, method.name));"
    )?;
    writeln!(buf, "        }}")?;
    writeln!(buf, "        match method.index {{")?;
    for (index, method) in service.methods.iter().enumerate() {
        writeln!(buf, "            {index} => {{")?;
        writeln!(
            buf,
            "                let request = {}::decode(request)",
            method.input_type
        )?;
        writeln!(
            buf,
            "                    .map_err(|e| crate::rpc::CallError::bad_request(method, e))?;"
        )?;
        writeln!(
            buf,
            "                let mut response = {}::default();",
            method.output_type
        )?;
        writeln!(
            buf,
            "                self.0.{}(&request, &mut response);",
            method.name
        )?;
        writeln!(buf, "                Ok(response.encode_to_vec())")?;
        writeln!(buf, "            }}")?;
    }
    writeln!(
        buf,
        "            _ => Err(crate::rpc::CallError::unknown_method(&{descriptor}, method.name)),"
    )?;
    writeln!(buf, "        }}")?;
    writeln!(buf, "    }}")?;
    writeln!(buf, "}}")
}
// ANCHOR_END: call_method

// ANCHOR: stub
fn write_stub(service: &Service, buf: &mut String) -> std::fmt::Result {
    let name = &service.name;
    let descriptor = descriptor_name(service);
    writeln!(
        buf,
        "/// The caller's proxy for `{}`: each method hands its",
        service.proto_name
    )?;
    writeln!(
        buf,
        "/// arguments to [`crate::rpc::RpcChannel::call_method`]."
    )?;
    writeln!(buf, "#[derive(Debug)]")?;
    writeln!(buf, "pub struct {name}Stub<C> {{")?;
    writeln!(buf, "    channel: C,")?;
    writeln!(buf, "}}")?;
    writeln!(buf, "impl<C: crate::rpc::RpcChannel> {name}Stub<C> {{")?;
    writeln!(
        buf,
        "    /// A stub that sends every call through `channel`."
    )?;
    writeln!(buf, "    pub fn new(channel: C) -> Self {{")?;
    writeln!(buf, "        Self {{ channel }}")?;
    writeln!(buf, "    }}")?;
    writeln!(buf, "    /// The channel this stub calls through.")?;
    writeln!(buf, "    pub fn channel(&self) -> &C {{")?;
    writeln!(buf, "        &self.channel")?;
    writeln!(buf, "    }}")?;
    for (index, method) in service.methods.iter().enumerate() {
        write_doc(method, buf)?;
        writeln!(buf, "    pub fn {}(", method.name)?;
        writeln!(buf, "        &self,")?;
        writeln!(
            buf,
            "        controller: Option<&mut dyn crate::rpc::RpcController>,"
        )?;
        writeln!(buf, "        request: &{},", method.input_type)?;
        writeln!(buf, "        response: &mut {},", method.output_type)?;
        writeln!(buf, "    ) {{")?;
        writeln!(
            buf,
            "        self.channel.call_method(&{descriptor}.methods[{index}], controller, request, response)"
        )?;
        writeln!(buf, "    }}")?;
    }
    writeln!(buf, "}}")
}
// ANCHOR_END: stub
