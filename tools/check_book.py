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
5. Markup: no literal emphasis marker (`_x_`, `*x*`, `**`) in the text of
   any built page outside code, pre and script (mdbook-gettext writes `*x*`
   back as `_x_`, and CommonMark opens no `_` emphasis between CJK
   characters, so a translation must use <em>/<strong> there).
6. A translated edition only: every fold's `<summary>` label is translated
   (holds a character outside ASCII), every image from diagrams/ or images/
   is the edition's own (diagrams/LANG/x.svg, images/LANG/x.svg: the
   diagrams and the benchmark's chart are drawn per language; with item 4,
   a missing one fails too), and every label of the diagrams
   (book/po/diagrams.LANG.po) is translated, not fuzzy, and identical to
   the English only when it is code or a name: every word of it is an
   identifier (has `_`, `::`, `()`, `.`, `/`, a digit, an inner capital
   or is all capitals), a quoted string, or one of NAMES; or the entry
   carries the translator comment `# code` (a reviewed decision: a field
   list such as `name = 1`, a split identifier such as `Login-`).
7. A translated edition only: the generated tables a chapter includes
   (generated/step-sizes.md, the benchmark's latest.md) are translated:
   tools/i18n_tables.py has every string of them, and no English string it
   translates is left in the built page's text.
8. A translated edition only: no msgstr of book/po/LANG.po uses a rejected
   variant of a settled term (FORBIDDEN; the choices are in the glossary),
   and each chapter's first use of a settled term (FIRST_USE) gives the
   English in parentheses.
Exit status 1 with a list of problems, 0 when the book is sound.
"""
import re
import sys
from html.parser import HTMLParser
from html import unescape
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


# A literal emphasis marker left in a page's text: `_x_` not inside a word,
# `*x*`, or any `**`.
MARKER = re.compile(r"(?<![A-Za-z0-9_\\])_(?=[^\s_])[^_\n]*?(?<=[^\s_])_(?![A-Za-z0-9_])"
                    r"|\*\*|(?<![\\*])\*(?=[^\s*])[^*\n]*?(?<=[^\s*])\*(?!\*)")
NOT_TEXT = ("code", "pre", "script", "style", "svg", "kbd")


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.refs = set(), []
        self.markers, self.summaries, self.images = [], [], []
        self._skip, self._summary = 0, None

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("id", "name") and value:
                self.ids.add(value)
            if name in ("href", "src") and value:
                self.refs.append(value)
        if tag == "img":
            self.images.extend(value for name, value in attrs if name == "src" and value)
        if tag in NOT_TEXT:
            self._skip += 1
        if tag == "summary":
            self._summary = ""

    def handle_endtag(self, tag):
        if tag in NOT_TEXT and self._skip:
            self._skip -= 1
        if tag == "summary" and self._summary is not None:
            self.summaries.append(self._summary.strip())
            self._summary = None

    def handle_data(self, data):
        if self._summary is not None:
            self._summary += data
        if not self._skip:
            for match in MARKER.finditer(data):
                self.markers.append(data[max(0, match.start() - 12):match.end() + 12].replace("\n", " "))


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
        if html.name in ("print.html", "toc.html"):
            continue  # the chapters again, reported once from their own pages
        for marker in page.markers:
            problems.append(f"{html.relative_to(ROOT)}: literal emphasis marker in the text: {marker!r} "
                            "(in a translation write <em>x</em> or <strong>x</strong>)")
        if BUILD != ENGLISH:
            for label in page.summaries:
                if label.isascii():
                    problems.append(f"{html.relative_to(ROOT)}: untranslated <summary> label {label!r} "
                                    "(its message in the PO, tools/i18n_summary.py)")
            for src in sorted(set(page.images)):
                # An image with labels (a diagram, the benchmark's chart) drawn in
                # the edition's language sits in LANG/ beside the English one.
                found = IMAGE.search(urlsplit(src).path)
                if found and found.group(2) != BUILD.name:
                    problems.append(f"{html.relative_to(ROOT)}: shows the English image {src} "
                                    f"(the translation's image line names {found.group(1)}/{BUILD.name}/"
                                    f"{found.group(3)}; tools/i18n.sh update, tools/diagrams.sh, "
                                    "final/bench's --chart-from)")
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


# An image with labels: book/src/diagrams/ or book/src/images/, and the
# folder of a translated edition in between (group 2) when it is one.
IMAGE = re.compile(r"(?:^|/)(diagrams|images)/(?:([\w-]+)/)?([\w.-]+\.svg)$")

# Translated editions, built into book/build/<language>/ (tools/i18n.sh).
EDITIONS = ("zh-CN",)

# Names a diagram label may keep as they are in every language.
NAMES = {"ZooKeeper", "EOF", "FIN", "TCP", "ms"}
CODE_WORD = re.compile(r"""[^A-Za-z]*(?:\w*(?:_|::|\(|\)|\.|/|\d)\S*|[A-Z]+|\w*[a-z][A-Z]\w*|"[^"]*"?|[^"]*")[^A-Za-z]*""")


def is_code(label):
    text = re.sub(r"&#?\w+;", " ", label.replace("\\n", " ").replace("\\l", " "))
    for word in text.split():
        if not re.search(r"[A-Za-z]", word) or word.strip(",;:()[]{}\\\"") in NAMES:
            continue
        if not CODE_WORD.fullmatch(word):
            return False
    return True


def check_diagram_labels(problems, language):
    po = ROOT / "book" / "po" / f"diagrams.{language}.po"
    if not po.is_file():
        problems.append(f"{po.relative_to(ROOT)} missing")
        return
    for block in po.read_text(encoding="utf-8").split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith("#~")]
        ids = [line for line in lines if line.startswith("msgid ")]
        strs = [line for line in lines if line.startswith("msgstr ")]
        if not ids or ids[0] == 'msgid ""':
            continue
        msgid, msgstr = ids[0][len('msgid "'):-1], strs[0][len('msgstr "'):-1] if strs else ""
        where = f"{po.relative_to(ROOT)}: {msgid[:70]!r}"
        if any(line.startswith("#,") and "fuzzy" in line for line in lines):
            problems.append(f"{where}: fuzzy")
        elif not msgstr:
            problems.append(f"{where}: untranslated diagram label")
        elif msgstr == msgid and not is_code(msgid) and "# code" not in lines:
            problems.append(f"{where}: the same as the English, and not code or a name")


def page_text(html):
    """The text a reader sees outside code: tags, code and scripts removed."""
    html = re.sub(r"<(pre|code|script|style)\b.*?</\1>", " ", html, flags=re.S)
    return unescape(re.sub(r"<[^>]+>", " ", html))


def english_runs(text):
    """The runs of English words of a generator's string (code spans and the
    variants' names are the same in every language)."""
    text = re.sub(r"`[^`]*`|\b(?:final|floor|tonic|tarpc|step)[\w/-]*|\d[\w.,]*", " ", text)
    return [run for run in re.findall(r"[A-Za-z][A-Za-z ,;'-]*[A-Za-z]", text) if re.search(r"[A-Za-z]{3,}", run)]


def check_generated_tables(problems, language):
    sys.path.insert(0, str(ROOT / "tools"))
    import i18n_tables
    table = i18n_tables.TRANSLATIONS.get(language)
    if table is None:
        problems.append(f"tools/i18n_tables.py: no {language} translation of the generated tables")
        return
    for chapter in sorted(SRC.rglob("*.md")):
        for line in chapter.read_text(encoding="utf-8").split("\n"):
            include = i18n_tables.INCLUDE.match(line)
            if not include or Path(include["path"]).name not in i18n_tables.GENERATED:
                continue
            source = (chapter.parent / include["path"]).resolve()
            where = f"{chapter.relative_to(ROOT)}: {source.relative_to(ROOT)}"
            missing = []
            english = source.read_text(encoding="utf-8")
            translated = i18n_tables.translate_file(english, table, missing)
            for text in dict.fromkeys(missing):
                problems.append(f"{where}: no {language} translation in tools/i18n_tables.py of {text[:80]!r}")
            page = BUILD / chapter.relative_to(SRC).with_suffix(".html")
            if not page.is_file():
                problems.append(f"{where}: {page.relative_to(ROOT)} not built")
                continue
            shown = page_text(page.read_text(encoding="utf-8"))
            shown_english = []
            for old, new in zip(english.split("\n"), translated.split("\n")):
                cells_old, cells_new = old.split("|"), new.split("|")
                pairs = zip(cells_old, cells_new) if len(cells_old) == len(cells_new) else [(old, new)]
                for cell_old, cell_new in pairs:
                    if cell_old.strip() == cell_new.strip():
                        continue
                    for run in english_runs(cell_old):
                        # Names the translation keeps (AMD EPYC, MprpcChannel) are no sign.
                        if run in cell_new:
                            continue
                        if re.search(r"(?<![\w-])" + re.escape(run) + r"(?![\w-])", shown):
                            shown_english.append(run)
            for run in dict.fromkeys(shown_english):
                problems.append(f"{page.relative_to(ROOT)}: English of the generated table shown: {run!r}")


# Rejected variants of the terms settled in the glossary (issue #29): the
# Chinese edition says 集群, 套接字, 前导码, 日志输出端 ..., never these.
FORBIDDEN = {
    "zh-CN": [
        (r"集合（ensemble|ZooKeeper ?集合|节点集合|服务器组成的(?:<em>)?集合|集合的(?:任何客户端|全部成员)|启动集合",
         "a ZooKeeper ensemble is 集群, not 集合"),
        (r"(?<![\w-])[Ss]ockets?(?![\w-])(?!）)", "socket is 套接字 (socket stays only in code names)"),
        (r"(?<![\w</-])[Ss]pans?(?![\w-])(?!）)", "a tracing span is 跨度"),
        (r"前导(?!码)", "the preamble is 前导码"),
        (r"(?<![\w-])sinks?(?![\w-])(?!）)", "a log sink is 日志输出端"),
        (r"通道", "a channel (MprpcChannel, a queue between tasks) stays channel"),
        (r"格子", "the cell is 槽位"),
        (r"线路(?!类型)", "wire is 报文 (报文格式, 报文中); 线路 only in protobuf's 线路类型"),
        (r"(?<![\w-])wire type(?!）)", "protobuf's wire type is 线路类型"),
    ],
}


# The settled terms a chapter names with the English in parentheses where it
# first uses them (in the order of the PO, which is the chapter's order).
FIRST_USE = {
    "zh-CN": [("套接字", "socket"), ("跨度", "span"), ("前导码", "preamble"), ("日志输出端", "log sink")],
}


def check_first_use(problems, language, po_lines):
    first = {}  # (chapter, term) -> the msgstr that uses the term first
    chapter = None
    for number, line in enumerate(po_lines, 1):
        if line.startswith("#: ") and chapter is None:
            chapter = line[3:].split()[0].split(":")[0]
        if not line.startswith("msgstr "):
            continue
        here, chapter = chapter, None
        # The glossary names the English itself; an image's alt text is no place for it.
        if here is None or here.endswith("reference/glossary.md") or line.startswith('msgstr "!['):
            continue
        prose = re.sub(r"`[^`]*`|\]\([^)]*\)|<[^>]*>", "", line[len("msgstr "):])
        for term, english in FIRST_USE.get(language, []):
            if term in prose and (here, term) not in first:
                first[(here, term)] = (number, f"{term}（{english}" in line)
    for (here, term), (number, named) in sorted(first.items()):
        if not named:
            english = dict(FIRST_USE[language])[term]
            problems.append(f"book/po/{language}.po:{number}: first {term} of {here} without （{english}）")


def check_terms(problems, language):
    po = ROOT / "book" / "po" / f"{language}.po"
    rules = FORBIDDEN.get(language, [])
    check_first_use(problems, language, po.read_text(encoding="utf-8").split("\n"))
    where = []
    for number, line in enumerate(po.read_text(encoding="utf-8").split("\n"), 1):
        if line.startswith("#: "):
            where = [ref.split(":")[0] for ref in line[3:].split()]
        if not line.startswith("msgstr "):
            continue
        # The glossary's English column names the English terms themselves.
        if where and all(ref.endswith("reference/glossary.md") for ref in where):
            continue
        # Code spans, link targets and tags keep their names (`socket`, `Span`).
        prose = re.sub(r"`[^`]*`|\]\([^)]*\)|<[^>]*>", "", line[len("msgstr "):])
        for pattern, why in rules:
            if re.search(pattern, prose):
                problems.append(f"{po.relative_to(ROOT)}:{number}: {why}: {line[7:90]}")


def main():
    global BUILD
    if len(sys.argv) > 1:
        BUILD = Path(sys.argv[1]).resolve()
    problems = []
    check_includes(problems)
    check_fragments(problems)
    check_built(problems)
    if BUILD != ENGLISH:
        check_diagram_labels(problems, BUILD.name)
        check_generated_tables(problems, BUILD.name)
        check_terms(problems, BUILD.name)
    if problems:
        print("check_book: problems found:")
        for problem in problems:
            print("  " + problem)
        sys.exit(1)
    print(f"check_book: includes, anchors and links of {BUILD.relative_to(ROOT)} are sound")


if __name__ == "__main__":
    main()
