//! The type-along loop, for every step: `start` writes a crate that builds
//! and whose tests fail on the holes; with the reference code copied into the
//! holes, `check` passes. Plus the command line's refusals.

use std::path::Path;
use std::process::{Command, Output};

const LEARN: &str = env!("CARGO_BIN_EXE_learn");

/// Runs `learn` with `args`.
fn learn(args: &[&str]) -> Output {
    Command::new(LEARN)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run learn: {e}"))
}

/// Everything the command printed, for assertion messages.
fn printed(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// One hole as `learn list` shows it.
#[derive(Debug)]
struct ListedHole {
    /// `name` or `Type::method`.
    function: String,
    /// `steps/NN-name.md#heading`.
    section: String,
}

/// `(step dir, holes)` for every step, read from `learn list`.
fn steps() -> Vec<(String, Vec<ListedHole>)> {
    let output = learn(&["list"]);
    assert!(output.status.success(), "{}", printed(&output));
    let mut steps: Vec<(String, Vec<ListedHole>)> = Vec::new();
    let mut function = None;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        if !line.starts_with(' ') {
            steps.push((line.to_string(), Vec::new()));
        } else if let Some(section) = line.trim().strip_prefix("see book/src/") {
            let function = function
                .take()
                .expect("a hole's line comes before its section");
            steps
                .last_mut()
                .expect("a hole comes after its step")
                .1
                .push(ListedHole {
                    function,
                    section: section.to_string(),
                });
        } else {
            // `    src/file.rs Type::function: what to write`
            let name = line.split_whitespace().nth(1).expect("file and function");
            function = Some(name.trim_end_matches(':').to_string());
        }
    }
    steps
}

/// mdBook's id for a heading: lower case, spaces to `-`, only letters,
/// digits, `-` and `_` kept.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn every_step_has_holes_that_point_at_existing_sections() {
    let steps = steps();
    assert_eq!(steps.len(), 12, "steps 01-12");
    let book = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../book/src");
    for (step, holes) in &steps {
        assert!(!holes.is_empty(), "{step} has no hole");
        for ListedHole { section, .. } in holes {
            let (file, anchor) = section.split_once('#').expect("file#anchor");
            let text = std::fs::read_to_string(book.join(file))
                .unwrap_or_else(|e| panic!("{section}: {e}"));
            let found = text
                .lines()
                .filter_map(|line| line.strip_prefix('#'))
                .map(|line| slug(line.trim_start_matches('#')))
                .any(|id| id == anchor);
            assert!(found, "{step}: no heading with id {anchor} in {file}");
        }
    }
}

// Two tests, odd and even steps, so the two halves run at once: cargo
// builds one learner crate at a time (the shared target directory is
// locked), but does not hold the lock while a crate's tests run, and the
// steps' tests (real TCP, real ZooKeeper) are most of the time.
#[test]
fn start_check_fail_fill_check_pass_for_the_odd_steps() {
    round_trip(1);
}

#[test]
fn start_check_fail_fill_check_pass_for_the_even_steps() {
    round_trip(0);
}

/// `start`, `check` (fails, naming every hole's section), each hole alone
/// (fails), `fill`, `check` (passes), `solution` (no difference), for every
/// step whose number is `parity` modulo 2.
fn round_trip(parity: usize) {
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let all = steps();
    assert_eq!(all.len(), 12, "learn list shows every step");
    for (step, holes) in all {
        let n: usize = step[..2].parse().expect("a step number");
        if n % 2 != parity {
            continue;
        }
        let number = &step[..2];
        let dir = scratch.path().join(&step);
        let dir = dir.to_str().expect("a UTF-8 path");

        let started = learn(&["start", number, "--dir", dir]);
        assert!(started.status.success(), "{}", printed(&started));

        // The holes build (todo!() has every type) and the tests fail on them.
        let holed = learn(&["check", number, "--dir", dir]);
        assert_fails_naming(&step, &holed, &holes);

        // Each hole alone fails the tests too: a hole whose reference body no
        // test runs could be left as todo!() and still pass the check.
        if holes.len() > 1 {
            for hole in &holes {
                let one = ["fill", number, "--dir", dir, "--keep-hole", &hole.function];
                let kept = learn(&one);
                assert!(kept.status.success(), "{}", printed(&kept));
                let checked = learn(&["check", number, "--dir", dir]);
                assert_fails_naming(&format!("{step} {}", hole.function), &checked, &holes);
            }
        }

        let filled = learn(&["fill", number, "--dir", dir]);
        assert!(filled.status.success(), "{}", printed(&filled));
        let passed = learn(&["check", number, "--dir", dir]);
        assert!(passed.status.success(), "{step}: {}", printed(&passed));

        let solution = learn(&["solution", number, "--dir", dir]);
        assert!(
            printed(&solution).contains("no difference"),
            "{step}: {}",
            printed(&solution)
        );
        // Each step's crate is large once built; the next one starts clean.
        std::fs::remove_dir_all(dir).expect("remove the step's crate");
    }
}

/// `check` failed on the tests (the crate built) and named the section of
/// every hole of the step.
fn assert_fails_naming(what: &str, output: &Output, holes: &[ListedHole]) {
    let text = printed(output);
    assert_eq!(output.status.code(), Some(1), "{what}: {text}");
    assert!(
        text.contains("test(s) failed") && text.contains("reread:"),
        "{what}: the holed crate must build and fail its tests: {text}"
    );
    for hole in holes {
        assert!(
            text.contains(&format!("book/src/{} ({}", hole.section, hole.function)),
            "{what}: check must name {} for {}: {text}",
            hole.section,
            hole.function
        );
    }
}

#[test]
fn refusals_are_clear() {
    let unknown = learn(&["start", "13"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(printed(&unknown).contains("unknown step \"13\""));

    let no_step = learn(&["check"]);
    assert_eq!(no_step.status.code(), Some(2));
    assert!(printed(&no_step).contains("needs a step number"));

    let scratch = tempfile::tempdir().expect("a temporary directory");
    let dir = scratch.path().to_str().expect("a UTF-8 path");
    // The directory exists (tempdir made it): start refuses to overwrite it.
    let exists = learn(&["start", "01", "--dir", dir]);
    assert_eq!(exists.status.code(), Some(1));
    assert!(printed(&exists).contains("already exists"));
    let missing = learn(&["check", "01", "--dir", dir]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(printed(&missing).contains("run `cargo run -q -p learn -- start 01"));

    let forced = learn(&["start", "01", "--dir", dir, "--force"]);
    assert!(forced.status.success(), "{}", printed(&forced));
    let lib = std::fs::read_to_string(scratch.path().join("src/lib.rs")).expect("src/lib.rs");
    assert!(lib.contains("todo!(\"encode `value`"), "{lib}");
    // Only the hole's body changed: the doc comment above it is still there.
    assert!(lib.contains("/// Serializes `value` both ways"), "{lib}");
    let solution = learn(&["solution", "01", "--dir", dir]);
    assert!(printed(&solution).contains("+    let protobuf = value.encode_to_vec();"));
    let no_such_hole = learn(&["fill", "01", "--dir", dir, "--keep-hole", "nothing"]);
    assert_eq!(no_such_hole.status.code(), Some(1));
    assert!(printed(&no_such_hole).contains("step 01 has no hole nothing"));

    // The learner's crate builds with the workspace's profiles (line tables
    // only), not cargo's default full debug info.
    let manifest = std::fs::read_to_string(scratch.path().join("Cargo.toml")).expect("Cargo.toml");
    let manifest: toml::Table = manifest.parse().expect("the written Cargo.toml parses");
    let debug = manifest
        .get("profile")
        .and_then(|p| p.get("dev"))
        .and_then(|d| d.get("debug"))
        .and_then(toml::Value::as_str);
    assert_eq!(debug, Some("line-tables-only"), "{manifest:?}");
}

/// The hole shown in the book's "How to use this book" (included from
/// tests/hole-07.txt) is exactly what `start 07` writes, so the chapter
/// cannot show a stale hole.
#[test]
fn the_books_hole_example_is_what_start_writes() {
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let dir = scratch.path().join("07");
    let dir = dir.to_str().expect("a UTF-8 path");
    let started = learn(&["start", "07", "--dir", dir]);
    assert!(started.status.success(), "{}", printed(&started));
    let wire = std::fs::read_to_string(Path::new(dir).join("src/wire.rs")).expect("src/wire.rs");
    let shown =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hole-07.txt"))
            .expect("tests/hole-07.txt");
    assert!(
        wire.contains(&shown),
        "tests/hole-07.txt is not what start 07 writes; write it again from src/wire.rs:\n{wire}"
    );
}
