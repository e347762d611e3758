"""Notation: the symbols a derivation uses, passed in, never global.

A :class:`Quantity` says everything about one symbol: its code name (the SymPy name,
and the argument name in generated code), its LaTeX name, what it means, and its
*domain*: the SymPy assumptions it carries and how the numeric check samples it.
A :class:`Notation` is a table of quantities.  Each :class:`~shrinkage.derive.Derivation`
carries one, so two derivations that each declare a symbol of the same name do not
collide: each is checked (and printed) with its own table.

    >>> import sympy as sp
    >>> N = Notation([Quantity("s2j", r"s_j^2", "sampling variance of study j", "positive"),
    ...               Quantity("theta", r"\\theta_j", "true effect of study j", "real")])
    >>> N.symbol("s2j").is_positive
    True
    >>> N.quantity_of(N.symbol("theta")).latex
    '\\\\theta_j'
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

import sympy as sp

from ..errors import DerivationError

Sampler = Callable[[random.Random], sp.Expr]
"""Draws one exact SymPy number (Integer or Rational) from a ``random.Random``: exact
inputs, so that the 50-digit evaluation starts from exact values."""


def positive(rng: random.Random) -> sp.Expr:
    """Log-uniform on [1e-2, 1e2]: small and large variances alike."""
    return sp.Rational(10) ** sp.Rational(rng.randint(-200, 200), 100)


def real(rng: random.Random) -> sp.Expr:
    """Uniform on a grid of [-5, 5] with step 1/1000."""
    return sp.Rational(rng.randint(-5000, 5000), 1000)


def count(rng: random.Random) -> sp.Expr:
    """A group size: small and moderate counts (sums over it are written out)."""
    return sp.Integer(rng.choice([1, 2, 3, 4, 5, 7, 10, 25, 60]))


def few(rng: random.Random) -> sp.Expr:
    """A small count (number of groups), so sums over groups stay cheap to expand."""
    return sp.Integer(rng.randint(1, 4))


def several(rng: random.Random) -> sp.Expr:
    """A count of at least 2 (where mean squares divide by n - 1 and J - 1)."""
    return sp.Integer(rng.choice([2, 3, 4, 5, 7, 10]))


def unit(rng: random.Random) -> sp.Expr:
    """Strictly inside (0, 1): weights such as a shrinkage factor."""
    return sp.Rational(rng.randint(1, 999), 1000)


@dataclass(frozen=True)
class Domain:
    """Where a symbol lives: SymPy assumptions (what the symbolic check may use) and a
    sampler (where the numeric check looks).  The two must agree: a sampler drawing
    outside the assumptions would check a claim SymPy was not asked about."""

    name: str
    sampler: Sampler = field(compare=False)
    assumptions: Mapping[str, bool] = field(default_factory=dict, compare=False)
    minimum: int | None = field(default=None, compare=False)  # least value of an integer domain, if above 1

    def sample(self, rng: random.Random) -> sp.Expr:
        return self.sampler(rng)


# The public vocabulary of domains; users may pass their own Domain instead of a name.
DOMAINS: Mapping[str, Domain] = {
    d.name: d for d in (
        Domain("positive", positive, {"positive": True}),
        Domain("real", real, {"real": True}),
        Domain("count", count, {"integer": True, "positive": True}),
        Domain("unit", unit, {"positive": True}),
        Domain("few", few, {"integer": True, "positive": True}),
        Domain("several", several, {"integer": True, "positive": True}, minimum=2),
        # draws are > 0; 0 itself (a group of one) is allowed by the generated code
        Domain("nonnegative", positive, {"nonnegative": True}),
    )
}


def domain(spec: str | Domain) -> Domain:
    """A Domain from its name in :data:`DOMAINS`, or the Domain itself."""
    if isinstance(spec, Domain):
        return spec
    try:
        return DOMAINS[spec]
    except KeyError:
        raise DerivationError(f"unknown domain {spec!r}; known: {', '.join(DOMAINS)} "
                              "(or pass a shrinkage.derive.Domain)") from None


@dataclass(frozen=True)
class Quantity:
    """One symbol: code name, LaTeX name, meaning, domain (a name of :data:`DOMAINS`
    or a :class:`Domain`), and how it prints and what generated code accepts."""

    code: str
    latex: str
    meaning: str
    domain: str | Domain
    observation: bool = False  # indexed by i within group j: y[i] prints as y_{ij}
    accepts: str = ""  # domain the generated public functions accept, if wider than ``domain``

    @property
    def accepted_domain(self) -> str:
        """What a generated function accepts: the derivations assume ``domain``; a formula
        that extends continuously to a boundary (sigma_b^2 = 0) may accept it too."""
        return self.accepts or self.domain_name

    @property
    def domain_name(self) -> str:
        return domain(self.domain).name

    @property
    def symbol(self) -> sp.Symbol:
        return sp.Symbol(self.code, **domain(self.domain).assumptions)

    @property
    def indexed(self) -> sp.IndexedBase:
        """The same quantity as an array over groups, e.g. n[j] in a sum over j."""
        return sp.IndexedBase(self.code, **domain(self.domain).assumptions)

    def sample(self, rng: random.Random) -> sp.Expr:
        return domain(self.domain).sample(rng)


def _assumed(sym: sp.Symbol) -> str:
    """The assumptions a symbol was made with, as its keywords ("positive=True")."""
    given = getattr(sym, "_assumptions_orig", None)
    if given is None:  # older SymPy: the derived assumptions that domains use
        given = {k: v for k, v in sym.assumptions0.items() if k in ("real", "positive", "nonnegative", "integer")}
    return ", ".join(f"{k}={v}" for k, v in sorted(given.items())) or "no assumptions"


class Notation:
    """A table of quantities, looked up by code name, plus standing definitions: symbols
    that stand for expressions in others (a group mean as a sum over its observations),
    substituted by every check of a derivation that uses this notation.  ``swaps``:
    (description, {a: b, b: a}) pairs of symbols a careless hand confuses, for the
    mutation suite (shrinkage.derive.mutate), which knows no symbols of its own."""

    def __init__(self, quantities: Iterable[Quantity], definitions: Mapping[sp.Symbol, sp.Expr] | None = None,
                 name: str = "notation", swaps: Iterable[tuple[str, Mapping]] = ()):
        self.name = name
        self.swaps: tuple[tuple[str, dict], ...] = tuple((what, dict(swap)) for what, swap in swaps)
        self.quantities: tuple[Quantity, ...] = tuple(quantities)
        self._by_code: dict[str, Quantity] = {}
        for q in self.quantities:
            if not q.code.isidentifier():
                raise DerivationError(f"{name}: code name {q.code!r} is not a Python identifier")
            if q.code in self._by_code and self._by_code[q.code] != q:
                raise DerivationError(f"{name}: two entries for the symbol {q.code!r}")
            domain(q.domain)  # an unknown domain name is an error here, not at check time
            self._by_code[q.code] = q
        self.definitions: dict = dict(definitions or {})

    def __contains__(self, code: str) -> bool:
        return code in self._by_code

    def __iter__(self):
        return iter(self.quantities)

    def __repr__(self) -> str:
        return f"Notation({self.name!r}, {len(self.quantities)} quantities)"

    def quantity(self, code: str) -> Quantity:
        try:
            return self._by_code[code]
        except KeyError:
            raise DerivationError(f"symbol {code} has no entry in the notation {self.name!r}, so no "
                                  "domain to sample and no LaTeX name: declare it with a Quantity") from None

    def quantity_of(self, obj: sp.Basic) -> Quantity:
        """The entry of a Symbol or IndexedBase (by its name)."""
        return self.quantity(str(obj.name if hasattr(obj, "name") else obj))

    def symbol(self, code: str) -> sp.Symbol:
        return self.quantity(code).symbol

    def indexed(self, code: str) -> sp.IndexedBase:
        return self.quantity(code).indexed

    def sample(self, obj: sp.Basic, rng: random.Random) -> sp.Expr:
        return self.quantity_of(obj).sample(rng)

    def foreign(self, symbols: Iterable[sp.Symbol]) -> list[str]:
        """What is wrong with ``symbols`` (empty: nothing): names with no entry, symbols
        that are not the entry's own (made with ``sympy.symbols``: other assumptions, so
        SymPy proves nothing, or slowly, about them), two symbols of one name (SymPy
        treats same-named symbols with other assumptions as different variables)."""
        by_name: dict[str, set] = {}
        for sym in symbols:
            by_name.setdefault(sym.name, set()).add(sym)
        missing = [name for name in sorted(by_name) if name not in self]
        other, doubles = [], []
        for name in sorted(set(by_name) - set(missing)):
            ours, found = self.symbol(name), by_name[name]
            if len(found) > 1:
                doubles.append(f"{len(found)} different symbols are named {name} "
                               f"({'; '.join(sorted(map(_assumed, found)))})")
            elif found != {ours}:
                other.append((name, f"{name}: {_assumed(*found)} instead of {_assumed(ours)}"))
        problems = [f"not declared (add a Quantity for each): {', '.join(missing)}"] if missing else []
        if other:
            problems.append("made with other assumptions than the notation's, as sympy.symbols makes them "
                            f"(take them from it: NOTATION.symbol({other[0][0]!r})): " + "; ".join(t for _, t in other))
        if doubles:
            problems.append(", ".join(doubles) + ": SymPy takes them for different variables; use the notation's")
        return problems

    def shifts(self, expr: sp.Expr) -> dict:
        """For sign proofs: each symbol of an integer domain with a minimum m > 1 written
        as (m - 1) + t with t a positive integer, the one fact SymPy's assumptions cannot
        state (J >= 2 makes J - 1 positive)."""
        out = {}
        for s in expr.free_symbols:
            if isinstance(s, sp.Symbol) and str(s.name) in self:
                m = domain(self.quantity_of(s).domain).minimum
                if m is not None and m > 1:
                    out[s] = (m - 1) + sp.Symbol(f"{s.name}_shift", integer=True, positive=True)
        return out

    def extend(self, quantities: Iterable[Quantity] = (), definitions: Mapping | None = None,
               name: str | None = None) -> "Notation":
        """A new notation with more entries (an entry of the same code name must be the
        same entry: redefining a symbol is an error, not a silent override)."""
        return Notation(self.quantities + tuple(quantities), {**self.definitions, **(definitions or {})},
                        name or self.name, self.swaps)


_DEFAULT: list[Notation] = []  # at most one: installed by the application, never by derive


def use_by_default(notation: Notation) -> Notation:
    """Make ``notation`` the one of every Derivation that names none.  derive has no table
    of its own: the application passes its table in (shrinkage.symbols installs NOTATION
    when it is imported, which every derivation written in its symbols has done)."""
    _DEFAULT[:] = [notation]
    return notation


def default_notation() -> Notation:
    """The notation installed by :func:`use_by_default`; an error naming the fix if none is."""
    if not _DEFAULT:
        raise DerivationError("a derivation without a notation, and no default installed: pass "
                              "Derivation(..., notation=...) (or import shrinkage.symbols, whose table is the default)")
    return _DEFAULT[0]
