#!/usr/bin/env python3
"""Regenerates what the book shows but nobody should type by hand.

    python3 tools/gen.py           write book/src/generated/
    python3 tools/gen.py --check   fail (exit 1) if anything there is stale

What it writes:
  diffs/step-NN.diff   `diff -ruN` of step NN-1 against step NN: the one piece a step adds
  output/step-NN.txt   stdout of `cargo run -q -p step-NN`, normalised so it is the same on
                       every machine (ephemeral ports, timestamps, ZooKeeper session ids)

Like the rust-lang book's tools, the book then pulls these in with {{#include}}.
"""
import argparse
import difflib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEPS = ROOT / "steps"
GENERATED = ROOT / "book" / "src" / "generated"
# Files in a step folder that are not part of the step (build products).
IGNORED = {"target", "logs", "Cargo.lock"}

# (pattern, replacement): what differs between two honest runs.
NORMALISE = [
    # Ephemeral ports (Linux picks 32768-60999): 127.0.0.1:PORT.
    (re.compile(r"127\.0\.0\.1:\d{5}\b"), "127.0.0.1:PORT"),
    # Wall-clock times and dates, as the logger writes them.
    (re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?"), "YYYY-MM-DD hh:mm:ss"),
    (re.compile(r"\d{4}-\d{2}-\d{2}-log\.txt"), "YYYY-MM-DD-log.txt"),
    # ZooKeeper session ids.
    (re.compile(r"0x[0-9a-f]{9,16}\b"), "0xSESSION"),
]


def steps():
    return sorted(p for p in STEPS.iterdir() if p.is_dir() and re.match(r"\d\d-", p.name))


def files_of(step: Path):
    out = {}
    for path in sorted(step.rglob("*")):
        rel = path.relative_to(step)
        if path.is_file() and not (set(rel.parts) & IGNORED):
            out[rel.as_posix()] = path
    return out


def step_diff(old: Path, new: Path) -> str:
    """A unified diff of two step folders, paths relative to the repo root."""
    a, b = files_of(old), files_of(new)
    chunks = []
    for rel in sorted(set(a) | set(b)):
        old_lines = a[rel].read_text().splitlines(keepends=True) if rel in a else []
        new_lines = b[rel].read_text().splitlines(keepends=True) if rel in b else []
        if old_lines == new_lines:
            continue
        old_name = f"steps/{old.name}/{rel}" if rel in a else "/dev/null"
        new_name = f"steps/{new.name}/{rel}" if rel in b else "/dev/null"
        lines = difflib.unified_diff(old_lines, new_lines, old_name, new_name, n=3)
        for line in lines:
            chunks.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(chunks)


def run_output(step: Path) -> str:
    package = "step-" + step.name[:2]
    result = subprocess.run(
        ["cargo", "run", "-q", "-p", package],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        sys.exit(f"gen: `cargo run -p {package}` failed ({result.returncode}):\n{result.stderr}")
    text = result.stdout
    for pattern, replacement in NORMALISE:
        text = pattern.sub(replacement, text)
    return f"$ cargo run -p {package}\n" + text


def generate(out_dir: Path, with_outputs: bool):
    all_steps = steps()
    for old, new in zip(all_steps, all_steps[1:]):
        target = out_dir / "diffs" / f"step-{new.name[:2]}.diff"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(step_diff(old, new))
    if with_outputs:
        for step in all_steps:
            target = out_dir / "output" / f"step-{step.name[:2]}.txt"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(run_output(step))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 when stale")
    parser.add_argument("--diffs-only", action="store_true", help="skip running the steps")
    args = parser.parse_args()
    if not args.check:
        generate(GENERATED, not args.diffs_only)
        print(f"gen: wrote {GENERATED.relative_to(ROOT)}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        generate(fresh, not args.diffs_only)
        stale = []
        for path in sorted(fresh.rglob("*")):
            if path.is_file():
                committed = GENERATED / path.relative_to(fresh)
                if not committed.exists() or committed.read_text() != path.read_text():
                    stale.append(committed.relative_to(ROOT).as_posix())
        kinds = ["diffs"] if args.diffs_only else ["diffs", "output"]
        for kind in kinds:
            for committed in sorted((GENERATED / kind).glob("*")):
                if not (fresh / kind / committed.name).exists():
                    stale.append(committed.relative_to(ROOT).as_posix() + " (no longer generated)")
        if stale:
            print("gen: stale generated files (run `python3 tools/gen.py` and commit):")
            for name in stale:
                print("  " + name)
            sys.exit(1)
        print("gen: generated book files are current")


if __name__ == "__main__":
    main()
