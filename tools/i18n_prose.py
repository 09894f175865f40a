#!/usr/bin/env python3
"""mdBook preprocessor that leaves only prose for `mdbook-xgettext`.

book.toml runs it for the `xgettext` renderer alone (never for the HTML
book), before `links`, so it sees each chapter as written:

- every fenced code block (and the `{{#include}}` inside it) becomes blank
  lines: mdbook-xgettext would otherwise extract the string literals and
  comments of the Rust code, diffs and outputs the book includes, and the
  Chinese edition shows those from the same files as the English one;
- every `{{#include}}` outside a fence (the generated tables:
  generated/step-sizes.md, the benchmark's latest.md) becomes a blank line,
  so numbers that tools/gen.py rewrites never make the translation stale
  (tools/i18n_tables.py translates those tables' fixed English);
- a fold's `<details>` line becomes blank and its `<summary>label</summary>`
  line the label alone: a paragraph, hence a message, which
  tools/i18n_summary.py puts back into the translated HTML book (an HTML
  block is never a message).

Blank lines keep the line numbers of the POT's `#:` references true and
keep the paragraphs on both sides of a block apart, as they are in the book
mdbook-gettext translates. mdbook-gettext finds no message for a code block
and leaves it as it is.

Protocol (mdBook 0.5): `i18n_prose.py supports <renderer>` exits 0;
otherwise stdin is `[context, book]` and stdout the book.
"""
import json
import re
import sys

FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})")
INCLUDE = re.compile(r"^\s*\{\{#(include|rustdoc_include)\s[^}]*\}\}\s*$")
DETAILS = re.compile(r"^\s*<details>\s*$")
SUMMARY = re.compile(r"^\s*<summary>(.*)</summary>\s*$")


def prose_only(text):
    out = []
    fence = None  # the opening fence while inside a code block
    for line in text.split("\n"):
        match = FENCE.match(line)
        if fence is None:
            if match:
                fence = match.group("fence")
                out.append("")
            elif INCLUDE.match(line) or DETAILS.match(line):
                out.append("")
            elif SUMMARY.match(line):
                # A fold's label, on a line of its own after a blank one: a
                # paragraph, so a message (tools/i18n_summary.py translates
                # the label in the HTML book).
                out.append(SUMMARY.match(line).group(1))
            else:
                out.append(line)
        else:
            # A closing fence: same character, at least as long, nothing after it.
            if match and match.group("fence")[0] == fence[0] and len(match.group("fence")) >= len(fence) \
                    and not line[match.end():].strip():
                fence = None
            out.append("")
    return "\n".join(out)


def walk(items):
    for item in items:
        chapter = item.get("Chapter") if isinstance(item, dict) else None
        if chapter:
            if chapter.get("content"):
                chapter["content"] = prose_only(chapter["content"])
            walk(chapter.get("sub_items", []))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "supports":
        sys.exit(0)
    _context, book = json.load(sys.stdin)
    walk(book.get("items", book.get("sections", [])))
    json.dump(book, sys.stdout)


if __name__ == "__main__":
    main()
