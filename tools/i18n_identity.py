#!/usr/bin/env python3
"""Writes the POT's messages that no language translates, translated as themselves.

    python3 tools/i18n_identity.py book/po/messages.pot > identity.po

A message with no Latin letter left once its code spans, link targets,
HTML tags and URLs are taken out ("0", "785", "`RpcProvider`", "技术栈"
from the glossary's Chinese column) reads the same in every edition.
tools/i18n.sh update merges these under the translators' own entries
(msgcat --use-first), so such a message never shows up as untranslated and a
translator may still translate it differently.
"""
import re
import sys

NOT_PROSE = [
    re.compile(r"`+[^`]*`+"),           # code spans
    re.compile(r"\]\([^)]*\)"),         # link targets
    re.compile(r"<[^>]+>"),             # HTML tags
    re.compile(r"https?://\S+"),        # URLs
]


def entries(text):
    for block in text.split("\n\n"):
        lines = block.strip("\n").split("\n")
        start = next((i for i, line in enumerate(lines) if line.startswith("msgid ")), None)
        if start is None:
            continue
        end = next(i for i, line in enumerate(lines) if line.startswith("msgstr "))
        msgid_lines = lines[start:end]
        value = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', "\n".join(msgid_lines)))
        yield lines[:start], msgid_lines, value


def main():
    text = open(sys.argv[1], encoding="utf-8").read()
    out = ['msgid ""', 'msgstr ""', '"Content-Type: text/plain; charset=UTF-8\\n"', ""]
    for comments, msgid_lines, value in entries(text):
        if not value:
            continue  # the header
        prose = value
        for pattern in NOT_PROSE:
            prose = pattern.sub("", prose)
        if re.search(r"[A-Za-z]", prose):
            continue
        out += [line for line in comments if line.startswith("#:")]
        out += msgid_lines
        out += ["msgstr" + msgid_lines[0][len("msgid"):]] + msgid_lines[1:]
        out.append("")
    sys.stdout.write("\n".join(out))


if __name__ == "__main__":
    main()
