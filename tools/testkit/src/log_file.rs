//! Reading the logger's daily files back: the files of a directory, and
//! each line split into its parts.

use std::fs;
use std::path::Path;

use chrono::NaiveDateTime;

/// One line of a log file, split into its three parts.
#[derive(Debug)]
pub struct Line {
    /// The timestamp written at the start of the line.
    pub time: NaiveDateTime,
    /// The word between the brackets.
    pub level: String,
    /// Everything after `] `.
    pub message: String,
}

/// Names of the `*-log.txt` files in `dir`, sorted (so by date).
pub fn log_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("log dir exists")
        .map(|entry| {
            entry
                .expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with("-log.txt"))
        .collect();
    names.sort();
    names
}

/// Parses every line of one file, failing the test on a malformed line.
pub fn read_file(path: &Path) -> Vec<Line> {
    let text = fs::read_to_string(path).expect("log file readable");
    parse(&text)
}

/// Parses lines of the form `2026-11-25 18:05:41.123 [INFO] message`.
pub fn parse(text: &str) -> Vec<Line> {
    text.lines()
        .map(|raw| {
            let (stamp, rest) = raw.split_at_checked(23).expect("line has a timestamp");
            let time = NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S%.3f")
                .unwrap_or_else(|err| panic!("bad timestamp in {raw:?}: {err}"));
            let rest = rest.strip_prefix(" [").expect("level opens with ' ['");
            let (level, message) = rest.split_once("] ").expect("level closes with '] '");
            Line {
                time,
                level: level.to_owned(),
                message: message.to_owned(),
            }
        })
        .collect()
}

/// Every line of every daily file in `dir`, oldest file first.
pub fn read_all(dir: &Path) -> Vec<Line> {
    log_files(dir)
        .iter()
        .flat_map(|name| read_file(&dir.join(name)))
        .collect()
}
