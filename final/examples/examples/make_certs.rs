//! Writes a throw-away CA and certificates for trying TLS on one machine:
//! `ca.pem`, `provider.pem` + `provider.key` (for 127.0.0.1 and localhost),
//! `client.pem` + `client.key` (for mutual TLS), into a directory
//! (`target/mprpc-certs` unless given). Made with rcgen, as the tests make
//! theirs; a deployment gets its certificates from its own CA instead.
//!
//! ```text
//! cargo run -p mprpc-examples --example make_certs            # target/mprpc-certs
//! cargo run -p mprpc-examples --example make_certs -- my/dir
//! ```

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("target/mprpc-certs"), PathBuf::from);
    std::fs::create_dir_all(&dir)?;
    let pki = testkit::TestPki::new()?;
    for name in [
        "ca.pem",
        "provider.pem",
        "provider.key",
        "client.pem",
        "client.key",
    ] {
        std::fs::copy(pki.path(name), dir.join(name))?;
    }
    println!(
        "wrote ca.pem, provider.pem, provider.key, client.pem, client.key to {}",
        dir.display()
    );
    Ok(())
}
