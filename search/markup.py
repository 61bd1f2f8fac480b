"""Marked-up text (Markdown, reStructuredText, HTML) -> plain text with its section structure.

Each format is parsed with a maintained parser (markdown-it-py, docutils, lxml through html-text)
into blocks: headings, text and code. ``assemble`` joins the blocks into the document's text and
records its sections: where each starts and ends, its heading path, and whether it is code. Markup
never reaches the text: no emphasis marks, roles, directives, labels or link targets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Joins the parts of a section path.
PATH_SEPARATOR = " > "


@dataclass
class Block:
    text: str
    kind: str = "text"  # "text", "code" or "heading"
    level: int = 0  # of a heading: 1 for the top


@dataclass(frozen=True)
class Section:
    """A span of a document's text under one heading path: prose or one code block."""

    start: int
    end: int
    path: str = ""  # the headings above it, outermost first, without the document's title
    code: bool = False


@dataclass
class Structured:
    text: str
    title: str
    sections: list[Section]


def assemble(blocks: list[Block]) -> Structured:
    """The text of ``blocks`` (paragraphs apart by a blank line) and its sections.

    The first top-level heading is the title. A heading starts a section of prose holding the
    heading and the paragraphs after it; each code block is a section of its own; a heading
    directly followed by another heading joins the section that follows.
    """
    blocks = [b for b in blocks if b.text.strip()]
    top = min((b.level for b in blocks if b.kind == "heading"), default=0)
    title = next((b.text for b in blocks if b.kind == "heading" and b.level == top), "")
    parts: list[str] = []
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    at = 0
    pending_heading: int | None = None  # start of a heading that has no body yet
    for block in blocks:
        text = block.text.strip("\n")
        if parts:
            at += 2  # the blank line between blocks
        start, end = at, at + len(text)
        parts.append(text)
        at = end
        if block.kind == "heading":
            stack = [(lvl, t) for lvl, t in stack if lvl < block.level] + [(block.level, " ".join(text.split()))]
            if pending_heading is None:
                pending_heading = start
            continue
        path = PATH_SEPARATOR.join(t for lvl, t in stack if not (lvl == top and t == title))
        code = block.kind == "code"
        if pending_heading is not None and not code:
            start, pending_heading = pending_heading, None
        elif pending_heading is not None:  # a heading with only code below: it stands alone
            sections.append(Section(pending_heading, start - 2, path))
            pending_heading = None
        previous = sections[-1] if sections else None
        if previous and not code and not previous.code and previous.path == path and previous.end + 2 == start:
            sections[-1] = Section(previous.start, end, path)
        else:
            sections.append(Section(start, end, path, code))
    if pending_heading is not None:
        path = PATH_SEPARATOR.join(t for lvl, t in stack if not (lvl == top and t == title))
        sections.append(Section(pending_heading, at, path))
    return Structured("\n\n".join(parts), title, sections)


# --- Markdown --------------------------------------------------------------------------------------

_FRONT_MATTER = re.compile(r"\A---\s*\n.*?\n---\s*\n", re.S)
_MYST_LABEL = re.compile(r"^\([\w.:-]+\)=$")
_MYST_ROLE = re.compile(r"\{[\w:.-]+\}$")
_MYST_CODE = ("{code-block}", "{code}", "{sourcecode}", "{literalinclude}")
_LINK_TARGET = re.compile(r"\s*<[^<>]*>$")


def markdown_blocks(source: str) -> list[Block]:
    """Blocks of a Markdown (CommonMark, GitHub tables, MyST labels and directives) text."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(_FRONT_MATTER.sub("", source))
    blocks: list[Block] = []
    row: list[str] = []
    table: list[str] = []
    for i, token in enumerate(tokens):
        if token.type == "inline" and tokens[i - 1].type == "heading_open":
            blocks.append(Block(_inline_text(token.children), "heading", int(tokens[i - 1].tag[1])))
        elif token.type == "inline" and tokens[i - 1].type in ("th_open", "td_open"):
            row.append(_inline_text(token.children))
        elif token.type == "inline":
            text = _inline_text(token.children)
            if not _MYST_LABEL.match(text.strip()):
                blocks.append(Block(text))
        elif token.type in ("fence", "code_block"):
            info = token.info.strip()
            if info.startswith("{") and not info.startswith(_MYST_CODE):  # a MyST directive: its content is prose
                body = "\n".join(line for line in token.content.splitlines() if not line.startswith(":"))
                blocks += markdown_blocks(body)
            else:
                blocks.append(Block(token.content.rstrip("\n"), "code"))
        elif token.type == "html_block":
            blocks += [Block(p) for p in _html_paragraphs(token.content)]
        elif token.type == "tr_close":
            table.append(" | ".join(row))
            row = []
        elif token.type == "table_close":
            blocks.append(Block("\n".join(table)))
            table = []
    return blocks


def _inline_text(children) -> str:
    """The visible text of inline tokens: no emphasis marks, link targets or inline HTML."""
    out: list[str] = []
    for child in children or []:
        if child.type == "text":
            out.append(child.content)
        elif child.type == "code_inline":
            if out and _MYST_ROLE.search(out[-1]):  # a MyST role: {ref}`text <target>`
                out[-1] = _MYST_ROLE.sub("", out[-1])
                out.append(_LINK_TARGET.sub("", child.content))
            else:
                out.append(child.content)
        elif child.type == "softbreak":
            out.append(" ")
        elif child.type == "hardbreak":
            out.append("\n")
        elif child.type == "image":
            out.append(_inline_text(child.children))
    return "".join(out).strip()


def _html_paragraphs(html: str) -> list[str]:
    import html_text

    return [p for p in html_text.extract_text(html).split("\n\n") if p.strip()]


# --- reStructuredText ------------------------------------------------------------------------------

def rst_blocks(source: str) -> list[Block]:
    """Blocks of a reStructuredText text, Sphinx's directives and roles included (as plain text)."""
    from docutils.core import publish_doctree

    _register_sphinx_markup()
    settings = {"report_level": 5, "halt_level": 5, "doctitle_xform": False, "file_insertion_enabled": False,
                "raw_enabled": False, "warning_stream": False, "input_encoding": "unicode"}
    tree = publish_doctree(source, settings_overrides=settings)
    blocks: list[Block] = []
    _walk_rst(tree, blocks, level=0)
    return blocks


def _walk_rst(node, blocks: list[Block], level: int) -> None:
    from docutils import nodes

    for child in node.children:
        if isinstance(child, nodes.section):
            title = child.next_node(nodes.title)
            if title is not None:
                blocks.append(Block(_rst_text(title), "heading", level + 1))
            _walk_rst(child, blocks, level + 1)
        elif isinstance(child, (nodes.title, nodes.system_message, nodes.comment, nodes.target, nodes.raw,
                                nodes.substitution_definition, nodes.pending, nodes.Invisible)):
            continue
        elif isinstance(child, (nodes.literal_block, nodes.doctest_block)):
            blocks.append(Block(child.astext(), "code"))
        elif isinstance(child, (nodes.paragraph, nodes.term, nodes.rubric, nodes.line_block, nodes.attribution)):
            blocks.append(Block(_rst_text(child)))
        elif isinstance(child, nodes.field):
            name, body = child.children[0], child.children[1]
            blocks.append(Block(_field_name(_rst_text(name)) + ": " + " ".join(_rst_text(p) for p in body.children)))
        elif isinstance(child, nodes.table):
            rows = [" | ".join(" ".join(_rst_text(p) for p in entry.children) for entry in row.children)
                    for row in child.findall(nodes.row)]
            blocks.append(Block("\n".join(rows)))
        elif isinstance(child, nodes.Element):
            _walk_rst(child, blocks, level)


_LEFTOVER_ROLE = re.compile(r":[\w:+.-]+:`([^`]*)`")


#: Sphinx's info fields (``:param int timeout:``...) as Sphinx words them.
_INFO_FIELDS = {"param": "", "parameter": "", "arg": "", "argument": "", "key": "", "keyword": "",
                "type": "type of", "raises": "Raises", "raise": "Raises", "except": "Raises", "exception": "Raises",
                "returns": "Returns", "return": "Returns", "rtype": "Return type", "var": "", "ivar": "", "cvar": "",
                "vartype": "type of"}


def _field_name(name: str) -> str:
    """``param int timeout`` -> ``timeout (int)``, ``type database`` -> ``type of database``,
    ``raises ValueError`` -> ``Raises ValueError``; other field names stay."""
    kind, *rest = name.split()
    if kind not in _INFO_FIELDS:
        return name
    word = _INFO_FIELDS[kind]
    if not word and rest:
        return rest[-1] + (f" ({' '.join(rest[:-1])})" if len(rest) > 1 else "")
    return " ".join([word or kind.capitalize(), *rest])


def _rst_text(node) -> str:
    """Visible text of an inline subtree (a role docutils did not know keeps only its content)."""
    from docutils import nodes

    if isinstance(node, nodes.problematic):
        return _LEFTOVER_ROLE.sub(lambda m: _role_title(m.group(1)), node.astext())
    if isinstance(node, nodes.Text):
        return str(node)
    if isinstance(node, nodes.paragraph):
        return " ".join("".join(_rst_text(c) for c in node.children).split())
    if isinstance(node, nodes.TextElement):  # inline markup, a line: its pieces run together
        return "".join(_rst_text(c) for c in node.children)
    return " ".join(t for t in (_rst_text(c) for c in node.children) if t)  # lines, list items: apart


def _role_title(text: str) -> str:
    """What Sphinx shows for a role's text: ``Title <target>`` -> Title, ``~a.b.c`` -> c, ``!x`` -> x."""
    text = _LINK_TARGET.sub("", text) if text.endswith(">") and "<" in text else text
    if text.startswith("~"):
        text = text[1:].rsplit(".", 1)[-1]
    return text.lstrip("!")


_SPHINX_ROLES = """abbr attr c:data c:expr c:func c:macro c:member c:type c:var class code command const cpp:class
cpp:func cpp:member cpp:type data dfn doc download envvar exc file func gh guilabel issue kbd keyword mailheader
makevar manpage menuselection meth mimetype mod newsgroup numref obj opcode option pep program py:attr py:class
py:data py:exc py:func py:meth py:mod py:obj ref regexp rfc samp source term token""".split()
_PYTHON_OBJECT_ROLES = {"attr", "class", "const", "data", "exc", "func", "function", "meth", "mod", "obj"}
#: Directives whose content is prose, and those that show nothing.
_SPHINX_BODY = """admonition attention audit-event-table availability caution centered compound container danger
deprecated deprecated-removed epigraph error glossary hint highlights hlist impl-detail important note only
seealso sidebar tip topic versionadded versionchanged warning ifconfig tab tabs""".split()
_SPHINX_CODE = "code code-block sourcecode doctest testcode testoutput testsetup productionlist".split()
_SPHINX_DESCRIPTIONS = """function method class attribute data exception decorator decoratormethod staticmethod
classmethod coroutinefunction coroutinemethod abstractmethod describe option cmdoption envvar opcode pdbcommand
c:function c:type c:macro c:member c:var c:struct cpp:class cpp:function cpp:member cpp:type py:function
py:method py:class py:attribute py:data py:exception py:module program""".split()
_SPHINX_HIDDEN = """toctree index highlight literalinclude module currentmodule sectionauthor moduleauthor codeauthor
tabularcolumns include automodule autoclass autofunction automethod autoattribute autodata autoexception
autosummary audit-event default-role default-domain""".split()
_registered = False


def _register_sphinx_markup() -> None:
    """Teach docutils Sphinx's roles and directives, as plain text (docutils keeps one registry)."""
    global _registered
    if _registered:
        return
    from docutils import nodes
    from docutils.parsers.rst import Directive, directives, roles

    def role(name, rawtext, text, lineno, inliner, options=None, content=None):
        shown = _role_title(text)
        kind = name.rsplit(":", 1)[-1]
        if kind in _PYTHON_OBJECT_ROLES and "<" not in text:
            shown = shown.lstrip(".")  # a leading dot only says where to look: :class:`.datetime` shows datetime
        if kind in ("func", "meth", "function") and not shown.endswith(")"):
            shown += "()"  # as Sphinx shows functions and methods
        return [nodes.literal(rawtext, shown)], []

    class AnyOptions(dict):
        """Every option accepted as text (Sphinx's directives have many)."""

        def __getitem__(self, key):
            return directives.unchanged

        def __bool__(self):
            return True

    for name in _SPHINX_ROLES:
        roles.register_local_role(name, role)

    class Body(Directive):
        """The directive's argument as a paragraph (a signature as it is, other text with its markup
        parsed; a version directive's version as Sphinx words it), then its content."""

        optional_arguments, final_argument_whitespace, has_content = 1, True, True
        option_spec = AnyOptions()
        versions = {"versionadded": "New in version", "versionchanged": "Changed in version",
                    "deprecated": "Deprecated since version", "deprecated-removed": "Deprecated since version"}

        def run(self):
            container = nodes.container()
            argument = self.arguments[0] if self.arguments else ""
            if self.name in _SPHINX_DESCRIPTIONS:
                container += nodes.paragraph(text=" ".join(re.sub(r"\\\n", " ", argument).split()))
            elif argument:
                lead = ""
                if self.name in self.versions:
                    version, _, argument = argument.partition(" ") if " " in argument.split("\n")[0] else argument.partition("\n")
                    lead = f"{self.versions[self.name]} {version}: "
                inline, _ = self.state.inline_text(" ".join(argument.split()), self.lineno)
                container += nodes.paragraph("", lead, *inline)
            self.state.nested_parse(self.content, self.content_offset, container)
            return [container]

    class Code(Directive):
        optional_arguments, final_argument_whitespace, has_content = 1, True, True
        option_spec = AnyOptions()

        def run(self):
            return [nodes.literal_block(text="\n".join(self.content))] if self.content else []

    class Hidden(Directive):
        optional_arguments, final_argument_whitespace, has_content = 1, True, True
        option_spec = AnyOptions()

        def run(self):
            return []

    for names, cls in ((_SPHINX_BODY, Body), (_SPHINX_DESCRIPTIONS, Body), (_SPHINX_CODE, Code), (_SPHINX_HIDDEN, Hidden)):
        for name in names:
            directives.register_directive(name, cls)
    _registered = True


# --- HTML -------------------------------------------------------------------------------------------

_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_BLOCK_TAGS = set(_HEADINGS) | set("""address article aside blockquote body caption dd details dialog div dl dt
fieldset figcaption figure footer form header hr li main nav ol p pre section summary table tbody td tfoot th
thead tr ul""".split())
_HIDDEN_TAGS = {"script", "style", "noscript", "template", "svg", "nav", "header", "footer", "aside", "form",
                "button", "select", "head", "title"}
#: Page furniture of documentation sites (Sphinx, MkDocs): sidebars, breadcrumbs, permalinks.
_HIDDEN_CLASSES = {"headerlink", "sphinxsidebar", "related", "footer", "navigation", "breadcrumbs", "toctree-wrapper",
                   "sidebar", "md-sidebar", "md-header", "md-footer", "skip-link"}
#: Where the content is, on pages that mark it: the first of these that matches.
_MAIN = ("//*[@role='main']", "//main", "//article", "//div[contains(concat(' ', @class, ' '), ' body ')]")


def html_blocks(tree) -> list[Block]:
    """Blocks of a parsed HTML page (an lxml tree): its main content when the page marks it."""
    root = next((found[0] for xpath in _MAIN if (found := tree.xpath(xpath))), None)
    if root is None:
        body = tree.find(".//body")
        root = body if body is not None else tree
    blocks: list[Block] = []
    _walk_html(root, blocks)
    return blocks


def _hidden(element) -> bool:
    if not isinstance(element.tag, str) or element.tag in _HIDDEN_TAGS:
        return True
    classes = set((element.get("class") or "").split())
    return bool(classes & _HIDDEN_CLASSES) or element.get("role") == "navigation" or element.get("hidden") is not None


def _walk_html(element, blocks: list[Block]) -> None:
    tag = element.tag
    if tag in _HEADINGS:
        blocks.append(Block(_inline_html(element), "heading", _HEADINGS[tag]))
    elif tag == "pre":
        blocks.append(Block(element.text_content().strip("\n"), "code"))
    elif tag == "tr":
        blocks.append(Block(" | ".join(_inline_html(cell) for cell in element if isinstance(cell.tag, str) and not _hidden(cell))))
    elif not any(isinstance(c.tag, str) and c.tag in _BLOCK_TAGS and not _hidden(c) for c in element):
        blocks.append(Block(_inline_html(element)))
    else:  # runs of text and inline elements between the block children
        run = [element.text or ""]
        for child in element:
            if _hidden(child):
                run.append(child.tail or "")
            elif child.tag in _BLOCK_TAGS:
                blocks.append(Block(" ".join("".join(run).split())))
                _walk_html(child, blocks)
                run = [child.tail or ""]
            else:
                run += [_inline_html(child, keep_space=True), child.tail or ""]
        blocks.append(Block(" ".join("".join(run).split())))


def _inline_html(element, keep_space: bool = False) -> str:
    """The visible text of an element and its inline children (hidden parts left out)."""
    parts = [element.text or ""]
    for child in element:
        if not _hidden(child):
            parts.append(_inline_html(child, keep_space=True) if child.tag != "br" else "\n")
        parts.append(child.tail or "")
    text = "".join(parts)
    return text if keep_space else " ".join(text.split())
