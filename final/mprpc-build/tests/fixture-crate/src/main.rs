// A user's program on mprpc: its own .proto files, its own main. Prints one
// line per check and exits non-zero at the first failure.
use std::time::Duration;

use mprpc::{BlockingChannel, CallContext, MprpcChannel, MprpcConfig, MprpcController, RpcProvider, Status};

mod kv {
    mprpc::include_proto!("kv");
}
mod backup {
    mprpc::include_proto!("backup");
}

struct Store(std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>);

impl kv::KvStore for Store {
    async fn get(&self, _ctx: CallContext, req: kv::GetRequest) -> Result<kv::GetResponse, Status> {
        let map = self.0.lock().map_err(|_| Status::handler("poisoned"))?;
        let value = map.get(&req.key).cloned();
        Ok(kv::GetResponse { found: value.is_some(), value: value.unwrap_or_default() })
    }
    async fn put(&self, _ctx: CallContext, req: kv::PutRequest) -> Result<kv::PutResponse, Status> {
        if req.key.is_empty() {
            return Err(Status::handler("empty key"));
        }
        let mut map = self.0.lock().map_err(|_| Status::handler("poisoned"))?;
        Ok(kv::PutResponse { previous: map.insert(req.key, req.value) })
    }
}

struct Backup;

impl backup::KvStore for Backup {
    async fn get(&self, _ctx: CallContext, req: backup::GetRequest) -> Result<backup::GetResponse, Status> {
        Ok(backup::GetResponse { from: format!("backup:{}", req.key) })
    }
}

fn check(what: &str, ok: bool) {
    if ok {
        println!("ok: {what}");
    } else {
        println!("FAILED: {what}");
        std::process::exit(1);
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The descriptors carry both names.
    check("full name kv.KvStore", kv::KV_STORE_DESCRIPTOR.full_name == "kv.KvStore");
    check("short name KvStore", kv::KV_STORE_DESCRIPTOR.name == "KvStore");
    // And the schema, for reflection: protoc's descriptor set of the files.
    let set = kv::KV_STORE_DESCRIPTOR.file_descriptor_set;
    let names_file = |name: &[u8]| set.windows(name.len()).any(|w| w == name);
    check("descriptor set embedded", names_file(b"kv.proto") && names_file(b"GetRequest"));

    let mut config = MprpcConfig::default();
    config.rpcserverport = 0;
    let mut provider = RpcProvider::new(config);
    provider.notify_service(kv::KvStoreServer::new(Store(Default::default())));
    provider.notify_service(backup::KvStoreServer::new(Backup));
    let running = provider.start().await?;
    let addr = running.local_addr().to_string();

    // Async stub.
    let stub = kv::KvStoreStub::new(MprpcChannel::direct(&addr));
    let put = stub.put(&kv::PutRequest { key: "a".into(), value: b"1".to_vec() }).await?;
    check("async put", put.previous.is_none());
    let got = stub.get(&kv::GetRequest { key: "a".into() }).await?;
    check("async get", got.found && got.value == b"1");
    let controller = MprpcController::with_timeout(Duration::from_secs(2));
    let refused = stub.put_with(&controller, &kv::PutRequest { key: String::new(), value: Vec::new() }).await;
    check(
        "handler status reaches the caller",
        matches!(&refused, Err(s) if s.code == mprpc::ErrorCode::HandlerError && s.message.contains("empty key"))
            && controller.failed(),
    );

    // Same short name, other package: its own service.
    let other = backup::KvStoreStub::new(MprpcChannel::direct(&addr));
    let from = other.get(&backup::GetRequest { key: "a".into() }).await?.from;
    check("backup.KvStore is not kv.KvStore", from == "backup:a");

    // Blocking stub, from a thread without a runtime; requests by reference.
    let blocking_addr = addr.clone();
    let value = std::thread::spawn(move || -> Result<Vec<u8>, String> {
        let stub = kv::BlockingKvStoreStub::new(BlockingChannel::direct(&blocking_addr).map_err(|e| e.to_string())?);
        let request = kv::GetRequest { key: "a".into() };
        let first = stub.get(&request).map_err(|e| e.to_string())?;
        let again = stub.get(&request).map_err(|e| e.to_string())?;
        Ok(if first == again { first.value } else { Vec::new() })
    })
    .join()
    .map_err(|_| "blocking thread panicked")??;
    check("blocking get", value == b"1");

    // The course's format carries no package: an ambiguous short name is
    // refused (the provider closes without a reply; "a" would be found).
    let legacy = mprpc::legacy::call::<_, kv::GetResponse>(&addr, "KvStore", "Get", &kv::GetRequest { key: "a".into() }, 4096).await;
    check("ambiguous short name refused in the course format", !matches!(legacy, Ok(r) if r.found));

    running.shutdown().await?;
    println!("all checks passed");
    Ok(())
}
