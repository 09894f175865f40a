#!/usr/bin/env python3
"""Checks the book beyond what `mdbook build` checks.

    python3 tools/check_book.py     (after `mdbook build book`)
    python3 tools/check_book.py book/build/zh-CN    (a translated edition,
        after tools/i18n.sh build; its site-absolute links start /zh-CN/)

1. Includes: every {{#include path[:anchor]}} in book/src names a file that
   exists and, for a named anchor, a file with both `ANCHOR: name` and
   `ANCHOR_END: name`. (mdBook silently includes nothing for a missing anchor.)
2. Leftovers: no built page still contains `{{#`, i.e. an include that did
   not resolve.
3. Fragments survive translation: every `[...](page.md#fragment)` link
   names an id the source sets explicitly (`## Heading {#fragment}`), since
   the ids mdBook derives from headings change with their language.
4. Links: every relative href/src in the built HTML points at a file that
   exists, and every #fragment at an id on that page. External links are
   listed, not fetched: this machine has no network, and a book that needs
   one to be checked is not checked.
Exit status 1 with a list of problems, 0 when the book is sound.
"""
import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "book" / "src"
ENGLISH = ROOT / "book" / "build"
BUILD = ENGLISH
INCLUDE = re.compile(r"\{\{#(include|rustdoc_include)\s+([^}\s]+)\s*\}\}")


def check_includes(problems):
    for md in sorted(SRC.rglob("*.md")):
        for match in INCLUDE.finditer(md.read_text()):
            spec = match.group(2)
            path, _, anchor = spec.partition(":")
            target = (md.parent / path).resolve()
            where = f"{md.relative_to(ROOT)}: {{{{#include {spec}}}}}"
            if not target.is_file():
                problems.append(f"{where}: no file {path}")
                continue
            if anchor and not re.fullmatch(r"[\d:]*", anchor):
                text = target.read_text()
                for mark in (f"ANCHOR: {anchor}", f"ANCHOR_END: {anchor}"):
                    if not re.search(re.escape(mark) + r"\b", text):
                        problems.append(f"{where}: no `{mark}` in {path}")


LINK_FRAGMENT = re.compile(r"\]\([^)#\s]*#([^)\s]+)\)")
EXPLICIT_ID = re.compile(r"\{#([^}\s]+)\}|\bid=\"([^\"]+)\"")


def check_fragments(problems):
    explicit = set()
    for md in SRC.rglob("*.md"):
        for match in EXPLICIT_ID.finditer(md.read_text()):
            explicit.add(match.group(1) or match.group(2))
    for md in sorted(SRC.rglob("*.md")):
        for match in LINK_FRAGMENT.finditer(md.read_text()):
            if match.group(1) not in explicit:
                problems.append(f"{md.relative_to(ROOT)}: link to #{match.group(1)}: give that heading an "
                                f"explicit {{#{match.group(1)}}}, or the translated editions lose it")


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.refs = set(), []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("id", "name") and value:
                self.ids.add(value)
            if name in ("href", "src") and value:
                self.refs.append(value)


def check_built(problems):
    if not (BUILD / "index.html").exists():
        problems.append(f"{BUILD.relative_to(ROOT)}/index.html missing: run `mdbook build book` first")
        return
    pages = {}
    for html in BUILD.rglob("*.html"):
        if BUILD == ENGLISH and html.relative_to(BUILD).parts[0] in EDITIONS:
            continue  # a translated edition inside book/build/, checked on its own
        page = Page()
        text = html.read_text(errors="replace")
        page.feed(text)
        pages[html.resolve()] = page
        if "{{#" in text:
            problems.append(f"{html.relative_to(ROOT)}: unresolved {{{{#...}}}} directive")
    external = set()
    for html, page in sorted(pages.items()):
        # Generated helper pages (print.html repeats every chapter) are checked as well.
        for ref in page.refs:
            parts = urlsplit(ref)
            if parts.scheme in ("http", "https", "mailto"):
                external.add(ref)
                continue
            if parts.scheme or ref.startswith("javascript:"):
                continue
            if not parts.path:
                target = html
            elif parts.path.startswith("/"):
                # Site-absolute (the 404 page uses these): relative to the site's
                # root, book/build/ (a translated edition is a folder in it).
                target = (ENGLISH / unquote(parts.path).lstrip("/")).resolve()
            else:
                target = (html.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                problems.append(f"{html.relative_to(ROOT)}: broken link {ref}")
                continue
            if parts.fragment and target.suffix == ".html":
                ids = pages.get(target)
                if ids is not None and unquote(parts.fragment) not in ids.ids:
                    problems.append(f"{html.relative_to(ROOT)}: no #{parts.fragment} in {target.relative_to(ROOT)}")
    if external:
        print(f"check_book: {len(external)} external links not fetched (no network here)")


# Translated editions, built into book/build/<language>/ (tools/i18n.sh).
EDITIONS = ("zh-CN",)


def main():
    global BUILD
    if len(sys.argv) > 1:
        BUILD = Path(sys.argv[1]).resolve()
    problems = []
    check_includes(problems)
    check_fragments(problems)
    check_built(problems)
    if problems:
        print("check_book: problems found:")
        for problem in problems:
            print("  " + problem)
        sys.exit(1)
    print(f"check_book: includes, anchors and links of {BUILD.relative_to(ROOT)} are sound")


if __name__ == "__main__":
    main()
