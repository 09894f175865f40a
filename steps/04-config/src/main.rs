//! `cargo run -p step-04 [-- -i <configfile>]`: initialises the framework
//! and prints the configuration it loaded. A bad file is reported with its
//! name and the offending key, and the exit status is non-zero.

use std::process::ExitCode;
use step::application::MprpcApplication;

fn main() -> ExitCode {
    // ANCHOR: main
    let app = match MprpcApplication::init(std::env::args_os().skip(1)) {
        Ok(app) => app,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    // ANCHOR_END: main
    let config = app.config();
    // Only the file name: the full path differs from one checkout to the next.
    let file = app.config_path().file_name().unwrap_or_default();
    println!("config file:   {}", file.to_string_lossy());
    println!("rpcserverip:   {}", config.rpcserverip);
    println!("rpcserverport: {}", config.rpcserverport);
    println!("zookeeperip:   {}", config.zookeeperip);
    println!("zookeeperport: {}", config.zookeeperport);
    ExitCode::SUCCESS
}
