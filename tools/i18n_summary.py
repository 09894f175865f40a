#!/usr/bin/env python3
"""mdBook preprocessor that translates the `<summary>` labels of the folds.

A fold is written as an HTML block (`<details>` then
`<summary>The complete diff</summary>`), and mdbook-xgettext extracts no
message from an HTML block, so mdbook-gettext leaves the label in English.
tools/i18n_prose.py (the POT's preprocessor) turns each label into a
paragraph of its own, so it becomes a message ("The change to
<code>src/</code>") translated in book/po/LANG.po like any other; this
preprocessor, run for the HTML book after `gettext`, puts that translation
in the label. The English book (book.language "en", no po/en.po) is handed
back unchanged.

Protocol (mdBook 0.5): `i18n_summary.py supports <renderer>` exits 0;
otherwise stdin is `[context, book]` and stdout the book.
"""
import json
import re
import sys
from pathlib import Path

SUMMARY = re.compile(r"<summary>(.*?)</summary>")
PO_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


def unescape(s):
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), s)


def catalog(po_text):
    """msgid -> msgstr of every translated, non-fuzzy message of a PO file."""
    found = {}
    for block in po_text.split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith("#~")]
        if any(line.startswith("#,") and "fuzzy" in line for line in lines):
            continue
        parts, key = {"msgid": [], "msgstr": []}, None
        for line in lines:
            if line.startswith("msgid "):
                key = "msgid"
            elif line.startswith("msgstr "):
                key = "msgstr"
            elif not line.startswith('"'):
                key = None if line.startswith("#") else key
                continue
            if key:
                parts[key] += PO_STRING.findall(line)
        msgid, msgstr = unescape("".join(parts["msgid"])), unescape("".join(parts["msgstr"]))
        if msgid and msgstr:
            found[msgid] = msgstr
    return found


def translate(text, messages):
    return SUMMARY.sub(lambda m: f"<summary>{messages.get(m.group(1).strip(), m.group(1))}</summary>", text)


def walk(items, messages):
    for item in items:
        chapter = item.get("Chapter") if isinstance(item, dict) else None
        if chapter:
            if chapter.get("content"):
                chapter["content"] = translate(chapter["content"], messages)
            walk(chapter.get("sub_items", []), messages)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "supports":
        sys.exit(0)
    context, book = json.load(sys.stdin)
    language = context.get("config", {}).get("book", {}).get("language") or "en"
    po = Path(context.get("root", ".")) / "po" / f"{language}.po"
    if language != "en" and po.is_file():
        walk(book.get("items", book.get("sections", [])), catalog(po.read_text(encoding="utf-8")))
    json.dump(book, sys.stdout)


if __name__ == "__main__":
    main()
