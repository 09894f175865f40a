//! Writing the learner's crate: the step's files, a standalone `Cargo.toml`,
//! the protos, and the holes.

use crate::holes::{Hole, Step};
use std::fs;
use std::path::{Path, PathBuf};
use syn::visit::Visit;

/// The repository this tool was built in (tools/learn is two levels down).
pub fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .and_then(Path::parent)
        .map_or_else(|| here.to_path_buf(), Path::to_path_buf)
}

/// The reference step's directory, `steps/NN-name`.
pub fn step_dir(step: &Step) -> PathBuf {
    repo_root().join("steps").join(step.dir)
}

/// Where every learner crate builds: `$CARGO_TARGET_DIR/learn`, else
/// `target/learn` in the repository.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("learn"),
        None => repo_root().join("target").join("learn"),
    }
}

/// `context: error` for an I/O error on `path`.
fn io_error(context: &str, path: &Path, error: std::io::Error) -> String {
    format!("{context} {}: {error}", path.display())
}

/// Reads a file as text, the error naming the file.
fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| io_error("cannot read", path, e))
}

/// Writes a file, the error naming the file.
fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| io_error("cannot create", parent, e))?;
    }
    fs::write(path, text).map_err(|e| io_error("cannot write", path, e))
}

/// Copies the directory `from` into `to`, leaving out `Cargo.toml` at the
/// top (it is written anew) and any `target/`.
fn copy_tree(from: &Path, to: &Path, top: bool) -> Result<(), String> {
    fs::create_dir_all(to).map_err(|e| io_error("cannot create", to, e))?;
    let entries = fs::read_dir(from).map_err(|e| io_error("cannot list", from, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_error("cannot list", from, e))?;
        let name = entry.file_name();
        if top && (name == "Cargo.toml" || name == "target") {
            continue;
        }
        let source = entry.path();
        let dest = to.join(&name);
        if source.is_dir() {
            copy_tree(&source, &dest, false)?;
        } else {
            fs::copy(&source, &dest).map_err(|e| io_error("cannot copy", &source, e))?;
        }
    }
    Ok(())
}

/// Writes step `step` into `dir` as a crate of its own, holes cut.
pub fn write_crate(step: &Step, dir: &Path, force: bool) -> Result<(), String> {
    let reference = step_dir(step);
    // Every hole is found before anything is written, so a manifest that no
    // longer matches the sources leaves no half-written directory behind.
    let mut holed = Vec::new();
    for file in hole_files(step) {
        let text = read(&reference.join(file))?;
        let holes: Vec<&Hole> = step.holes.iter().filter(|h| h.file == file).collect();
        holed.push((file, cut_holes(&text, &holes)?));
    }
    let manifest = standalone_manifest(step)?;
    if force && dir.exists() {
        fs::remove_dir_all(dir).map_err(|e| io_error("cannot remove", dir, e))?;
    }
    copy_tree(&reference, dir, true)?;
    write(&dir.join("Cargo.toml"), &manifest)?;
    // The protos the build script reads, next to it instead of ../../proto.
    let protos = repo_root().join("proto");
    let entries = fs::read_dir(&protos).map_err(|e| io_error("cannot list", &protos, e))?;
    for entry in entries {
        let path = entry
            .map_err(|e| io_error("cannot list", &protos, e))?
            .path();
        if path.extension().is_some_and(|ext| ext == "proto") {
            if let Some(name) = path.file_name() {
                let dest = dir.join("proto").join(name);
                write(&dest, &read(&path)?)?;
            }
        }
    }
    let build = dir.join("build.rs");
    if build.is_file() {
        write(&build, &read(&build)?.replace("../../proto", "proto"))?;
    }
    // The lock file of the repository, so the learner builds the versions
    // the book was tested with.
    let lock = repo_root().join("Cargo.lock");
    write(&dir.join("Cargo.lock"), &read(&lock)?)?;
    for (file, text) in holed {
        write(&dir.join(file), &text)?;
    }
    Ok(())
}

/// The files with holes in them, each once.
fn hole_files(step: &Step) -> Vec<&'static str> {
    let mut files: Vec<_> = step.holes.iter().map(|h| h.file).collect();
    files.dedup();
    files
}

/// Copies the reference version of every file with a hole into `dir`; with
/// `keep`, the hole of that one function stays cut (the round trip test
/// proves so that each hole alone fails the step's tests).
pub fn fill(step: &Step, dir: &Path, keep: Option<&str>) -> Result<(), String> {
    if let Some(function) = keep {
        if !step.holes.iter().any(|h| h.function == function) {
            return Err(format!("step {} has no hole {function}", step.number));
        }
    }
    for file in hole_files(step) {
        let text = read(&step_dir(step).join(file))?;
        let kept: Vec<&Hole> = step
            .holes
            .iter()
            .filter(|h| h.file == file && Some(h.function) == keep)
            .collect();
        let text = if kept.is_empty() {
            text
        } else {
            cut_holes(&text, &kept)?
        };
        write(&dir.join(file), &text)?;
    }
    Ok(())
}

/// Finds the body of `name` or `Type::method` in a parsed file.
#[derive(Debug)]
struct FindBody<'a> {
    /// `Type` for a method, `None` for a free function.
    self_type: Option<&'a str>,
    /// The function's name.
    name: &'a str,
    /// Every matching body's span (one expected): free functions and
    /// methods of inherent `impl Type` blocks.
    found: Vec<proc_macro2::Span>,
    /// Matching methods of `impl Trait for Type` blocks, used only when no
    /// inherent method matches (`UserService::login` is the inherent one).
    found_in_traits: Vec<proc_macro2::Span>,
}

impl<'ast> Visit<'ast> for FindBody<'_> {
    fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
        if self.self_type.is_none() && item.sig.ident == self.name {
            self.found.push(brace_span(&item.block));
        }
        syn::visit::visit_item_fn(self, item);
    }

    fn visit_item_impl(&mut self, item: &'ast syn::ItemImpl) {
        let type_name = match &*item.self_ty {
            syn::Type::Path(path) => path.path.segments.last().map(|s| s.ident.to_string()),
            _ => None,
        };
        if let (Some(wanted), Some(actual)) = (self.self_type, type_name) {
            if actual == wanted {
                for member in &item.items {
                    if let syn::ImplItem::Fn(function) = member {
                        if function.sig.ident == self.name {
                            let found = if item.trait_.is_some() {
                                &mut self.found_in_traits
                            } else {
                                &mut self.found
                            };
                            found.push(brace_span(&function.block));
                        }
                    }
                }
            }
        }
        syn::visit::visit_item_impl(self, item);
    }
}

/// The span of a block from its `{` to its `}`.
fn brace_span(block: &syn::Block) -> proc_macro2::Span {
    block.brace_token.span.join()
}

/// The byte offset of a span location (1-based line, column in chars).
fn offset(text: &str, at: proc_macro2::LineColumn) -> Option<usize> {
    let line_start = if at.line <= 1 {
        0
    } else {
        text.match_indices('\n').nth(at.line - 2)?.0 + 1
    };
    let line = &text[line_start..];
    let in_line = line
        .char_indices()
        .nth(at.column)
        .map_or(line.len(), |(i, _)| i);
    Some(line_start + in_line)
}

/// `text` with the bodies of `holes` replaced by `todo!("…")`.
pub fn cut_holes(text: &str, holes: &[&Hole]) -> Result<String, String> {
    let file = syn::parse_file(text).map_err(|e| format!("cannot parse: {e}"))?;
    let mut ranges = Vec::new();
    for hole in holes {
        let (self_type, name) = match hole.function.rsplit_once("::") {
            Some((ty, name)) => (Some(ty), name),
            None => (None, hole.function),
        };
        let mut finder = FindBody {
            self_type,
            name,
            found: Vec::new(),
            found_in_traits: Vec::new(),
        };
        finder.visit_file(&file);
        if finder.found.is_empty() {
            finder.found = finder.found_in_traits;
        }
        let [span] = finder.found[..] else {
            return Err(format!(
                "{}: expected one function {}, found {}",
                hole.file,
                hole.function,
                finder.found.len()
            ));
        };
        let start = offset(text, span.start());
        let end = offset(text, span.end());
        let (Some(start), Some(end)) = (start, end) else {
            return Err(format!("{}: {} has no position", hole.file, hole.function));
        };
        ranges.push((start, end, hole));
    }
    // From the end backwards, so earlier offsets stay valid.
    ranges.sort_by_key(|&(start, _, _)| std::cmp::Reverse(start));
    let mut out = text.to_string();
    for (start, end, hole) in ranges {
        let line_start = text[..end].rfind('\n').map_or(0, |i| i + 1);
        let indent: String = text[line_start..]
            .chars()
            .take_while(|c| *c == ' ')
            .collect();
        // todo!'s message is a format string: braces in the task are doubled.
        let message = format!("{} — see book/src/{}", hole.task, hole.section)
            .replace('{', "{{")
            .replace('}', "}}");
        let body = format!(
            "{{\n{indent}    // TODO(learn): write this function.\n{indent}    todo!({message:?})\n{indent}}}"
        );
        out.replace_range(start..end, &body);
    }
    Ok(out)
}

/// The step's `Cargo.toml` with everything it inherits from the workspace
/// written out, so it builds as a workspace of its own.
pub fn standalone_manifest(step: &Step) -> Result<String, String> {
    let root_path = repo_root().join("Cargo.toml");
    let root: toml::Table = read(&root_path)?
        .parse()
        .map_err(|e| format!("{}: {e}", root_path.display()))?;
    let step_path = step_dir(step).join("Cargo.toml");
    let mut manifest: toml::Table = read(&step_path)?
        .parse()
        .map_err(|e| format!("{}: {e}", step_path.display()))?;
    let workspace = root
        .get("workspace")
        .and_then(toml::Value::as_table)
        .ok_or("the repository's Cargo.toml has no [workspace]")?;
    let empty = toml::Table::new();
    let table = |key: &str| {
        workspace
            .get(key)
            .and_then(toml::Value::as_table)
            .unwrap_or(&empty)
    };
    let (package_fields, dependencies) = (table("package"), table("dependencies"));

    if let Some(package) = manifest
        .get_mut("package")
        .and_then(toml::Value::as_table_mut)
    {
        for (key, value) in package.iter_mut() {
            if inherits(value) {
                *value = package_fields
                    .get(key)
                    .cloned()
                    .ok_or(format!("workspace.package has no {key}"))?;
            }
        }
    }
    for kind in ["dependencies", "build-dependencies", "dev-dependencies"] {
        let Some(deps) = manifest.get_mut(kind).and_then(toml::Value::as_table_mut) else {
            continue;
        };
        for (name, value) in deps.iter_mut() {
            if inherits(value) {
                *value = resolve_dependency(name, value, dependencies.get(name))?;
            }
        }
    }
    if manifest.get("lints").is_some_and(inherits) {
        manifest.insert("lints".into(), toml::Value::Table(table("lints").clone()));
    }
    // An empty [workspace]: the crate is its own workspace, even when written
    // inside this repository (learn/NN-name).
    manifest.insert("workspace".into(), toml::Value::Table(toml::Table::new()));
    // The workspace's profiles (line tables only, no debug info for the
    // dependencies): a crate of its own would otherwise build with full debug
    // info, slower and several times larger in target/learn.
    if let Some(profile) = root.get("profile") {
        manifest.insert("profile".into(), profile.clone());
    }
    let text = toml::to_string(&manifest).map_err(|e| format!("cannot write Cargo.toml: {e}"))?;
    Ok(format!(
        "# Written by `cargo run -p learn -- start {}` from steps/{}/Cargo.toml,\n\
         # with the versions of the repository's workspace written out.\n{text}",
        step.number, step.dir
    ))
}

/// `{ workspace = true, … }`.
fn inherits(value: &toml::Value) -> bool {
    value
        .get("workspace")
        .and_then(toml::Value::as_bool)
        .unwrap_or(false)
}

/// A `dep.workspace = true` entry made concrete: the workspace's entry, its
/// path made absolute, the step's own `features` and `optional` added.
fn resolve_dependency(
    name: &str,
    local: &toml::Value,
    shared: Option<&toml::Value>,
) -> Result<toml::Value, String> {
    let mut spec = match shared {
        Some(toml::Value::String(version)) => {
            let mut table = toml::Table::new();
            table.insert("version".into(), toml::Value::String(version.clone()));
            table
        }
        Some(toml::Value::Table(table)) => table.clone(),
        _ => return Err(format!("workspace.dependencies has no {name}")),
    };
    if let Some(toml::Value::String(path)) = spec.get("path") {
        let absolute = repo_root().join(path);
        spec.insert(
            "path".into(),
            toml::Value::String(absolute.to_string_lossy().into_owned()),
        );
    }
    if let Some(toml::Value::Array(extra)) = local.get("features") {
        let mut features = match spec.get("features") {
            Some(toml::Value::Array(features)) => features.clone(),
            _ => Vec::new(),
        };
        features.extend(extra.iter().cloned());
        spec.insert("features".into(), toml::Value::Array(features));
    }
    if let Some(optional) = local.get("optional") {
        spec.insert("optional".into(), optional.clone());
    }
    Ok(toml::Value::Table(spec))
}
