#!/usr/bin/env python3
"""The diagrams' labels, translated with gettext like the chapters.

    python3 tools/diagrams_i18n.py pot > book/po/diagrams.pot
    python3 tools/diagrams_i18n.py translate LANG SRC.dot > OUT.dot

A message is a label's text exactly as the .dot writes it: the value of
`label="..."` (with its `\\n` line breaks), or one text run of an HTML-like
label `label=<...>` (the text between two tags). `translate` puts each
translated message of book/po/diagrams.LANG.po in its place and leaves the
rest, the layout, colours and node names, as they are; tools/diagrams.sh
renders the result to book/src/diagrams/LANG/NAME.svg, and the Chinese
chapters show those (tools/i18n.sh update points their images there).
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIAGRAMS = ROOT / "book" / "src" / "diagrams"
QUOTED = re.compile(r'(label=")((?:[^"\\]|\\.)*)(")')
HTML = re.compile(r"label=<(.*?)>\s*[\],;]", re.S)
TEXT = re.compile(r">([^<>]+)<")


def messages(text):
    """(offset, string) of every translatable string in a .dot source."""
    found = [(m.start(2), m.group(2)) for m in QUOTED.finditer(text)]
    for html in HTML.finditer(text):
        start = html.start(1)
        body = ">" + html.group(1) + "<"  # so the first and last runs are found too
        for run in TEXT.finditer(body):
            if run.group(1).strip():
                found.append((start + run.start(1) - 1, run.group(1)))
    return sorted(found)


def needs_words(s):
    return re.search(r"[A-Za-z]{2,}", s) is not None


def po_escape(s):
    # The .dot text already writes a line break as \n (backslash, n): keep
    # those two characters, so escape the backslash like any other.
    return s.replace("\\", "\\\\").replace('"', '\\"')


def pot():
    out = ['msgid ""', 'msgstr ""', '"Content-Type: text/plain; charset=UTF-8\\n"', ""]
    seen = {}
    for dot in sorted(DIAGRAMS.glob("*.dot")):
        text = dot.read_text()
        for offset, s in messages(text):
            if not needs_words(s):
                continue
            line = text.count("\n", 0, offset) + 1
            seen.setdefault(s, []).append(f"src/diagrams/{dot.name}:{line}")
    for s, refs in seen.items():
        out += ["#: " + " ".join(refs), f'msgid "{po_escape(s)}"', 'msgstr ""', ""]
    sys.stdout.write("\n".join(out))


def read_po(path):
    table = {}
    text = Path(path).read_text(encoding="utf-8")
    for block in text.split("\n\n"):
        if "#, fuzzy" in block:
            continue
        m = re.search(r'^msgid ((?:".*"\n?)+)^msgstr ((?:".*"\n?)+)', block + "\n", re.M)
        if not m:
            continue
        unq = lambda lines: "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', lines))
        unescape = lambda s: re.sub(r"\\(.)", lambda c: {"n": "\n", "t": "\t"}.get(c.group(1), c.group(1)), s)
        msgid, msgstr = unescape(unq(m.group(1))), unescape(unq(m.group(2)))
        if msgid and msgstr:
            table[msgid] = msgstr
    return table


def translate(lang, src):
    table = read_po(ROOT / "book" / "po" / f"diagrams.{lang}.po")
    text = Path(src).read_text()
    out, last = [], 0
    for offset, s in messages(text):
        if s in table:
            out += [text[last:offset], table[s]]
            last = offset + len(s)
    out.append(text[last:])
    sys.stdout.write("".join(out))


if __name__ == "__main__":
    if sys.argv[1:2] == ["pot"]:
        pot()
    elif sys.argv[1:2] == ["translate"] and len(sys.argv) == 4:
        translate(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
