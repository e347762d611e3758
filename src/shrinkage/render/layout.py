"""Equations that fit the page: long right-hand sides break at + and - and keep their alignment.

An equation is printed as SymPy prints it when it fits.  When it does not, its
expression is read as a tree of places where a line may end: between the terms of a
sum, also inside the parentheses of a factor or of a summand (which then get fixed-size
delimiters, \\biggl( ... \\biggr), since \\left ... \\right cannot span lines).  Lines are
filled greedily; continuation lines start after the relation, indented by \\qquad.  A
left-hand side too wide to leave room for the right one gets a line of its own
(\\MoveEqLeft).  Widths come from :mod:`.measure`, with a safety margin.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp
from sympy.simplify import fraction

from .measure import width
from .tex import LINEWIDTH_EM, ShrinkagePrinter, printer

SAFETY = 0.93  # share of the line the estimated width may fill
LHS_SHARE = 0.32  # a left-hand side wider than this share of the line gets a line of its own
CONTINUATION = r"\qquad"  # indent of continuation lines after the alignment point
CONTINUATION_EM = 2.0
TAG_GAP_EM = 1.0  # space kept between the formula and its equation number
WIDE_DENOMINATOR_EM = 12.0  # a fraction with a denominator this wide breaks as (numerator) / (denominator)
TAG_RESERVE_EM = 4.0  # room kept for a tag; amsmath sets a wider tag ("(shrinkage_facts 19)") below its line


@dataclass
class Node:
    """A piece of an equation: ``flat`` is its LaTeX on one line; ``parts``, when it may
    break, the pieces in order; ``break_before`` whether a line may end just before it."""

    flat: str
    parts: list["Node"] | None = None
    break_before: bool = False
    opens: str = ""  # an opening parenthesis: the content its size is set by
    closes: bool = False  # a closing parenthesis

    @property
    def width(self) -> float:
        return width("{}" + self.flat)


def _leaf(text: str, break_before: bool = False) -> Node:
    return Node(text, None, break_before)


def _group(inner: Node) -> Node:
    """(inner), breakable inside when inner is.  Broken, each line's part of the
    parentheses is a \\left ... \\right pair sized by a \\vphantom of the whole content, so
    all parts have one size (\\left and \\right cannot span lines)."""
    flat = rf"\left({inner.flat}\right)"
    if inner.parts is None:
        return _leaf(flat)
    return Node(flat, [Node(rf"\left(\vphantom{{{inner.flat}}}", opens=inner.flat), *inner.parts,
                       Node(r"\right)", closes=True)])


def _seq(parts: list[Node], flat: str | None = None) -> Node:
    return Node(flat if flat is not None else " ".join(p.flat for p in parts), parts)


def tree(expr: sp.Basic, p: ShrinkagePrinter) -> Node:
    """The breakable reading of ``expr``; ``flat`` is always the printer's own output."""
    flat = p._print(expr)
    if isinstance(expr, sp.Add):
        parts = []
        for k, term in enumerate(p._as_ordered_terms(expr, order=None)):
            op = ""
            if k:
                op = "- " if term.could_extract_minus_sign() else "+ "
                term = -term if op == "- " else term
            node = tree(term, p)
            if p._needs_add_brackets(term):
                node = _group(node)
            if op:
                node = Node(op + node.flat, [_leaf(op.strip()), *(node.parts or [node])], True)
            parts.append(node)
        return _seq(parts, flat)
    if isinstance(expr, sp.Sum) and len(expr.limits) == 1:
        head = r"\sum_{%s=%s}^{%s}" % tuple(p._print(x) for x in expr.limits[0])
        body = tree(expr.function, p)
        body = _group(body) if isinstance(expr.function, sp.Add) else body
        return _seq([_leaf(head), *(body.parts or [body])], flat)
    if isinstance(expr, sp.Mul):
        return _product(expr, flat, p)
    return _leaf(flat)


def _factors(expr: sp.Expr, p: ShrinkagePrinter) -> list[Node]:
    """The factors of a product, each breakable where it can be; sums in parentheses."""
    factors = expr.args if isinstance(expr, sp.Mul) else (expr,)
    parts = []
    for k, f in enumerate(factors):
        node = tree(f, p)
        if p._needs_mul_brackets(f, first=k == 0, last=k == len(factors) - 1):
            node = _group(node)
        parts.append(node)
    return parts


def _product(expr: sp.Mul, flat: str, p: ShrinkagePrinter) -> Node:
    """A product that may break inside a factor.  A fraction whose numerator is long is
    read as (coefficient / denominator) times the numerator's factors; one whose
    denominator is long too, as (numerator) / (denominator), breakable at the slash."""
    sign = ""
    if expr.could_extract_minus_sign():
        sign, expr = "- ", -expr
    if not isinstance(expr, (sp.Mul, sp.Pow)):
        inner = tree(expr, p)
        if isinstance(expr, sp.Add):
            inner = _group(inner)
        return Node(flat, [_leaf(sign.strip()), *(inner.parts or [inner])]) if sign and inner.parts else _leaf(flat)
    numer, denom = fraction(expr, exact=True)
    head = []
    if denom != 1 and width(p._print(denom)) > WIDE_DENOMINATOR_EM:
        top, bottom = _group(tree(numer, p)), _group(tree(denom, p))
        return Node(flat, [*([_leaf(sign.strip())] if sign else []), top, _leaf(r"\Big/", True), bottom])
    if denom != 1:
        coeff, numer = numer.as_coeff_Mul() if isinstance(numer, sp.Mul) else (sp.S.One, numer)
        head = [_leaf(sign + r"\frac{%s}{%s}" % (p._print(coeff), p._print(denom)))]
    elif sign:
        head = [_leaf(sign.strip())]
    factors = _factors(numer, p)
    if all(f.parts is None for f in factors):
        return _leaf(flat)
    return Node(flat, head + factors)


@dataclass
class _Filler:
    """Greedy filling of lines with the pieces of one right-hand side."""

    first: float
    rest: float
    lines: list[list[str]] = field(default_factory=lambda: [[]])
    used: float = 0.0
    open: list[str] = field(default_factory=list)  # the parentheses open at this point

    @property
    def limit(self) -> float:
        return self.first if len(self.lines) == 1 else self.rest

    def newline(self) -> None:
        if any(not x.startswith(r"\left.") for x in self.lines[-1]):
            self.lines[-1].append(r"\right." * len(self.open))
            self.lines.append([rf"\left.\vphantom{{{content}}}" for content in self.open])
            self.used = 0.0

    def add(self, node: Node) -> None:
        self.lines[-1].append(node.flat)
        self.used += node.width
        if node.opens:
            self.open.append(node.opens)
        if node.closes:
            self.open.pop()

    def place(self, node: Node) -> None:
        w = node.width
        if self.used + w <= self.limit:
            return self.add(node)
        if node.break_before and self.used > 0 and (w <= self.rest or node.parts is None
                                                    or self.used > 0.5 * self.limit):
            self.newline()
            if w <= self.limit or node.parts is None:
                return self.add(node)
        if node.parts is None:
            return self.add(node)  # cannot break: the line runs long (the TeX log test finds it)
        for part in node.parts:
            self.place(part)


def break_lines(expr: sp.Expr, first: float, rest: float, notation=None) -> list[str]:
    """The LaTeX of ``expr`` in lines of at most ``first`` em (the first) and ``rest`` em."""
    filler = _Filler(first, rest)
    filler.place(tree(expr, printer(notation)))
    return [" ".join(x for x in line if x) for line in filler.lines if line]


@dataclass(frozen=True)
class Row:
    """One numbered equation of an align block: ``lhs rel rhs`` and what follows it on its
    line (``end``: \\label, \\tag), preceded by ``before`` (an \\intertext, or '')."""

    lhs: str
    rel: str
    rhs: sp.Expr | str
    end: str = ""
    tag_em: float = 2.5  # width of the equation number, "(12)"
    before: str = ""


def align_lines(rows: list[Row], notation=None, linewidth: float = LINEWIDTH_EM) -> list[str]:
    """The body of an align environment for ``rows`` (printed in ``notation``, the
    project's when None): every line fits ``linewidth``."""
    budget = SAFETY * linewidth
    inline = [width(r.lhs) for r in rows if width(r.lhs) <= LHS_SHARE * linewidth]
    lhs_col = max(inline, default=0.0)
    out = []
    for row in rows:
        if row.before:
            out.append(row.before)
        rel_w = width("{}" + row.rel + "{}")
        room = budget - lhs_col - rel_w - min(row.tag_em, TAG_RESERVE_EM) - TAG_GAP_EM
        if isinstance(row.rhs, str):
            lines = [row.rhs]
        else:
            lines = break_lines(row.rhs, room, room - CONTINUATION_EM, notation)
        if width(row.lhs) > LHS_SHARE * linewidth:
            out.append(rf"\MoveEqLeft[3] {row.lhs} \notag\\")
            first = f"&{row.rel} {lines[0]}"
        else:
            first = f"{row.lhs} &{row.rel} {lines[0]}"
        numbered = [first] + [rf"&{CONTINUATION} {{}}{line}" for line in lines[1:]]
        for k, line in enumerate(numbered):
            last = k == len(numbered) - 1
            out.append(f"{line} {row.end}\\\\" if last else f"{line} \\notag\\\\")
    if out:
        out[-1] = out[-1][:-2]
    return out
