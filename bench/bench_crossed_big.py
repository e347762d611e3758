"""Benchmark: crossed random intercepts past memory, y ~ x + (1 | a) + (1 | b) on Parquet.

    PYTHONPATH=src python3 bench/bench_crossed_big.py --rows 1e8 --a 1e6 --b 1e5 --folder /tmp/crossed-big

Writes the data with DuckDB itself (once; not committed: some 2 GB at 1e8 rows) into
``--folder``: a and b uniform over their levels (BIGINT ids), x ~ N(0, 1), and
y = 2 + 0.5 x + A_a + B_b + e with A ~ N(0, 1), B ~ N(0, 0.25), e ~ N(0, 1) (Box-Muller
from DuckDB's random()).  Then fits ``shrinkage.fit(formula, data="<folder>/*.parquet")``
(the moments + backfitting estimator of shrinkage.sources.crossed) in a process of its
own and prints the wall time, the passes, the process's peak resident memory (VmHWM),
and the estimates beside the values the data were drawn with.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

GENERATE = """
SELECT setseed(0.25);
CREATE TABLE la AS SELECT range AS a, sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS ea FROM range({a});
CREATE TABLE lb AS SELECT range AS b, 0.5 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS eb
  FROM range({b});
COPY (SELECT r.a, r.b, r.x, 2 + 0.5 * r.x + la.ea + lb.eb + r.e AS y
      FROM (SELECT CAST(floor(random() * {a}) AS BIGINT) AS a, CAST(floor(random() * {b}) AS BIGINT) AS b,
                   sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS x,
                   sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS e
            FROM range({rows})) AS r
      JOIN la USING (a) JOIN lb USING (b))
  TO '{folder}' (FORMAT parquet, PER_THREAD_OUTPUT true);
"""


def write(folder: Path, rows: int, a: int, b: int) -> None:
    import duckdb

    if folder.exists() and any(folder.glob("*.parquet")):
        return
    con = duckdb.connect(config={"memory_limit": "2GB", "temp_directory": str(folder.parent / "crossed-spill")})
    t = time.perf_counter()
    con.sql(GENERATE.format(a=a, b=b, rows=rows, folder=str(folder)).replace("\n", " "))
    con.close()
    print(f"wrote {rows:.3g} rows in {time.perf_counter() - t:.0f} s to {folder}", flush=True)


def child(path: str, tol: float) -> None:
    import shrinkage

    passes = []
    t = time.perf_counter()
    r = shrinkage.fit("y ~ x + (1 | a) + (1 | b)", data=path, tol=tol,
                      progress=lambda done, total: passes.append((done, time.perf_counter() - t)))
    seconds = time.perf_counter() - t
    with open("/proc/self/status") as f:
        hwm = next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("VmHWM"))
    print(json.dumps({"seconds": seconds, "peak_rss_bytes": hwm, "passes": len(passes), "sweeps": r.sweeps,
                      "converged": r.converged, "variances": r.variances.tolist(), "fixef": r.beta.tolist(),
                      "se": (r.vcov_matrix.diagonal() ** 0.5).tolist(), "nobs": r.nobs,
                      "levels": r.ngroups, "pass_times": [round(s, 1) for _, s in passes]}))
    print(r.summary(), file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=float, default=1e8)
    ap.add_argument("--a", type=float, default=1e6)
    ap.add_argument("--b", type=float, default=1e5)
    ap.add_argument("--folder", default="/tmp/crossed-big")
    ap.add_argument("--tol", type=float, default=1e-8)
    ap.add_argument("--child", action="store_true")
    args = ap.parse_args()
    folder = Path(args.folder)
    if args.child:
        child(f"{folder}/*.parquet", args.tol)
        return
    write(folder, int(args.rows), int(args.a), int(args.b))
    run = subprocess.run([sys.executable, __file__, "--child", "--folder", str(folder), "--tol", str(args.tol)],
                         capture_output=True, text=True)
    sys.stderr.write(run.stderr[-4000:])
    if run.returncode:
        raise SystemExit(run.returncode)
    print(run.stdout)


if __name__ == "__main__":
    main()
