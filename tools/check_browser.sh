#!/usr/bin/env bash
# Opens every page of the built book in headless Chromium; see
# tools/browser-check/check.mjs. Expects `mdbook build book` to have run.
set -euo pipefail
cd "$(dirname "$0")/browser-check"
if [ ! -d node_modules/playwright-core ]; then
    npm ci --no-audit --no-fund --silent
fi
mkdir -p ../../target/artifacts
# The chapter to photograph; falls back to the introduction while the step
# chapters are being written.
chapter=steps/07-dispatch.html
[ -f ../../book/build/$chapter ] || chapter=introduction.html
node check.mjs ../../book/build ../../target/artifacts/book-chapter.png "$chapter"
