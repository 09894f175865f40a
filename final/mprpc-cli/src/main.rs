//! `mprpc`, the command-line tool (issue #27). This first piece only builds
//! and annotates the bytes of a course-format request (`mprpc dump --course`);
//! `call`, `list`, `describe`, `providers` and `bench` are not written yet.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use prost::Message;

/// Command line of the `mprpc` tool.
#[derive(Debug, Parser)]
#[command(name = "mprpc", about = "Poke at mprpc services from a shell")]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands written so far.
#[derive(Debug, Subcommand)]
enum Command {
    /// Print the bytes of one request in the course's format, annotated.
    Dump {
        /// Speak the course's format (the only one `dump` knows yet).
        #[arg(long)]
        course: bool,
        /// `SERVICE/METHOD`, short names as the course sends them.
        target: String,
        /// The already encoded request message, in hex.
        #[arg(long)]
        args_hex: String,
        /// Print only the plain hex, no annotation.
        #[arg(long)]
        raw: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(reason) => {
            // One line on stderr, as issue #27 asks of every bad input.
            eprintln!("mprpc: {reason}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one command and returns what it prints.
fn run(cli: Cli) -> Result<String, String> {
    match cli.command {
        Command::Dump {
            course,
            target,
            args_hex,
            raw,
        } => {
            if !course {
                return Err("dump: only --course is implemented so far".into());
            }
            let (service, method) = target
                .split_once('/')
                .ok_or_else(|| format!("{target:?} is not SERVICE/METHOD"))?;
            let args = from_hex(&args_hex)?;
            let bytes = mprpc::legacy::encode_bytes(service, method, &args);
            if raw {
                Ok(format!("{}\n", to_hex(&bytes)))
            } else {
                annotate_course(&bytes)
            }
        }
    }
}

/// Annotates a course request field by field, as the wire-formats chapter
/// draws it: `header_size`, the `RpcHeader`, then the args.
fn annotate_course(bytes: &[u8]) -> Result<String, String> {
    let size: [u8; 4] = bytes
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or("request shorter than its 4-byte header_size")?;
    let header_size = u32::from_le_bytes(size) as usize;
    let header_bytes = bytes
        .get(4..4 + header_size)
        .ok_or("header_size runs past the end")?;
    let header = mprpc::legacy::RpcHeader::decode(header_bytes).map_err(|e| e.to_string())?;
    let args = bytes.get(4 + header_size..).unwrap_or_default();
    Ok(format!(
        "{:<40} header_size = {header_size} (u32, little-endian)\n\
         {:<40} RpcHeader {{ service_name: {:?}, method_name: {:?}, args_size: {} }}\n\
         {:<40} args ({} bytes)\n",
        to_hex(&size),
        to_hex(header_bytes),
        String::from_utf8_lossy(&header.service_name),
        String::from_utf8_lossy(&header.method_name),
        header.args_size,
        to_hex(args),
        args.len(),
    ))
}

/// Lower-case hex, two digits a byte, as `proto/captures/` writes it.
fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses hex into bytes, refusing odd lengths and non-hex digits.
fn from_hex(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim();
    if text.len() % 2 != 0 {
        return Err("args hex has an odd number of digits".into());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|d| u8::from_str_radix(d, 16).ok())
                .ok_or_else(|| format!("args hex: bad digits at offset {i}"))
        })
        .collect()
}
