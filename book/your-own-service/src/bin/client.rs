//! A caller of `kv.KvStore` on the blocking stub (no async runtime of its
//! own): `cargo run --bin client -- put greeting hello`, then
//! `cargo run --bin client -- get greeting`.

// ANCHOR: client
use mprpc::{BlockingChannel, MprpcConfig};
use my_kv::kv::{BlockingKvStoreStub, GetRequest, PutRequest};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = MprpcConfig::load("my-kv.toml")?;
    // Finds the providers of kv.KvStore the way the config says.
    let stub = BlockingKvStoreStub::new(BlockingChannel::from_config(&config)?);
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [get, key] if get == "get" => {
            let response = stub.get(&GetRequest { key: key.clone() })?;
            if response.found {
                println!("{key} = {}", String::from_utf8_lossy(&response.value));
            } else {
                println!("{key} is not set");
            }
        }
        [put, key, value] if put == "put" => {
            let request = PutRequest {
                key: key.clone(),
                value: value.clone().into_bytes(),
            };
            match stub.put(&request)?.previous {
                Some(old) => println!("{key} was {}", String::from_utf8_lossy(&old)),
                None => println!("{key} set"),
            }
        }
        _ => return Err("usage: client get KEY | client put KEY VALUE".into()),
    }
    Ok(())
}
// ANCHOR_END: client
