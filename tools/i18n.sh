#!/usr/bin/env bash
# The book's translations (issue #16): mdbook-i18n-helpers 0.4 and GNU gettext.
#
#   tools/i18n.sh pot      regenerate book/po/messages.pot from the English book
#   tools/i18n.sh update [PART.po...]
#                          merge the POT (and translators' parts) into
#                          book/po/zh-CN.po (msgcat, msgmerge)
#   tools/i18n.sh build    build both editions: English to book/build/,
#                          Chinese to book/build/zh-CN/
#   tools/i18n.sh serve    serve the Chinese book at http://localhost:3001
#   tools/i18n.sh check    fail if zh-CN.po is stale against a fresh POT: a
#                          message missing, untranslated or fuzzy (lists them)
#   tools/i18n.sh stats    msgfmt --statistics of zh-CN.po
#
# Messages are prose only: book.toml's i18n-prose preprocessor
# (tools/i18n_prose.py) blanks code blocks and includes for the POT, so code,
# diffs and outputs come from the same files in both editions.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

LANGS=(zh-CN)
PO_DIR=book/po
POT=$PO_DIR/messages.pot

need() {
    for program in "$@"; do
        if ! command -v "$program" >/dev/null; then
            case $program in
                mdbook-gettext | mdbook-xgettext)
                    echo "i18n: $program missing: cargo install mdbook-i18n-helpers --version '^0.4' --locked" >&2 ;;
                *)
                    echo "i18n: $program missing: apt-get install gettext" >&2 ;;
            esac
            exit 1
        fi
    done
}

# make_pot DIR: writes DIR/messages.pot.
make_pot() {
    need mdbook-xgettext
    MDBOOK_OUTPUT='{"xgettext": {}}' mdbook build book -d "$1" >/dev/null 2>"$1.log" || {
        cat "$1.log" >&2
        exit 1
    }
    rm -f "$1.log"
}

# edition_env LANG: the settings of that edition that book.toml cannot hold.
edition_env() {
    export MDBOOK_BOOK__LANGUAGE=$1
    # book.toml's title and description are English; each edition's come from
    # here (the POT holds only the chapters' text).
    case $1 in
        zh-CN)
            export MDBOOK_BOOK__TITLE="mprpc-rs：用 Rust 实现一个 RPC 框架"
            export MDBOOK_BOOK__DESCRIPTION="用 Rust 一步一步重写 mprpc 课程（muduo + protobuf + ZooKeeper）：prost、tokio 与 zookeeper-client。" ;;
    esac
}

case "${1:-}" in
    pot)
        mkdir -p "$PO_DIR"
        fresh=$(mktemp -d)
        trap 'rm -rf "$fresh"' EXIT
        make_pot "$fresh/po"
        # Only a new creation date is no change: keep the file as it is.
        if [ -f "$POT" ] && cmp -s <(grep -v '^"POT-Creation-Date' "$POT") \
            <(grep -v '^"POT-Creation-Date' "$fresh/po/messages.pot"); then
            echo "i18n: $POT is up to date"
        else
            cp "$fresh/po/messages.pot" "$POT"
            echo "i18n: wrote $POT ($(($(grep -c '^msgid' "$POT") - 1)) messages)"
        fi
        # The diagrams' labels (tools/diagrams_i18n.py, rendered by tools/diagrams.sh).
        python3 tools/diagrams_i18n.py pot >"$PO_DIR/diagrams.pot"
        ;;
    update)
        # Also: tools/i18n.sh update PART.po...  merges translators' parts first.
        need msgmerge msgcat msgfmt
        shift
        for lang in "${LANGS[@]}"; do
            po=$PO_DIR/$lang.po
            if [ ! -f "$po" ]; then
                # msginit would want a locale name (zh_CN); mdbook-gettext wants
                # po/<book.language>.po and the header says the same.
                sed -e 's/^"Language: .*\\n"$/"Language: '"$lang"'\\n"/' \
                    -e 's/^"Plural-Forms: .*\\n"$/"Plural-Forms: nplurals=1; plural=0;\\n"/' "$POT" >"$po"
            fi
            work=$(mktemp -d)
            # Translators' parts under what the PO has already (first wins), then
            # the messages that read the same in every language, then the POT's
            # current messages and references (msgmerge: vanished messages
            # become obsolete, changed ones fuzzy).
            python3 tools/i18n_identity.py "$POT" >"$work/identity.po"
            msgcat --use-first --no-wrap -o "$work/all.po" "$po" "$@" "$work/identity.po"
            msgmerge --quiet --no-wrap --no-fuzzy-matching -o "$po" "$work/all.po" "$POT"
            rm -rf "$work"
            # Images with translated labels (diagrams: tools/diagrams.sh renders
            # them to book/src/diagrams/LANG/; the benchmark's chart: final/bench
            # draws it to book/src/images/LANG/): the translation shows those.
            python3 - "$po" "$lang" <<'PY'
import re, sys
from pathlib import Path
po, lang = sys.argv[1], sys.argv[2]
text = Path(po).read_text(encoding="utf-8")
def swap(m):
    folder, name = m.group(2), m.group(3)
    if Path(f"book/src/{folder}/{lang}/{name}.svg").is_file():
        return f"{m.group(1)}{folder}/{lang}/{name}.svg"
    return m.group(0)
out = []
for line in text.split("\n"):
    if line.startswith("msgstr "):  # one line each: the PO is written --no-wrap
        line = re.sub(r"(\]\((?:\.\./)*)(diagrams|images)/([\w.-]+)\.svg", swap, line)
    out.append(line)
Path(po).write_text("\n".join(out), encoding="utf-8")
PY
            echo "$lang: $(msgfmt --statistics -o /dev/null "$po" 2>&1)"
            dpo=$PO_DIR/diagrams.$lang.po
            if [ -f "$dpo" ]; then
                msgmerge --quiet --update --backup=none --no-wrap --no-fuzzy-matching "$dpo" "$PO_DIR/diagrams.pot"
                echo "$lang diagrams: $(msgfmt --statistics -o /dev/null "$dpo" 2>&1) (tools/diagrams.sh renders them)"
            fi
        done
        ;;
    build)
        need mdbook-gettext
        # English first: mdbook empties its build directory, zh-CN/ included.
        mdbook build book
        for lang in "${LANGS[@]}"; do
            # site-url: the 404 page links its CSS and JS from there.
            (edition_env "$lang" && MDBOOK_OUTPUT__HTML__SITE_URL=/$lang/ mdbook build book -d "book/build/$lang")
            if ! grep -q "<html lang=\"$lang\"" "book/build/$lang/index.html"; then
                echo "i18n: book/build/$lang/index.html is not in $lang" >&2
                exit 1
            fi
        done
        ;;
    check)
        need msgattrib msgfmt
        fresh=$(mktemp -d)
        trap 'rm -rf "$fresh"' EXIT
        make_pot "$fresh/po"
        status=0
        for lang in "${LANGS[@]}"; do
            po=$PO_DIR/$lang.po
            if [ ! -f "$po" ]; then
                echo "i18n check: $po missing (tools/i18n.sh update)" >&2
                status=1
                continue
            fi
            if ! cmp -s <(python3 tools/diagrams_i18n.py pot) "$PO_DIR/diagrams.pot"; then
                echo "i18n check: $PO_DIR/diagrams.pot is stale: run tools/i18n.sh pot and update" >&2
                status=1
            fi
            if ! cmp -s <(grep -v '^"POT-Creation-Date' "$POT") <(grep -v '^"POT-Creation-Date' "$fresh/po/messages.pot"); then
                echo "i18n check: $POT is stale: run tools/i18n.sh pot and update" >&2
                status=1
            fi
            # Every message of the fresh POT present in the PO, and translated.
            # Every message of the fresh POT present in the PO (translated or not).
            missing=$(python3 - "$po" "$fresh/po/messages.pot" <<'PY'
import sys
sys.path.insert(0, "tools")
from i18n_identity import entries
have = {value for _, _, value in entries(open(sys.argv[1], encoding="utf-8").read())}
for comments, _, value in entries(open(sys.argv[2], encoding="utf-8").read()):
    if value not in have:
        where = next((c.split()[1] for c in comments if c.startswith("#:")), "?")
        print(f"{where}: {value[:100]}")
PY
            )
            if [ -n "$missing" ]; then
                echo "i18n check: $po lacks $(echo "$missing" | wc -l) messages of the English book (tools/i18n.sh pot; tools/i18n.sh update):" >&2
                echo "$missing" | head -40 >&2
                status=1
            fi
            for kind in untranslated only-fuzzy; do
                # One line per message: its first source reference.
                listed=$(msgattrib --$kind --no-obsolete "$po" |
                    awk 'BEGIN { RS = "" } { for (i = 1; i <= NF; i++) if ($i == "#:") { print $(i + 1); break } }')
                if [ -n "$listed" ]; then
                    echo "i18n check: $po: $(echo "$listed" | wc -l) ${kind#only-} messages, at:" >&2
                    echo "$listed" | head -20 >&2
                    status=1
                fi
            done
            echo "i18n check: $lang: $(msgfmt --statistics -o /dev/null "$po" 2>&1)"
        done
        [ $status = 0 ] && echo "i18n check: translations complete and up to date"
        exit $status
        ;;
    serve)
        # The Chinese book with live reload (also on book/po/ changes), at
        # http://localhost:3001; `mdbook serve book` stays the English one.
        need mdbook-gettext
        edition_env "${2:-zh-CN}"
        exec mdbook serve book -d "book/build/${2:-zh-CN}" -p 3001
        ;;
    stats)
        for lang in "${LANGS[@]}"; do
            echo "$lang: $(msgfmt --statistics -o /dev/null "$PO_DIR/$lang.po" 2>&1)"
        done
        ;;
    *)
        sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
