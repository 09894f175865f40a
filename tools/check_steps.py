#!/usr/bin/env python3
"""Each step teaches one piece: its demo and its excerpts stay readable.

Fails when a step's `src/main.rs` is over MAX_MAIN lines, or when an
excerpt a step chapter shows (each `{{#include path:anchor}}` or whole-file
`{{#include path}}` in book/src/steps/*.md) is over MAX_EXCERPT lines.
Anchor lines nested inside an excerpt are not shown by mdBook, so they are
not counted. Files under book/src/generated/ (step diffs, run outputs, the
generated code) are made by tools/gen.py, bounded by `gen.py --check`, and
shown folded, so they are not excerpts here.

Usage:
    python3 tools/check_steps.py [ROOT]      ROOT defaults to the repository
    python3 tools/check_steps.py --self-test proves it fails on a long main.rs or excerpt
"""
import re
import shutil
import sys
import tempfile
from pathlib import Path

MAX_MAIN = 150
MAX_EXCERPT = 60

INCLUDE = re.compile(r"\{\{#include\s+([^}\s:]+)(?::([A-Za-z0-9_-]+))?\s*\}\}")
ANCHOR = re.compile(r"ANCHOR(?:_END)?:\s*([A-Za-z0-9_-]+)")


def excerpt_lines(path, anchor):
    """The lines mdBook shows for `path:anchor` (all of the file if no anchor)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if anchor is not None:
        start = end = None
        for i, line in enumerate(lines):
            m = ANCHOR.search(line)
            if not m or m.group(1) != anchor:
                continue
            if "ANCHOR_END" in line:
                if start is not None and end is None:
                    end = i
            elif start is None:
                start = i
        if start is None or end is None:
            raise ValueError(f"anchor {anchor!r} not found (or not closed) in {path}")
        lines = lines[start + 1 : end]
    return [line for line in lines if not ANCHOR.search(line)]


def check(root):
    """Every problem found under `root`, one line each (empty: all within bounds)."""
    problems = []
    for main_rs in sorted(root.glob("steps/*/src/main.rs")):
        n = len(main_rs.read_text(encoding="utf-8").splitlines())
        if n > MAX_MAIN:
            problems.append(f"{main_rs.relative_to(root)}: {n} lines (at most {MAX_MAIN})")
    chapters = sorted((root / "book/src/steps").glob("*.md"))
    if not chapters:
        problems.append("no step chapters found in book/src/steps")
    for chapter in chapters:
        for number, line in enumerate(chapter.read_text(encoding="utf-8").splitlines(), 1):
            for m in INCLUDE.finditer(line):
                target = (chapter.parent / m.group(1)).resolve()
                if (root / "book/src/generated").resolve() in target.parents:
                    continue
                where = f"{chapter.relative_to(root)}:{number}"
                try:
                    n = len(excerpt_lines(target, m.group(2)))
                except (OSError, ValueError) as e:
                    problems.append(f"{where}: {e}")
                    continue
                if n > MAX_EXCERPT:
                    shown = m.group(1) + (":" + m.group(2) if m.group(2) else "")
                    problems.append(f"{where}: {shown} is {n} lines (at most {MAX_EXCERPT})")
    return problems


def self_test():
    """The check passes on a tree at the limits and fails just past each one."""
    base = Path(tempfile.mkdtemp(prefix="check_steps."))
    try:
        def tree(main_lines, excerpt_lines_, include):
            root = Path(tempfile.mkdtemp(dir=base))
            src = root / "steps/01-demo/src"
            src.mkdir(parents=True)
            (src / "main.rs").write_text("fn main() {}\n" * main_lines)
            body = "    x();\n" * excerpt_lines_
            # A nested anchor is not shown by mdBook: it must not count.
            (src / "lib.rs").write_text(
                "// ANCHOR: piece\nfn piece() {\n    // ANCHOR: inner\n"
                + body + "    // ANCHOR_END: inner\n}\n// ANCHOR_END: piece\n"
            )
            chapters = root / "book/src/steps"
            chapters.mkdir(parents=True)
            generated = root / "book/src/generated"
            generated.mkdir()
            # Generated files are bounded by gen.py --check, not here.
            (generated / "long.diff").write_text("+\n" * (MAX_EXCERPT * 2))
            (chapters / "01-demo.md").write_text(
                "# Step\n\n```rust,ignore\n{{#include " + include + "}}\n```\n\n"
                "```diff\n{{#include ../generated/long.diff}}\n```\n"
            )
            return root

        piece = "../../../steps/01-demo/src/lib.rs:piece"
        # The excerpt is the body plus `fn piece() {` and `}`.
        at_limits = tree(MAX_MAIN, MAX_EXCERPT - 2, piece)
        assert check(at_limits) == [], f"a tree at the limits failed: {check(at_limits)}"
        long_main = check(tree(MAX_MAIN + 1, 1, piece))
        assert len(long_main) == 1 and "main.rs" in long_main[0], long_main
        long_excerpt = check(tree(1, MAX_EXCERPT - 1, piece))
        assert len(long_excerpt) == 1 and "lib.rs:piece" in long_excerpt[0], long_excerpt
        whole_file = check(tree(1, 1, "../../../steps/01-demo/src/main.rs"))
        assert whole_file == [], whole_file
        missing = check(tree(1, 1, "../../../steps/01-demo/src/lib.rs:nowhere"))
        assert len(missing) == 1 and "not found" in missing[0], missing
        empty = Path(tempfile.mkdtemp(dir=base))
        assert check(empty) == ["no step chapters found in book/src/steps"], check(empty)
    finally:
        shutil.rmtree(base)
    print("check_steps self-test: a tree at the limits passes; a long main.rs, a long "
          "excerpt and a missing anchor fail; generated files are left to gen.py")


def main():
    if sys.argv[1:] == ["--self-test"]:
        self_test()
        return 0
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent
    problems = check(root)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"check_steps: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("check_steps: every step main.rs and step excerpt within bounds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
