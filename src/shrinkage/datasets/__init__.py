"""Small classic data sets for the random-intercept model, shipped as package data.

``load(name)`` returns a :class:`Dataset`; ``names()`` lists them.  Sources (all exported
unchanged from the R package lme4 1.1-31):

* ``dyestuff``: yield of dyestuff, 6 batches x 5 preparations (Davies & Goldsmith,
  *Statistical Methods in Research and Production*, 4th ed., 1972, Table 6.3).
* ``dyestuff2``: simulated data of the same shape whose between-batch variance is
  estimated as exactly zero (Box & Tiao, *Bayesian Inference in Statistical Analysis*,
  1973, Table 5.1.4).
* ``sleepstudy``: average reaction time (ms) per day of 18 subjects under sleep
  deprivation (Belenky et al. 2003, *Journal of Sleep Research* 12, 1-12).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..table import read_columns

__all__ = ["Dataset", "load", "names"]

_HERE = Path(__file__).resolve().parent

_CATALOGUE = {
    "dyestuff": ("Yield", "Batch", "yield of dyestuff (grams of standard colour), 6 batches x 5 preparations",
                 "Davies & Goldsmith (eds.), Statistical Methods in Research and Production, 4th ed., 1972, Table 6.3; lme4::Dyestuff"),
    "dyestuff2": ("Yield", "Batch", "simulated data shaped as Dyestuff, with a zero between-batch variance estimate",
                  "Box & Tiao, Bayesian Inference in Statistical Analysis, 1973, Table 5.1.4; lme4::Dyestuff2"),
    "sleepstudy": ("Reaction", "Subject", "average reaction time (ms) per day of 18 sleep-deprived subjects (Days 0-9)",
                   "Belenky et al. (2003), Journal of Sleep Research 12, 1-12; lme4::sleepstudy"),
}


@dataclass(frozen=True, eq=False)
class Dataset:
    """A data set: its response ``y`` and group labels ``groups`` (plus ``path`` of the
    CSV, its column names, a description and the source)."""

    name: str
    y: np.ndarray
    groups: np.ndarray
    response: str
    group: str
    description: str
    source: str
    path: Path


def names() -> tuple[str, ...]:
    return tuple(sorted(_CATALOGUE))


def load(name: str) -> Dataset:
    """Load a shipped data set by name (case-insensitive): dyestuff, dyestuff2, sleepstudy."""
    key = str(name).lower()
    if key not in _CATALOGUE:
        raise InputError(f"no data set named {name!r}; available: {', '.join(names())}")
    response, group, description, source = _CATALOGUE[key]
    path = _HERE / f"{key}.csv"
    y, g = read_columns(path, response, group)
    for a in (y, g):
        a.setflags(write=False)
    return Dataset(key, y, g, response, group, description, source, path)
