#!/usr/bin/env python3
"""Regenerates what the book shows but nobody should type by hand.

    python3 tools/gen.py           write book/src/generated/
    python3 tools/gen.py --check   fail (exit 1) if anything there is stale

What it writes:
  diffs/step-NN.diff      `diff -ruN` of step NN-1 against step NN: the one piece a step adds,
                          src/ first, then tests/, then the rest (Cargo.toml, README, ...);
                          `// ANCHOR:` lines (for {{#include}}) left out
  diffs/step-NN-src.diff  the same for src/ only: what the chapter shows first
  code/step-02-generated.rs
                          an excerpt of what step 02's build.rs generates (the
                          UserServiceRpc trait, server adapter and stub), rustfmt'ed
  step-sizes.md           per step: changed code lines in src/ (comments and blank lines
                          excluded; the demo's share in its own column), changed lines in
                          tests/ and in the whole diff (blank lines excluded); also printed
  output/step-NN.txt      stdout of `cargo run -q -p step-NN`, normalised so it is the same on
                          every machine (ephemeral ports, timestamps, ZooKeeper session ids)
  output/mprpc-*.txt      the `mprpc` command-line tool's output for the book's chapter on it:
                          offline dumps and descriptions, and one `call --course --dump` against
                          step 08's provider (started here on a free port, stopped after)

A step is the previous step plus one piece: every step must stay within
CODE_TARGET changed code lines in src/ and LINES_TARGET changed lines in all;
`--check` fails when one does not, as when a generated file is stale.

Like the rust-lang book's tools, the book then pulls these in with {{#include}}.
"""
import argparse
import difflib
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEPS = ROOT / "steps"
GENERATED = ROOT / "book" / "src" / "generated"
# Files in a step folder that are not part of the step (build products).
IGNORED = {"target", "logs", "Cargo.lock"}

# The size of one piece (see the module doc). The counts are those of
# `diff -ruN` on the step folders as they are, anchors included.
CODE_TARGET = 350
LINES_TARGET = 900
# `// ANCHOR: name` / `# ANCHOR_END: name`: markers for {{#include}}, not code.
ANCHOR = re.compile(r"^\s*(//|#)\s*ANCHOR(_END)?:")
# Blank and comment-only lines do not count as code.
NOT_CODE = re.compile(r"^[+-]\s*(//.*)?$")

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


def reading_order(rel: str):
    """src/ first (the piece), then tests/, then everything else."""
    group = 0 if rel.startswith("src/") else 1 if rel.startswith("tests/") else 2
    return (group, rel)


def without_anchors(path: Path):
    return [line for line in path.read_text().splitlines(keepends=True) if not ANCHOR.match(line)]


def step_diff(old: Path, new: Path, src_only: bool = False) -> str:
    """A unified diff of two step folders, paths relative to the repo root,
    in reading order and without anchor lines."""
    a, b = files_of(old), files_of(new)
    chunks = []
    for rel in sorted(set(a) | set(b), key=reading_order):
        if src_only and not rel.startswith("src/"):
            continue
        old_lines = without_anchors(a[rel]) if rel in a else []
        new_lines = without_anchors(b[rel]) if rel in b else []
        if old_lines == new_lines:
            continue
        old_name = f"steps/{old.name}/{rel}" if rel in a else "/dev/null"
        new_name = f"steps/{new.name}/{rel}" if rel in b else "/dev/null"
        lines = difflib.unified_diff(old_lines, new_lines, old_name, new_name, n=3)
        for line in lines:
            chunks.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(chunks)


def changed(diff_args) -> list:
    """The +/- lines of `diff -ruN ...`, without the file headers, each
    with the path (in the newer folder) of the file it belongs to."""
    result = subprocess.run(["diff", "-ruN", *diff_args], cwd=ROOT, capture_output=True, text=True)
    if result.returncode > 1:
        sys.exit(f"gen: diff {' '.join(diff_args)} failed:\n{result.stderr}")
    out, path = [], ""
    for l in result.stdout.splitlines():
        if l.startswith("diff -ruN "):
            # `diff -ruN [options] OLD NEW`: the newer file names the change.
            path = l.split()[-1]
        elif re.match(r"^[+-]", l):
            out.append((path, l))
    return out


def is_demo(path: str) -> bool:
    """A step's demo: `src/main.rs` and the programs in `src/bin/`."""
    return bool(re.search(r"/src/(main\.rs|bin/)", path))


def step_size(old: Path, new: Path):
    """(code lines in src/, of which in the demo, lines in tests/, lines in
    the whole diff), counted like the project's before-stop hook: code =
    +/- lines of the src/ diff that are neither blank nor only a comment;
    lines = +/- lines of the diff (build products and logs excluded) that
    are not blank and do not start with `++`, `+-`, `--` or `-+` (which the
    hook cannot tell from the file headers)."""
    rel = lambda p: p.relative_to(ROOT).as_posix()
    src = [(path, l) for path, l in changed([f"{rel(old)}/src", f"{rel(new)}/src"])
           if not re.match(r"^(\+\+\+|---)", l) and not NOT_CODE.match(l)]
    excluded = [arg for name in sorted(IGNORED) for arg in ("-x", name)]
    whole = [(path, l) for path, l in changed([*excluded, rel(old), rel(new)])
             if re.match(r"^[+-][^+-]", l)]
    demo = sum(1 for path, _ in src if is_demo(path))
    tests = sum(1 for path, _ in whole if f"/{new.name}/tests/" in path)
    return len(src), demo, tests, len(whole)


def size_table(all_steps):
    """The markdown table of step sizes, and the steps over a target."""
    rows = [
        f"| Step | Code lines changed in `src/` (target ≤ {CODE_TARGET}) "
        "| of which the demo (`src/main.rs`, `src/bin/`) "
        "| Lines changed in `tests/` "
        f"| Lines changed in the whole diff (target ≤ {LINES_TARGET}) |",
        "|---|---:|---:|---:|---:|",
    ]
    over = []
    for old, new in zip(all_steps, all_steps[1:]):
        code, demo, tests, lines = step_size(old, new)
        rows.append(f"| {new.name} (diff to {old.name[:2]}) | {code} | {demo} | {tests} | {lines} |")
        if code > CODE_TARGET or lines > LINES_TARGET:
            over.append(f"{new.name}: {code} code lines in src/, {lines} lines in all "
                        f"(targets {CODE_TARGET} / {LINES_TARGET})")
    note = ("Generated by `tools/gen.py` (do not edit). Every count is of the `+`/`-` lines "
            "of `diff -ruN` of the two step folders, without blank lines. Code lines: in "
            "`src/`, comment-only lines excluded too; the demo column is the part of them in "
            "`src/main.rs` and `src/bin/`. `tests/` and the whole diff also leave out lines "
            "starting with `++`, `+-`, `--` or `-+`, which the count cannot tell from the "
            "diff's file headers.\n\n")
    return note + "\n".join(rows) + "\n", over


# What the excerpt of step 02's generated code shows: the request message
# and, for UserServiceRpc, what `option cc_generic_services = true` gives C++.
GENERATED_ITEMS = [
    "pub struct LoginRequest",
    "pub static USER_SERVICE_RPC_DESCRIPTOR",
    "pub trait UserServiceRpc",
    "pub struct UserServiceRpcServer",
    "impl<T: UserServiceRpc> crate::rpc::Service for UserServiceRpcServer<T>",
    "pub struct UserServiceRpcStub",
    "impl<C: crate::rpc::RpcChannel> UserServiceRpcStub<C>",
]


def generated_code() -> str:
    """An excerpt of the code step 02's build.rs writes, from its OUT_DIR."""
    result = subprocess.run(
        ["cargo", "build", "-q", "-p", "step-02", "--message-format=json"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    if result.returncode != 0:
        sys.exit(f"gen: `cargo build -p step-02` failed:\n{result.stderr}")
    out_dir = None
    for line in result.stdout.splitlines():
        message = json.loads(line)
        if message.get("reason") == "build-script-executed" and "step-02" in message.get("package_id", ""):
            out_dir = Path(message["out_dir"])
    if out_dir is None:
        sys.exit("gen: cargo did not report step-02's OUT_DIR")
    formatted = subprocess.run(
        ["rustfmt", "--edition", "2024", "--emit", "stdout"],
        input=(out_dir / "fixbug.rs").read_text(), capture_output=True, text=True,
    )
    if formatted.returncode != 0:
        sys.exit(f"gen: rustfmt of step-02's generated code failed:\n{formatted.stderr}")
    items = split_items(formatted.stdout)
    missing = [start for start in GENERATED_ITEMS if not any(start in item for item in items)]
    if missing:
        sys.exit(f"gen: step-02's generated code has no {missing}")
    chosen = [item for item in items if any(start in item for start in GENERATED_ITEMS)]
    head = ("// Generated by step 02's build.rs (prost + MprpcServiceGenerator) into\n"
            "// OUT_DIR/fixbug.rs; an excerpt, rustfmt'ed by tools/gen.py.\n"
            "// C++: what protoc writes into user.pb.h for `cc_generic_services = true`.\n\n")
    return head + "\n".join(chosen)


def split_items(code: str) -> list:
    """Top-level items of formatted code, each with its doc comments and
    attributes: an item ends at a line that closes it at column 0."""
    items, current = [], []
    for line in code.splitlines(keepends=True):
        if not current and not line.strip():
            continue
        current.append(line)
        if line.startswith(("}", "];", "};")) or (line and not line[0].isspace()
                                                  and line.rstrip().endswith(";")
                                                  and not line.startswith(("///", "#", "//"))):
            items.append("".join(current))
            current = []
    if current:
        items.append("".join(current))
    return items


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


# The course's Login as protobuf JSON: "zhang san" / "123456" (bytes are base64).
LOGIN_JSON = '{"name": "emhhbmcgc2Fu", "pwd": "MTIzNDU2"}'


def mprpc(args) -> str:
    """`$ mprpc ARGS` and what it printed, run from the repository's root."""
    result = subprocess.run(
        ["cargo", "run", "-q", "-p", "mprpc-cli", "--", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        sys.exit(f"gen: `mprpc {' '.join(args)}` failed ({result.returncode}):\n{result.stderr}")
    text = result.stdout
    for pattern, replacement in NORMALISE:
        text = pattern.sub(replacement, text)
    return "$ mprpc " + " ".join(shlex.quote(a) for a in args) + "\n" + text


def cli_outputs(out_dir: Path):
    """The command-line tool's chapter: its output, generated like the steps'."""
    user = ["--proto", "proto/user.proto"]
    login = ["UserServiceRpc/Login", LOGIN_JSON]
    outputs = {
        "mprpc-dump-course.txt": ["dump", "--course", *login, *user],
        "mprpc-dump-framed.txt": ["dump", *login, *user, "-H", "x-user:zhang"],
        "mprpc-describe.txt": ["describe", "127.0.0.1:8000", "fixbug.UserServiceRpc", *user],
    }
    for name, args in outputs.items():
        (out_dir / "output" / name).write_text(mprpc(args))
    # One live call: step 08's provider (the course's format) on a free port.
    built = subprocess.run(["cargo", "build", "-q", "-p", "step-08", "--bin", "callee"], cwd=ROOT)
    if built.returncode != 0:
        sys.exit("gen: building step 08's callee failed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "mprpc.toml"
        config.write_text(
            f'rpcserverip = "127.0.0.1"\nrpcserverport = {port}\n'
            'zookeeperip = "127.0.0.1"\nzookeeperport = 2181\n'
        )
        callee = subprocess.Popen(
            ["cargo", "run", "-q", "-p", "step-08", "--bin", "callee", "--", "-i", str(config)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if callee.poll() is not None or time.monotonic() > deadline:
                        sys.exit("gen: step 08's callee did not start")
                    time.sleep(0.05)
            text = mprpc(["call", "--course", f"127.0.0.1:{port}", *login, *user, "--dump"])
        finally:
            callee.kill()
            callee.wait()
    text = text.replace(f"127.0.0.1:{port}", "127.0.0.1:PORT")
    (out_dir / "output" / "mprpc-call-step-08.txt").write_text(text)


def generate(out_dir: Path, with_outputs: bool):
    """Writes everything into `out_dir`; returns the steps over a target."""
    all_steps = steps()
    (out_dir / "diffs").mkdir(parents=True, exist_ok=True)
    for old, new in zip(all_steps, all_steps[1:]):
        number = new.name[:2]
        (out_dir / "diffs" / f"step-{number}.diff").write_text(step_diff(old, new))
        (out_dir / "diffs" / f"step-{number}-src.diff").write_text(step_diff(old, new, src_only=True))
    table, over = size_table(all_steps)
    (out_dir / "step-sizes.md").write_text(table)
    print(table)
    (out_dir / "code").mkdir(parents=True, exist_ok=True)
    (out_dir / "code" / "step-02-generated.rs").write_text(generated_code())
    if with_outputs:
        for step in all_steps:
            target = out_dir / "output" / f"step-{step.name[:2]}.txt"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(run_output(step))
        cli_outputs(out_dir)
    return over


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 when stale")
    parser.add_argument("--diffs-only", action="store_true", help="skip running the steps")
    args = parser.parse_args()
    if not args.check:
        over = generate(GENERATED, not args.diffs_only)
        print(f"gen: wrote {GENERATED.relative_to(ROOT)}")
        report_over(over)
        return
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        over = generate(fresh, not args.diffs_only)
        stale = []
        for path in sorted(fresh.rglob("*")):
            if path.is_file():
                committed = GENERATED / path.relative_to(fresh)
                if not committed.exists() or committed.read_text() != path.read_text():
                    stale.append(committed.relative_to(ROOT).as_posix())
        kinds = ["diffs", "code"] if args.diffs_only else ["diffs", "code", "output"]
        for kind in kinds:
            for committed in sorted((GENERATED / kind).glob("*")):
                if not (fresh / kind / committed.name).exists():
                    stale.append(committed.relative_to(ROOT).as_posix() + " (no longer generated)")
        if stale:
            print("gen: stale generated files (run `python3 tools/gen.py` and commit):")
            for name in stale:
                print("  " + name)
        report_over(over)
        if stale:
            sys.exit(1)
        print("gen: generated book files are current, every step within its targets")


def report_over(over):
    """Fails when a step is more than one piece."""
    if over:
        print("gen: steps over a size target (move harness to tools/testkit, hardening to final/):")
        for line in over:
            print("  " + line)
        sys.exit(1)


if __name__ == "__main__":
    main()
