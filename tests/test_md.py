"""Notebooks and the web: a derivation, checked or not, shows itself as Markdown with
MathJax-ready equations; every tag and cross-reference is resolved by the toolkit
(anchors and links, no \\ref left), each step carries its reason and its verdict, and
the maths uses only what MathJax knows (and compiles with LaTeX)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from shrinkage.derive import Derivation, Equals, Premise, Statement, check
from shrinkage.render.md import render_latex_display, render_markdown
from shrinkage.render.notebook import register
from shrinkage.render.preamble import PREAMBLE
from shrinkage.symbols import n, sigma2, sigma_b2

# Commands of MathJax 3's default TeX input (base, ams, newcommand, noundefined, autoload-ed
# packages) that the renderer may emit; anything else could print as red text on a web page.
MATHJAX = set("""
frac tfrac dfrac sqrt left right bigl bigr Bigl Bigr biggl biggr Biggl Biggr big Big vphantom phantom
sum prod int log exp cosh sinh tanh binom max min lim sup inf operatorname mathrm mathbf mathsf mathit mathcal text textbf textit
alpha beta gamma delta epsilon varepsilon lambda mu nu pi rho sigma tau phi chi psi omega ell Gamma Delta
Lambda Sigma Omega Phi Psi Theta theta eta zeta xi kappa iota upsilon
bar hat tilde vec dot ddot overline underline widehat widetilde
cdot times pm mp le leq ge geq ne neq to approx sim equiv mid in infty partial nabla dots ldots cdots prime
mathrel xrightarrow quad qquad begin end aligned cases tag limits nolimits top substack
mapsto rightarrow leftarrow Rightarrow vert lvert rvert lVert rVert langle rangle propto ll gg forall exists
emptyset mathbb boldsymbol overbrace underbrace displaystyle textstyle scriptstyle middle neg cap cup subset
setminus circ colon det arg dim ker Pr ln sin cos hspace mathstrut otimes oplus
""".split())


def commands(maths: str) -> set[str]:
    return set(re.findall(r"\\([A-Za-z]+)", maths))


def display_blocks(markdown: str) -> list[str]:
    return re.findall(r"^\$\$\n(.*?)\n\$\$$", markdown, re.S | re.M)


def toy() -> Derivation:
    model = Statement("toy", sigma_b2 / (sigma_b2 + sigma2 / n), r"\lambda_j", r"the toy model's statement")
    return Derivation("toy", "Toy", r"A toy; see \eqref{@ratio}.").then(
        Premise.of(model),
        Equals(1 / (1 + sigma2 / (n * sigma_b2)), why=r"divide by $\sigma_b^2$"),
        Equals(n * sigma_b2 / (n * sigma_b2 + sigma2), why=r"multiply by $n_j$",
               label="ratio"),
    )


@pytest.fixture(scope="module")
def markdown(checked):
    """Every derivation's Markdown, rendered once for the tests that read it."""
    return {name: render_markdown(cd) for name, cd in checked.items()}


def test_every_step_has_its_reason_verdict_tag_and_anchor(checked, markdown):
    for name, cd in checked.items():
        md = markdown[name]
        blocks = display_blocks(md)
        assert len(blocks) == len(cd.steps), name
        for cs, block in zip(cd.steps, blocks):
            assert block.strip().endswith(rf"\tag{{{cs.number}}}") and r"\begin{aligned}" in block
            assert f'<a id="{name}-{cs.number}"></a>' in md
        notes = re.findall(r"^\*\*Step (\d+)\.\*\* .* \*\[(.*)\]\*$", md, re.M)
        assert [int(k) for k, _ in notes] == [cs.number for cs in cd.steps], name
        for (_, verdict), cs in zip(notes, cd.steps):
            if cs.verdict.symbolic is True:
                assert verdict.startswith("SymPy: proved")
            elif cs.verdict.symbolic is None:
                assert "numeric check only" in verdict


def test_references_are_resolved_to_links_to_anchors_that_exist(markdown):
    for name, md in markdown.items():
        assert not re.search(r"\\(eq)?ref\{|\\label\{", md), name
        anchors = set(re.findall(r'<a id="([^"]+)"></a>', md))
        for target in re.findall(r"\]\(#([^)]+)\)", md):
            assert target in anchors, (name, target)


def test_maths_uses_only_what_mathjax_knows(markdown):
    for name, md in markdown.items():
        maths = "\n".join(display_blocks(md)) + "\n".join(re.findall(r"\$([^$\n]+)\$", md))
        assert commands(maths) <= MATHJAX, (name, sorted(commands(maths) - MATHJAX))


def test_the_display_maths_compiles(markdown, tmp_path, requires_tex):
    """MathJax's subset is LaTeX: each display block, as an equation*, compiles."""
    blocks = [b for md in markdown.values() for b in display_blocks(md)]
    body = "\n".join(rf"\begin{{equation*}}{b}\end{{equation*}}" for b in blocks)
    (tmp_path / "md.tex").write_text(PREAMBLE + "\\begin{document}\n" + body + "\n\\end{document}\n")
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "md.tex"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-2000:]


def shown(obj) -> dict:
    """What Jupyter shows for ``obj``: IPython's own formatter, taught by render.notebook."""
    from IPython.core.formatters import DisplayFormatter

    formatter = DisplayFormatter()
    register(formatter)
    return formatter.format(obj)[0]


def test_an_unchecked_derivation_displays_itself_as_unchecked():
    d = toy()
    md = shown(d)["text/markdown"]
    assert md == render_markdown(d)
    assert "Not checked yet" in md and "*[not checked yet]*" in md and "*[premise (model statement)]*" in md
    assert "see [(3)](#toy-3)" in md
    latex = shown(d)["text/latex"]
    assert latex == render_latex_display(d) and latex.startswith("$$\n\\begin{aligned}")
    assert latex.count(r"\textbf{") == len(d.steps) and "not checked yet" in latex


def test_a_checked_derivation_displays_its_verdicts():
    cd = check(toy().then(Equals(sigma_b2 / (sigma_b2 + sigma2 / n), why=r"back to \eqref{@ratio}'s start")))
    md = shown(cd)["text/markdown"]
    assert md == render_markdown(cd) and "Not checked yet" not in md
    assert "*[SymPy: proved; mpmath: 24 random points, 50 digits]*" in md
    assert "back to [(3)](#toy-3)'s start" in md
    assert "## Premises" in md and "the toy model's statement; stated as [(1)](#toy-1)." in md
    assert "## How the steps were checked" in md and "[(1)](#toy-1)" in md.split("## How the steps")[1]
    assert "not checked yet" not in shown(cd)["text/latex"]
    assert render_markdown(cd) == md  # deterministic


def test_a_notebook_shows_derivations_once_shrinkage_is_imported():
    """Inside a running IPython shell ``import shrinkage`` registers the display (and
    loads no SymPy); derive itself has no _repr_ methods that would import render."""
    script = (
        "import sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()\n"
        "import shrinkage\n"
        "assert 'sympy' not in sys.modules\n"
        "from shrinkage.derive import Derivation, Equals\n"
        "from shrinkage.symbols import n\n"
        "d = Derivation('t', 'T', 's').then(Equals(2 * n, why='twice'))\n"
        "assert not hasattr(d, '_repr_markdown_')\n"
        "data = shell.display_formatter.format(d)[0]\n"
        "from shrinkage.render.md import render_markdown\n"
        "assert data['text/markdown'] == render_markdown(d), data\n"
        "print('shown')\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout == "shown\n", run.stderr[-2000:]


def test_a_web_page_with_mathjax(checked):
    from html.parser import HTMLParser

    from shrinkage.render.html import render_html

    class Links(HTMLParser):
        def __init__(self):
            super().__init__()
            self.ids, self.hrefs, self.open = set(), [], []

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            self.ids |= {attrs["id"]} if "id" in attrs else set()
            self.hrefs += [attrs["href"]] if "href" in attrs else []
            if tag not in ("meta", "br"):
                self.open.append(tag)

        def handle_endtag(self, tag):
            assert self.open and self.open.pop() == tag, tag

    for name, cd in checked.items():
        page = render_html(cd)
        assert "MathJax" in page and "<table>" in page
        if name in ("blup", "lmm_blup"):  # deterministic (a scalar and a matrix one; building twice compares all)
            assert page == render_html(cd)
        parser = Links()
        parser.feed(page)
        assert parser.open == [], name  # every element closed, in order
        assert all(h[1:] in parser.ids for h in parser.hrefs if h.startswith("#")), name
        body = page.split("<body>")[1]
        assert "**" not in re.sub(r"\$\$.*?\$\$|\$[^$]*\$", "", body, flags=re.S), name
        assert body.count(r"\tag{") == len(cd.steps)


def test_a_step_cited_from_another_document_links_to_it():
    source = toy()
    d = Derivation("dst", "Dst", r"Cites \eqref{@toy:ratio}.").cite(source, "ratio", r"\lambda_j", "from toy")
    d = d.then(Equals(sigma_b2 / (sigma_b2 + sigma2 / n), why="back"))
    cd = check(d)
    md = render_markdown(cd)
    assert "[(toy 3)](toy.md#toy-3)" in md  # the summary's reference, and the verdict of the citation
    assert "restates eq. [(toy 3)](toy.md#toy-3)" in md
    assert "toy.html#toy-3" in render_markdown(cd, suffix=".html")
