"""Every text a customer reads on a page is marked for translation: a template's text outside
``{% trans %}``/``_()`` and a script's sentence written into the page (instead of read from the page's
``#hutch-texts``) fail here, so the next forgotten string shows up in CI rather than in English on a
Spanish reader's screen (docs/languages.md)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from jinja2 import Environment, nodes

SRC = Path(__file__).resolve().parents[2] / "src" / "hutch"
# The admin console is the operator's own tool, in English by design (docs/languages.md).
UNTRANSLATED_DIRS = {"admin"}
# Names and units that read the same in every language Hutch speaks: products, and units of measure.
SAME_IN_EVERY_LANGUAGE = {"Telegram", "WhatsApp", "CPU", "KB", "MB", "ms", "min", "UTC"}
# Attributes whose values people read (or hear, with a screen reader).
READ_ATTRIBUTES = {"alt", "title", "placeholder", "aria-label", "data-confirm"}
# Where text is code, not words: samples, snippets, and the scripts' data.
CODE_TAGS = {"script", "style", "code", "pre", "kbd", "samp"}
VOID_TAGS = {"area", "base", "br", "col", "hr", "img", "input", "link", "meta", "source", "wbr"}
VALUE = "\ufffc"  # where an expression's value goes: not text of the template's own
WORD = re.compile(r"[A-Za-z]{2,}")
ATTRIBUTES_ONLY = re.compile(r'^\s*([\w-]+="[^"]*"\s*)+$')  # a macro's attributes, such as aria-invalid


def _flatten(node: nodes.Node, out: list[str]) -> None:
    """The template's own text in document order, each expression's value as ``VALUE``; a ``{% trans %}``
    block and ``_()`` are expressions (gettext calls), so their text is not the template's own."""
    if isinstance(node, nodes.TemplateData):
        out.append(node.data)
    elif isinstance(node, nodes.Output):
        for child in node.nodes:
            out.append(child.data if isinstance(child, nodes.TemplateData) else VALUE)
    else:
        for child in node.iter_child_nodes():
            _flatten(child, out)
            out.append(" ")  # the branches of an if, the body of a loop: apart, never one word


class _ReadText(HTMLParser):
    """The text nodes and read attributes of an HTML fragment, outside code."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID_TAGS:
            self.open.append(tag)
        self.found.extend(value for name, value in attrs if name in READ_ATTRIBUTES and value)

    def handle_endtag(self, tag: str) -> None:
        while self.open and self.open.pop() != tag:
            pass

    def handle_data(self, data: str) -> None:
        if not CODE_TAGS.intersection(self.open) and not ATTRIBUTES_ONLY.match(data):
            self.found.append(data)


def unmarked(text: str) -> bool:
    words = WORD.findall(text.replace(VALUE, " "))
    return any(word not in SAME_IN_EVERY_LANGUAGE for word in words)


def unmarked_texts(source: str) -> list[str]:
    environment = Environment(extensions=["jinja2.ext.i18n"])
    tree = environment.parse(source)
    fragments: list[list[str]] = []
    for macro in tree.find_all(nodes.Macro):  # a macro's body is a fragment of its own, where it is called
        fragments.append([])
        _flatten(macro, fragments[-1])
        macro.body = []
    fragments.append([])
    _flatten(tree, fragments[-1])
    found: list[str] = []
    for fragment in fragments:
        reader = _ReadText()
        reader.feed("".join(fragment))
        reader.close()
        found.extend(text.strip() for text in reader.found if unmarked(text))
    return found


# Where a script writes words into the page, and what it may write there: the page's own texts, read with
# ``say(key, english)`` (static/app.js), and placeholders such as ``{bot}`` that it fills in. String literals
# are set aside first (as ``\0<n>\0``), so a semicolon or a quote inside one does not end a statement.
LITERAL = re.compile(r"\"((?:[^\"\\\n]|\\.)*)\"|'((?:[^'\\\n]|\\.)*)'")
SET_ASIDE = re.compile(r"\0(\d+)\0")
WRITES = re.compile(
    r"(?:\.(?:textContent|innerText|innerHTML|alt|title|placeholder)\s*\+?=|createTextNode\(|confirm\(|alert\("
    r"|setAttribute\(\s*\0\d+\0\s*,)([^;]*)"
)
NOT_WRITTEN = re.compile(
    r"say\(\s*\0\d+\0\s*,\s*\0\d+\0\s*\)"  # the page's own text, English only when it is missing
    r"|[!=]==?\s*\0\d+\0|\0\d+\0\s*[!=]==?"  # compared with, not written
)
PLACEHOLDER = re.compile(r"\{[a-z_]+\}")
WRITTEN_ATTRIBUTES = {"aria-label", "title", "alt", "placeholder"}


def english_written(script: str) -> list[str]:
    """The string literals with words in them that a script writes into the page itself."""
    literals: list[str] = []

    def set_aside(match: re.Match[str]) -> str:
        literals.append(match.group(1) if match.group(1) is not None else match.group(2))
        return f"\0{len(literals) - 1}\0"

    code = LITERAL.sub(set_aside, script)
    found = []
    for write in WRITES.finditer(code):
        attribute = SET_ASIDE.search(write.group(0)[: write.start(1) - write.start(0)])
        if attribute is not None and literals[int(attribute.group(1))] not in WRITTEN_ATTRIBUTES:
            continue  # setAttribute of an attribute nobody reads
        for literal in SET_ASIDE.finditer(NOT_WRITTEN.sub("", write.group(1))):
            text = PLACEHOLDER.sub("", literals[int(literal.group(1))])
            if WORD.search(text):
                found.append(text)
    return found


def test_the_templates_mark_every_text_people_read() -> None:
    problems = []
    for path in sorted(SRC.rglob("*.html")):  # every template: the dashboard's, the public pages', emails'
        where = path.relative_to(SRC)
        if not UNTRANSLATED_DIRS.intersection(where.parts):
            problems.extend(f"{where}: {text!r}" for text in unmarked_texts(path.read_text()))
    assert not problems, "mark these with {% trans %} or _() (docs/languages.md):\n" + "\n".join(problems)


def test_the_scripts_write_only_the_pages_own_texts() -> None:
    problems = []
    # The widget (channels/webchat/static) gets its words with its configuration, WIDGET_TEXTS.
    for path in sorted((SRC / "web" / "static").glob("*.js")):
        problems.extend(f"{path.name}: {text!r}" for text in english_written(path.read_text()))
    assert not problems, (
        "give these to the script through SCRIPT_TEXTS (hutch/web/languages.py):\n" + "\n".join(problems)
    )


def test_the_checks_tell_marked_text_from_unmarked() -> None:
    assert unmarked_texts('<p>{{ _("Saved.") }} {% trans n=3 %}{{ n }} left{% endtrans %}</p>') == []
    assert unmarked_texts("<p>Telegram · {{ size }} MB · <code>POST /v1/chat</code></p>") == []
    assert unmarked_texts("<p>Saved {{ n }} items.</p>") == [f"Saved {VALUE} items."]
    assert unmarked_texts('<img src="/a.png" alt="The latest screen">') == ["The latest screen"]
    assert unmarked_texts("{% macro bad() %}<b>Oops</b>{% endmacro %}{{ bad() }}") == ["Oops"]
    assert english_written('el.textContent = say("copied", "Copied") + " · " + n;') == []
    assert english_written('el.textContent = say("step", "Step {step}").replace("{step}", n);') == []
    assert english_written('el.textContent = "Step " + n + " on " + url;') == ["Step ", " on "]
    assert english_written('img.setAttribute("alt", "A screen");') == ["A screen"]
    assert english_written('el.textContent = x === "failed" ? say("lost", "Lost; retry.") : "";') == []
    assert english_written('el.setAttribute("data-kind", "user message");') == []
