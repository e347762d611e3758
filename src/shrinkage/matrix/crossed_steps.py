"""The matrix step kinds, checked on random crossed designs (shrinkage.matrix.crossed).

Each kind is the one-factor kind of shrinkage.matrix.steps / gaussian / scalar_steps with
its instances (``walkers``, ``assign``, ``equality``) replaced: ``POINTS`` random crossed
designs (1 or 2 other terms, every row one level of each, 50 digits), so Z = [Z_a Z_r],
Lambda and Lambda'Z'Z Lambda + I are dense matrices built entry by entry.  The exact check
with matrices of symbols knows one grouping factor only: these kinds claim numeric evidence
(verdict None), except the scalar maximiser, whose symbolic check holds the defined
quantities as symbols and needs no instance.  The crossed derivations' notation is here too:
the matrix notation plus shrinkage.matrix.crossed's quantities.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import sympy as sp

from ..derive import Notation
from ..symbols import NOTATION
from .checking import DPS, POINTS
from .crossed import CROSSED, CROSSED_SCALARS, crossed_walkers
from .gaussian import MatrixLogIntegral, MatrixMaximiser
from .linalg import Mat
from .notation import BY_CODE, MATRICES, SCALARS, MatrixNotation
from .scalar_steps import ScalarMaximiser
from .steps import MatrixEquals, MatrixRescale, MatrixSubstitute

WHERE = (f"{POINTS} random crossed designs (first term $q = 1, 2, 3$ over 2--3 levels; 1 or 2 other terms of "
         f"2--3 levels, $q_k = 1, 2$, each row one level of each), dense matrices, {DPS} digits")


class _Crossed:
    """The numeric check at random crossed designs; no exact check with matrices of symbols."""

    def walkers(self, name: str, number: int, exprs):
        return crossed_walkers(self, name, number, exprs)

    def assign(self, w, parts, x: Mat):
        """The walker with the stacked variable (global parts) set to x."""
        row = 0
        for part in parts:
            rows = w.size(part.rows, 0)
            w = w.with_values({part: Mat(x.rows[row:row + rows])})
            row += rows
        return w

    def equality(self, rhs, why: str):
        return CrossedEquals(rhs, why=why, at=self.at)

    def symbolic(self, exprs, definitions):
        return None, ()

    def method(self, exprs, extra, sizes):
        at = f"; at $q = {self.fixed('q')}$" if self.fixed("q") else ""
        return WHERE + at + extra


@dataclass(frozen=True)
class CrossedEquals(_Crossed, MatrixEquals):
    """MatrixEquals on crossed designs."""


@dataclass(frozen=True)
class CrossedRescale(_Crossed, MatrixRescale):
    """MatrixRescale on crossed designs."""


@dataclass(frozen=True)
class CrossedSubstitute(_Crossed, MatrixSubstitute):
    """MatrixSubstitute on crossed designs."""


@dataclass(frozen=True)
class CrossedMaximiser(_Crossed, MatrixMaximiser):
    """MatrixMaximiser on crossed designs."""


@dataclass(frozen=True)
class CrossedLogIntegral(_Crossed, MatrixLogIntegral):
    """MatrixLogIntegral on crossed designs (by quadrature too where the variable has one or two
    dimensions)."""


@dataclass(frozen=True)
class CrossedScalarMaximiser(_Crossed, ScalarMaximiser):
    """ScalarMaximiser on crossed designs; its symbolic check (the defined quantities held as
    symbols) needs no instance, so it is kept."""

    symbolic = ScalarMaximiser.symbolic

    def method(self, exprs, extra, sizes):
        assumed = "".join(f", ${sp.latex(e)} > 0$" for e in self.positive)
        return WHERE + extra + (f"; SymPy with the defined quantities held as symbols{assumed}" if not sizes else "")


class CrossedNotation(MatrixNotation):
    """The matrix notation plus the other terms' quantities (and the mutation extension
    that judges equivalence on crossed designs)."""

    def __init__(self):
        Notation.__init__(self, NOTATION.quantities + SCALARS + CROSSED_SCALARS, NOTATION.definitions,
                          name="shrinkage.matrix.crossed", swaps=NOTATION.swaps)
        first = replace(BY_CODE["Z_all"], latex=r"\mathbf Z_a",
                        meaning=r"the first term's columns, $\operatorname{diag}(\mathbf Z_1, \dots, \mathbf Z_J)$")
        self.matrices = tuple(first if e.code == "Z_all" else e for e in MATRICES) + CROSSED
        self.matrix_names = {e.symbol: e.latex for e in self.matrices}

    @property
    def mutation(self):
        from .mutate import MUTATION  # the matrix operators; equivalence by the kinds' own equality

        return MUTATION


CROSSED_NOTATION = CrossedNotation()
