#!/usr/bin/env bash
# Every check this project has, in the order a failure is cheapest to see.
# This is the README's test command, and all that CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/ensure-deps.sh
# Every crate is built once per run here, so an incremental cache only costs
# disk (it was as large as the build itself; one CI run ran out of disk).
# Set CARGO_INCREMENTAL=1 to keep it for repeated local runs.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

stage() {
    echo
    echo "==> $*"
}

stage "format";     cargo fmt --all -- --check
stage "clippy";     cargo clippy --workspace --all-targets --quiet -- -D warnings
# The `otel` feature (off above): the framework and the test that uses it.
cargo clippy -p mprpc -p mprpc-examples --all-targets --features mprpc/otel,mprpc-examples/otel --quiet -- -D warnings
# final/mprpc's layout: no file over 800 lines, no import circle between
# modules (the self-test first: the check must fail on a circle).
stage "module shape"
python3 tools/check_modules.py --self-test
python3 tools/check_modules.py
# Each step teaches one piece: no step main.rs over 150 lines, no step
# chapter excerpt over 60 (the self-test first: the check must be able to fail).
stage "step shape"
python3 tools/check_steps.py --self-test
python3 tools/check_steps.py
# ZooKeeper tests start and stop their own server; nothing runs beforehand.
# One package at a time: steps 08-12 each have binaries named `callee` and
# `caller` (the course's names), and in one workspace-wide build they would
# overwrite each other in target/debug, so a step's test could run another
# step's program. Built per package, each test sees its own.
stage "tests"
packages=$(cargo metadata --no-deps --format-version 1 |
    python3 -c 'import json, sys; print(" ".join(p["name"] for p in json.load(sys.stdin)["packages"]))')
for package in $packages; do
    echo "--> cargo test -p $package"
    cargo test -p "$package"
done
# The `otel` feature: mprpc's own tests with it on, and one OpenTelemetry
# trace across providers over TCP (tests/otel.rs needs the feature).
echo "--> cargo test -p mprpc --features otel"
cargo test -p mprpc --features otel
echo "--> cargo test -p mprpc-examples --features otel --test otel"
cargo test -p mprpc-examples --features otel --test otel
# The framework as users get it: each crate packaged alone and built from
# its package (so it reads nothing outside itself), and its API docs free of
# the demo services, which live in final/examples.
stage "packages";   cargo package --quiet -p mprpc -p mprpc-build --allow-dirty
stage "api docs"
rm -rf "${CARGO_TARGET_DIR:-target}/doc/mprpc"  # no stale pages from an earlier layout
cargo doc --quiet --no-deps -p mprpc -p mprpc-build --features mprpc/otel
doc_dir="${CARGO_TARGET_DIR:-target}/doc/mprpc"
demo_items=$(find "$doc_dir" \( -iname '*UserServiceRpc*' -o -iname '*FriendServiceRpc*' -o -name fixbug -o -name demo \) -print)
if [ -n "$demo_items" ] || [ ! -f "$doc_dir/index.html" ]; then
    echo "cargo doc -p mprpc shows the course's demo services (or made no docs):" >&2
    echo "$demo_items" >&2
    exit 1
fi
stage "generated book files (step diffs, run outputs)"
python3 tools/gen.py --check
stage "diagrams";   tools/diagrams.sh --check
# Both editions: English in book/build/, Chinese in book/build/zh-CN/.
stage "book (English and Chinese)"; tools/i18n.sh build
python3 tools/check_book.py
python3 tools/check_book.py book/build/zh-CN
if [ -x tools/check_browser.sh ] && [ -z "${SKIP_BROWSER_CHECK:-}" ]; then
    stage "book in a browser (English)"; tools/check_browser.sh
    stage "book in a browser (Chinese)"; tools/check_browser.sh zh-CN
fi
# The Chinese edition complete: every message of the English book in
# book/po/zh-CN.po, translated, none fuzzy. An English change without its
# translation fails here (tools/i18n.sh pot, update, translate).
stage "translation complete and up to date"; tools/i18n.sh check
echo
echo "disk used by the build: $(du -sh "${CARGO_TARGET_DIR:-target}" 2>/dev/null | cut -f1)"
echo "all checks passed"
