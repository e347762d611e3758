"""A formula of numeric columns fitted out of core loads neither pandas nor formulaic
(issue 20 item 3: y ~ 1 + (1 | g) on a 3e7-row Parquet file added 178 MB against the
one-way fit's 108 MB; bench/bench_memory.py measures both), and its plan, made without
them, is the one formulaic makes."""

from __future__ import annotations

import json
import subprocess
import sys

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shrinkage.lmm.formula import parse
from shrinkage.sources._lmm import plan_of, simple_plan
from shrinkage.sources._lmm_engines import DuckDBEngine

SIMPLE = ["y ~ 1 + (1 | g)", "y ~ (1 | g)", "y ~ x1 + x2 + (x1 | g)", "y ~ 0 + x1 + (0 + x1 || g)",
          "y ~ x1 + (x1 || g)", "y ~ x2 + x1 + x1 + (1 + x2 + x1 | g)", "y ~ x1 + 1 + (x2 + 1 | g)",
          "y ~ 0 + (1 | g)", "y ~ n + (x2 + n || g)", "y ~ x2 + (1 | g) + (0 + x1 | g)"]
FORMULAIC = ["y ~ x1:x2 + (1 | g)", "y ~ x1 * x2 + (1 | g)", "y ~ x1 - 1 + (1 | g)", "y ~ f + (1 | g)",
             "y ~ x1 + (f | g)", "y ~ I(x1) + (1 | g)", "y ~ x1 + (1 | g) + (1 | g)", "y ~ b + (1 | g)",
             "y ~ g + (1 | g)", "f ~ x1 + (1 | g)", "y ~ x1 + (1 | h)"]


@pytest.fixture
def engine(rng):
    con = duckdb.connect()
    N = 200
    arrays = {"y": rng.normal(size=N), "x1": rng.normal(size=N), "x2": rng.uniform(size=N),
              "n": rng.integers(0, 9, N).astype(np.int32), "b": rng.uniform(size=N) < 0.5,
              "f": np.array(["a", "b", "c"])[rng.integers(0, 3, N)], "g": rng.integers(0, 7, N)}
    rel = con.from_arrow(pa.table(arrays))
    e = DuckDBEngine(rel)
    e.open("g")
    yield e
    con.close()


@pytest.mark.parametrize("formula", SIMPLE)
def test_simple_plan_is_formulaics(engine, formula):
    """Terms, where X and Z sit in A, lme4's names and the blocks: as plan_of makes them."""
    f = parse(formula)
    plan = simple_plan(f, list(engine.rel.columns), engine.numeric())
    assert plan is not None
    assert plan == plan_of(f, engine.schema())


@pytest.mark.parametrize("formula", FORMULAIC)
def test_anything_else_is_left_to_formulaic(engine, formula):
    """Products, factors, '-1', transforms, repeated terms, a bool or text column, the
    group as a covariate, an absent group: plan_of decides (and names what is wrong)."""
    assert simple_plan(parse(formula), list(engine.rel.columns), engine.numeric()) is None


CHILD = """
import json, sys
import shrinkage
one = shrinkage.fit(data=sys.argv[1], response="y", group="g")
r = shrinkage.fit("y ~ 1 + (1 | g)", data=sys.argv[1])
s = shrinkage.fit("y ~ x + (x | g)", data=sys.argv[1])
print(json.dumps({"loaded": sorted(m for m in ("pandas", "formulaic", "pyarrow") if m in sys.modules),
                  "one": [one.sigma_b2, one.sigma2, one.loglik], "formula": [r.sigma_b2, r.sigma2, r.loglik]}))
"""


def test_formula_out_of_core_loads_no_pandas(tmp_path, rng):
    """The libraries are most of the memory a formula added (pandas 69 MB, formulaic and
    the scipy it brings): a numeric formula on a Parquet file loads none of them, and
    y ~ 1 + (1 | g) gives the one-way fit's estimates."""
    N, J = 2000, 40
    g = rng.integers(0, J, N)
    x = rng.normal(size=N)
    y = 3 + rng.normal(size=J)[g] + 0.5 * rng.normal(size=J)[g] * x + rng.normal(size=N)
    pq.write_table(pa.table({"y": y, "x": x, "g": g}), tmp_path / "d.parquet")
    run = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "d.parquet")], capture_output=True, text=True,
                         check=True)
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["loaded"] == []
    np.testing.assert_allclose(out["formula"], out["one"], rtol=1e-8)
