#!/usr/bin/env python3
"""The shape of final/mprpc/src, checked (issue #23).

Two rules, both run by tools/test-all.sh:

* **No source file over 800 lines** (a file's `#[cfg(test)]` module is not
  counted: unit tests may be as long as they need).
* **No import circles between modules.** Every `crate::…`, `super::…` and
  `self::…` path in a file is resolved to the module it names. A path from
  module A to module B is an edge between the two *siblings* that contain
  them under their common parent (`server::accept` → `wire::frame` is the
  edge `server` → `wire`; `server::accept` → `server::connection` is
  `accept` → `connection` inside `server`). A path between a module and one
  of its own ancestors is not an edge: a folder's `mod.rs` re-exporting its
  children, and children using the folder's shared types, is how a Rust
  folder is built. Names re-exported by `lib.rs` (`crate::Status`) count as
  the module they come from (`error`). Every cycle in any sibling graph is
  printed with the lines that make it, and fails the check.

This is the "equivalent check" the issue allows in place of
`cargo modules dependencies --acyclic`: that tool links rust-analyzer and takes
longer to build than the whole test run, for a question that paths answer.
What it does not see: a glob import (`use crate::wire::*`) counts as the
module it names, and a path written through a re-export in a folder's
`mod.rs` counts as that folder, so a circle hidden behind one is caught at
the folder's level, not below it.

    python3 tools/check_modules.py              # final/mprpc/src
    python3 tools/check_modules.py --self-test  # proves it fails on a circle
    python3 tools/check_modules.py DIR          # any crate's src/
"""

import os
import re
import shutil
import sys
import tempfile

MAX_LINES = 800
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DEFAULT_SRC = os.path.join(ROOT, "final", "mprpc", "src")

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip_comments_and_strings(text):
    """The code with comments, strings and chars blanked (newlines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:]) and (i == 0 or not re.match(r"\w", text[i - 1])):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            end = n if end < 0 else end + 1 + len(hashes)
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(re.sub(r"[^\n]", " ", text[i : j + 1]))
            i = j + 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:]):
            m = re.match(r"'(\\.|[^\\'])'", text[i:])
            out.append(" " * len(m.group(0)))
            i += len(m.group(0))
        else:
            out.append(c)
            i += 1
    return "".join(out)


def test_module_span(code):
    """(start, end) offsets of `#[cfg(test)] mod … { … }`, or None."""
    m = re.search(r"#\[cfg\(test\)\]\s*(pub\s+)?mod\s+" + IDENT + r"\s*\{", code)
    if not m:
        return None
    depth, j = 1, m.end()
    while j < len(code) and depth:
        depth += {"{": 1, "}": -1}.get(code[j], 0)
        j += 1
    return m.start(), j


def module_of_file(src, path):
    """`lib.rs` → (), `server/mod.rs` → ('server',), `wire/frame.rs` → ('wire', 'frame')."""
    rel = os.path.relpath(path, src)[: -len(".rs")].split(os.sep)
    if rel == ["lib"]:
        return ()
    if rel[-1] == "mod":
        rel = rel[:-1]
    return tuple(rel)


def paths_in(code):
    """Every (path, offset) starting with crate/super/self, use-groups expanded."""
    found = []
    for m in re.finditer(r"\b(crate|super|self)\s*::", code):
        start = m.start()
        found.extend((p, start) for p in expand(code, m.start()))
    return found


def expand(code, i):
    """The paths of the path expression starting at i (`a::{b, c::d}` → two)."""
    prefix = []
    j = i
    while True:
        m = re.compile(r"\s*(" + IDENT + r")\s*").match(code, j)
        if not m:
            break
        prefix.append(m.group(1))
        j = m.end()
        if code.startswith("::", j):
            j += 2
            k = len(code) - len(code[j:].lstrip())
            if code.startswith("{", k):
                return [tuple(prefix) + rest for rest in group(code, k)]
            continue
        break
    return [tuple(prefix)]


def group(code, k):
    """The paths inside the brace group at k, each as a tuple of names."""
    depth, j, items, start = 1, k + 1, [], k + 1
    while j < len(code) and depth:
        if code[j] == "{":
            depth += 1
        elif code[j] == "}":
            depth -= 1
            if depth == 0:
                items.append(code[start:j])
        elif code[j] == "," and depth == 1:
            items.append(code[start:j])
            start = j + 1
        j += 1
    out = []
    for item in items:
        item = item.strip()
        if not item or item == "*" or re.match(r"self\b", item):
            out.append(())  # the group's prefix itself
        else:
            out.extend(expand(item, 0))
    return out


def root_reexports(src):
    """Names `lib.rs` re-exports with `pub use module::…`, mapped to the module."""
    text = strip_comments_and_strings(open(os.path.join(src, "lib.rs"), encoding="utf-8").read())
    names = {}
    for m in re.finditer(r"pub\s+use\s+", text):
        for path in expand(text, m.end()):
            if len(path) >= 2 and path[0] not in ("crate", "super", "self"):
                names[path[-1]] = tuple(path[:-1])
            elif len(path) >= 3 and path[0] == "crate":
                names[path[-1]] = tuple(path[1:-1])
    return names


def inline_modules(src):
    """`pub mod name { … }` blocks in lib.rs (the old paths kept as re-exports)."""
    text = strip_comments_and_strings(open(os.path.join(src, "lib.rs"), encoding="utf-8").read())
    return {(m.group(1),) for m in re.finditer(r"\bpub\s+mod\s+(" + IDENT + r")\s*\{", text)}


def resolve(path, here, modules, reexports):
    """The module a path names, as a tuple, or None for an outside name."""
    if not path:
        return None
    head, rest = path[0], list(path[1:])
    if head == "crate":
        base = ()
    elif head == "self":
        base = here
    elif head == "super":
        base = here[:-1]
        while rest and rest[0] == "super":
            base, rest = base[:-1], rest[1:]
    else:
        return None
    mod = base
    for name in rest:
        if mod + (name,) in modules:
            mod = mod + (name,)
        else:
            if mod == () and name in reexports:
                target = reexports[name]
                while target and target not in modules:
                    target = target[:-1]
                return target
            break
    return mod


def edges(src, modules, reexports, files):
    """{parent: {(a, b): [where, …]}} for every cross-sibling path."""
    graph = {}
    for path in files:
        here = module_of_file(src, path)
        text = open(path, encoding="utf-8").read()
        code = strip_comments_and_strings(text)
        for p, offset in paths_in(code):
            target = resolve(p, here, modules, reexports)
            if target is None:
                continue
            common = 0
            while common < min(len(here), len(target)) and here[common] == target[common]:
                common += 1
            if common == len(here) or common == len(target):
                continue  # ancestor or descendant: not an edge
            parent = here[:common]
            a, b = here[common], target[common]
            line = text.count("\n", 0, offset) + 1
            where = f"{os.path.relpath(path, src)}:{line}: {'::'.join(p)}"
            graph.setdefault(parent, {}).setdefault((a, b), []).append(where)
    return graph


def cycles(pairs):
    """Strongly connected components with more than one member (Tarjan)."""
    nodes = sorted({a for a, _ in pairs} | {b for _, b in pairs})
    succ = {n: sorted({b for a, b in pairs if a == n}) for n in nodes}
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in succ[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for n in nodes:
        if n not in index:
            visit(n)
    return out


def check(src):
    """Prints every problem in src; returns how many there are."""
    files = sorted(
        os.path.join(d, f) for d, _, fs in os.walk(src) for f in fs if f.endswith(".rs")
    )
    modules = {module_of_file(src, f) for f in files} | inline_modules(src)
    problems = 0
    for f in files:
        text = open(f, encoding="utf-8").read()
        span = test_module_span(strip_comments_and_strings(text))
        counted = text if span is None else text[: span[0]] + text[span[1] :]
        lines = counted.count("\n")
        if lines > MAX_LINES:
            print(f"{os.path.relpath(f, src)}: {lines} lines (without its tests); at most {MAX_LINES}")
            problems += 1
    graph = edges(src, modules, root_reexports(src), files)
    for parent, pairs in sorted(graph.items()):
        for comp in cycles(pairs):
            scope = "::".join(("crate",) + parent)
            print(f"import circle in {scope}: {' <-> '.join(comp)}")
            for (a, b), wheres in sorted(pairs.items()):
                if a in comp and b in comp:
                    print(f"  {a} -> {b}:")
                    for w in wheres[:3]:
                        print(f"    {w}")
                    if len(wheres) > 3:
                        print(f"    … and {len(wheres) - 3} more")
            problems += 1
    return problems


def self_test():
    """The check passes on a tree without circles and fails on each kind of one."""
    base = tempfile.mkdtemp(prefix="check_modules.")
    try:
        def tree(files):
            d = tempfile.mkdtemp(dir=base)
            for name, body in files.items():
                os.makedirs(os.path.dirname(os.path.join(d, name)), exist_ok=True)
                with open(os.path.join(d, name), "w", encoding="utf-8") as out:
                    out.write(body)
            return d

        lib = "mod a;\nmod b;\nmod c;\npub use a::Thing;\n"
        clean = tree({
            "lib.rs": lib,
            "a.rs": "use crate::b::B;\npub struct Thing;\n",
            "b.rs": "use crate::c::C;\npub struct B;\n// use crate::a::Thing; (a comment)\n",
            "c/mod.rs": "mod x;\nmod y;\npub use x::C;\n",
            "c/x.rs": "use super::y::Y;\npub struct C;\n",
            "c/y.rs": 'pub struct Y;\nconst S: &str = "crate::c::x";\n',
        })
        assert check(clean) == 0, "a tree without circles failed"
        top = tree({
            "lib.rs": lib,
            "a.rs": "use crate::b::B;\npub struct Thing;\n",
            "b.rs": "pub struct B;\nfn f() -> crate::Thing { todo!() }\n",
            "c/mod.rs": "",
        })
        assert check(top) == 1, "a circle through a root re-export was not seen"
        grouped = tree({
            "lib.rs": lib,
            "a.rs": "use crate::{b::B, c};\npub struct Thing;\n",
            "b.rs": "pub struct B;\n",
            "c/mod.rs": "mod x;\nmod y;\n",
            "c/x.rs": "use super::{y::Y};\n",
            "c/y.rs": "use crate::c::x;\npub struct Y;\n",
        })
        assert check(grouped) == 1, "a circle between siblings in a folder was not seen"
        long = tree({"lib.rs": "\n" * (MAX_LINES + 1)})
        assert check(long) == 1, "a file over the limit was not seen"
        tested = tree({"lib.rs": "fn f() {}\n#[cfg(test)]\nmod tests {\n" + "\n" * MAX_LINES + "}\n"})
        assert check(tested) == 0, "a long test module was counted"
    finally:
        shutil.rmtree(base)
    print("check_modules self-test: a clean tree passes; circles (root re-export, folder siblings) and a long file fail")


def main():
    if sys.argv[1:] == ["--self-test"]:
        self_test()
        return 0
    src = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_SRC
    problems = check(src)
    if problems:
        print(f"check_modules: {problems} problem(s) in {src}", file=sys.stderr)
        return 1
    print(f"check_modules: {os.path.relpath(src, ROOT)}: no file over {MAX_LINES} lines, no import circle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
