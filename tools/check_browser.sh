#!/usr/bin/env bash
# Opens every page of the built book in headless Chromium; see
# tools/browser-check/check.mjs. Expects both editions built
# (tools/i18n.sh build): every page links to its twin in the other one.
#
#   tools/check_browser.sh          the English book, book/build/
#   tools/check_browser.sh zh-CN    the Chinese book, book/build/zh-CN/
set -euo pipefail
edition=${1:-en}
cd "$(dirname "$0")/browser-check"
if [ ! -d node_modules/playwright-core ]; then
    npm ci --no-audit --no-fund --silent
fi
mkdir -p ../../target/artifacts
if [ "$edition" = en ]; then
    # The chapter to photograph; falls back to the introduction while the step
    # chapters are being written.
    chapter=steps/07-dispatch.html
    [ -f ../../book/build/$chapter ] || chapter=introduction.html
    node check.mjs ../../book/build ../../target/artifacts/book-chapter.png "$chapter"
else
    # A concept chapter with diagrams, a step chapter, the glossary, the
    # benchmark's chart (drawn in Chinese, book/src/images/zh-CN/).
    node check.mjs ../../book/build "../../target/artifacts/book-$edition.png" \
        concepts/io-models.html,steps/07-dispatch.html,reference/glossary.html,production/performance.html "$edition"
fi
