"""One name per quantity: in the notation every derivation is rendered with, no two
quantities share a LaTeX name (a reader could not tell them apart) or a code name."""

from __future__ import annotations

from collections import Counter

import pytest

from conftest import DERIVATIONS
from shrinkage.build import load_derivations
from shrinkage.derive import Notation, Quantity

DERIVED = load_derivations(DERIVATIONS)


def shared_names(notation) -> dict[str, list[str]]:
    """LaTeX name -> the codes of the quantities that print as it, where there are several."""
    by_latex: dict[str, list[str]] = {}
    for q in notation:
        by_latex.setdefault(q.latex.replace(" ", ""), []).append(q.code)
    return {k: v for k, v in by_latex.items() if len(v) > 1}


@pytest.mark.parametrize("d", DERIVED, ids=[d.name for d in DERIVED])
def test_no_two_quantities_share_a_name(d):
    notation = d.resolved_notation()
    assert not shared_names(notation), (d.name, shared_names(notation))
    codes = Counter(q.code for q in notation)
    assert max(codes.values()) == 1, (d.name, [c for c, k in codes.items() if k > 1])


def test_a_shared_latex_name_is_found():
    notation = Notation([Quantity("J", "J", "number of groups", "count"),
                         Quantity("n_groups", "J", "number of groups again", "several")], name="twice")
    assert shared_names(notation) == {"J": ["J", "n_groups"]}
