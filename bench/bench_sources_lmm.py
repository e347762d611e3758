"""Benchmark: the random-slope model y ~ x1 + x2 + (x1 | g) fitted out of core (DuckDB on
Parquet) against the in-memory fit (shrinkage.lmm.lmer) of the same rows.

    python3 bench/bench_sources_lmm.py --rows 1e7 --groups 1e4 --folder /tmp/shrinkage-bench-lmm

Each run in its own process: time of the fitting call (wall clock), the process's peak
resident memory (sampled every millisecond from /proc, so it includes Python and the
libraries; not ru_maxrss, which a child process inherits from its parent's size at the
fork) and the part of it the call added (above the level before the call, with pandas and
shrinkage imported; the libraries the call itself loads, DuckDB, formulae, formulaic,
scipy, count as added; bench_sources.py measures the one-way fit so, with DuckDB imported
first), beside the size of
the data as float64 arrays (32 bytes a row); and the largest relative difference of beta,
theta, sigma^2 and the deviance between the two fits (relative to the largest entry).
DuckDB's resident memory includes its buffer pool, which keeps decoded data up to its
memory limit (default 80% of RAM): with ``SET memory_limit='100MB'`` the same query adds
67 MB at 1e7 rows instead of 235 MB (measured with pass 1 alone).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import PeakRSS  # noqa: E402

PER_FILE = 1_000_000
FORMULA = "y ~ x1 + x2 + (x1 | g)"


def part(k: int, rows: int, J: int, seed: int = 7):
    import pandas as pd

    rng = np.random.default_rng([seed, k])
    b0, b1 = (np.random.default_rng([seed, s]).normal(size=J) for s in (10**6, 10**6 + 1))
    g = rng.integers(0, J, size=rows)
    x1, x2 = rng.normal(size=rows) + 3, rng.uniform(size=rows)
    y = 10 + 2 * x1 - x2 + b0[g] + 0.5 * b1[g] * x1 + rng.normal(size=rows)
    return pd.DataFrame({"y": y, "x1": x1, "x2": x2, "g": g})


def child(kind: str, folder: str) -> None:
    import pandas as pd

    import shrinkage
    from shrinkage.lmm import lmer

    if kind == "memory":
        frame = pd.concat([pd.read_parquet(p) for p in sorted(Path(folder).glob("*.parquet"))], ignore_index=True)
    with PeakRSS() as mem:
        t = time.perf_counter()
        r = lmer(FORMULA, frame) if kind == "memory" else shrinkage.fit(FORMULA, data=f"{folder}/*.parquet")
        seconds = time.perf_counter() - t
    print(json.dumps({"seconds": seconds, "peak_mb": mem.peak / 2**20, "added_mb": mem.added / 2**20,
                      "beta": r.beta.tolist(), "theta": r.theta.tolist(), "sigma2": r.sigma2,
                      "deviance": r.deviance}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=float, default=1e6)
    ap.add_argument("--groups", type=float, default=1e4)
    ap.add_argument("--folder", default="/tmp/shrinkage-bench-lmm")
    a = ap.parse_args()
    rows, J, folder = int(a.rows), int(a.groups), Path(a.folder)
    folder.mkdir(parents=True, exist_ok=True)
    for p in folder.glob("*.parquet"):
        p.unlink()
    for k in range(0, rows, PER_FILE):
        part(k // PER_FILE, min(PER_FILE, rows - k), J).to_parquet(folder / f"part{k // PER_FILE:04d}.parquet")
    out = {"rows": rows, "groups": J, "arrays_mb": rows * 32 / 2**20}
    for kind in ("duckdb", "memory"):
        run = subprocess.run([sys.executable, __file__, "--child", kind, str(folder)], capture_output=True, text=True,
                             check=True)
        out[kind] = json.loads(run.stdout.strip().splitlines()[-1])
    for key in ("beta", "theta", "sigma2", "deviance"):  # relative to the largest entry (theta has entries near 0)
        d, m = (np.atleast_1d(out[k].pop(key)) for k in ("duckdb", "memory"))
        out[f"rel_diff_{key}"] = float(np.max(np.abs(d - m)) / np.max(np.abs(m)))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        main()
