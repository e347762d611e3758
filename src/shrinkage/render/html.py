"""A standalone web page of a derivation: the Markdown of :mod:`.md`, as HTML with MathJax.

:func:`render_html` converts the Markdown that :func:`~.md.render_markdown` writes (a
small, known subset: headings, paragraphs, lists, tables, emphasis, code, links,
anchors and ``$$`` display blocks) to HTML; the maths is left for MathJax, configured for
``$...$`` inline maths and explicit ``\\tag`` numbers.  No Markdown library is needed.
"""

from __future__ import annotations

import html
import re

from .md import render_markdown

MATHJAX = """<script>
window.MathJax = {tex: {inlineMath: [['$', '$']], displayMath: [['$$', '$$']], tags: 'ams'}};
</script>
<script async src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>"""

_ANCHOR = re.compile(r'^<a id="([A-Za-z0-9_-]+)"></a>$')


def _inline(text: str) -> str:
    """Emphasis, code and links of one line of Markdown; maths ($...$) untouched."""
    out = []
    for k, part in enumerate(text.split("$")):
        if k % 2:
            out.append("$" + html.escape(part, quote=False) + "$")
            continue
        part = html.escape(part, quote=False).replace(r"\*", "&#42;")
        part = re.sub(r"`([^`]*)`", r"<code>\1</code>", part)
        part = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", part)
        part = re.sub(r"\*([^*]+)\*", r"<em>\1</em>", part)
        part = re.sub(r"\[([^\]]*)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', part)
        out.append(part)
    return "".join(out)


def _table(rows: list[str]) -> list[str]:
    cells = [[c.strip() for c in re.split(r"(?<!\\)\|", row.strip())[1:-1]] for row in rows]
    head, body = cells[0], cells[2:]
    out = ["<table>", "<tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in body]
    return out + ["</table>"]


def markdown_to_html(markdown: str) -> str:
    """The HTML body of Markdown written by :func:`~.md.render_markdown`."""
    lines, out, k = markdown.splitlines(), [], 0
    while k < len(lines):
        line = lines[k]
        if not line.strip():
            k += 1
        elif line == "$$":
            end = lines.index("$$", k + 1)
            out.append('<div class="equation">$$\n' + html.escape("\n".join(lines[k + 1:end]), quote=False) + "\n$$</div>")
            k = end + 1
        elif _ANCHOR.match(line):
            out.append(line)
            k += 1
        elif m := re.match(r"^(#{1,6}) (.*)$", line):
            level = len(m.group(1))
            out.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
            k += 1
        elif line.startswith("|"):
            end = k
            while end < len(lines) and lines[end].startswith("|"):
                end += 1
            out += _table(lines[k:end])
            k = end
        elif line.startswith("- "):
            items = []
            while k < len(lines) and lines[k].startswith("- "):
                items.append(f"<li>{_inline(lines[k][2:])}</li>")
                k += 1
            out += ["<ul>", *items, "</ul>"]
        else:
            para = []
            while k < len(lines) and lines[k].strip() and lines[k] != "$$" and not lines[k].startswith(("#", "|", "- ")):
                para.append(lines[k])
                k += 1
            out.append("<p>" + _inline(" ".join(para)) + "</p>")
    return "\n".join(out)


def render_html(obj) -> str:
    """A standalone HTML page of a derivation, checked or not (deterministic)."""
    markdown = render_markdown(obj, suffix=".html")
    title = re.match(r"^# (.*)$", markdown, re.M)
    head = html.escape(re.sub(r"[$*`]", "", title.group(1)) if title else "derivation")
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">', f"<title>{head}</title>", MATHJAX,
        "<style>body{max-width:52em;margin:2em auto;padding:0 1em;font-family:serif;line-height:1.45}"
        "table{border-collapse:collapse}td,th{border-bottom:1px solid #ccc;padding:.2em .6em;text-align:left}"
        ".equation{overflow-x:auto}</style>",
        "</head>", "<body>", markdown_to_html(markdown), "</body>", "</html>", ""])
