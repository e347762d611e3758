"""Benchmark: memory of the one-way model fitted out of core, in its two spellings.

    PYTHONPATH=src python3 bench/bench_memory.py --rows 3e7 --groups 1e5

Writes the Parquet files of bench_sources.py (y float64, g int64 ids in random order,
1e6 rows a file), then fits them, each route in a process of its own:

* ``oneway``: shrinkage.fit(data="<folder>/*.parquet", response="y", group="g");
* ``formula``: shrinkage.fit("y ~ 1 + (1 | g)", data="<folder>/*.parquet").

Issue 20 asks that the formula cost no more than the one-way form, both under 25% of
the data as arrays (16 bytes a row).  Two numbers a route, both the resident memory
the call added (sampled every millisecond from /proc, so DuckDB's native allocations
count), with shrinkage and DuckDB imported first:

* ``cold``: the first fit in the process, so the libraries it loads (pandas, formulaic,
  scipy for the formula) count;
* ``warm``: the same fit after a fit of a 1000-row file by the same route, so only what
  the fit holds for the data counts (the part that could grow with N).

Also printed: the process's high-water mark (VmHWM) and the estimates of both routes
(they fit one model: sigma_b2, sigma2, loglik agree).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sources import write  # noqa: E402
from peers import PeakRSS  # noqa: E402


def _fit(route: str, path: str):
    import shrinkage

    if route == "oneway":
        r = shrinkage.fit(data=path, response="y", group="g", progress=False)
    else:
        r = shrinkage.fit("y ~ 1 + (1 | g)", data=path)
    return r.sigma_b2, r.sigma2, r.loglik


def _hwm() -> int:
    with open("/proc/self/status") as f:
        return next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("VmHWM"))


def child(route: str, warm: bool, folder: str, small: str) -> None:
    import duckdb  # noqa: F401

    import shrinkage  # noqa: F401

    if warm:
        _fit(route, small)
    with PeakRSS() as mem:
        t = time.perf_counter()
        est = _fit(route, f"{folder}/*.parquet")
        seconds = time.perf_counter() - t
    print(json.dumps({"seconds": seconds, "added": mem.added, "hwm": _hwm(), "estimates": est}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=float, default=3e7)
    p.add_argument("--groups", type=float, default=1e5)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--folder", default="/tmp/shrinkage-bench")
    p.add_argument("--routes", default="oneway,formula")
    a = p.parse_args()
    N, J = int(a.rows), int(a.groups)
    folder, small = Path(a.folder) / f"n{N}-j{J}", Path(a.folder) / "n1000-j10"
    write(folder, N, J, a.seed)
    write(small, 1000, 10, a.seed)
    arrays = 16 * N
    print(f"# {N:.0e} rows, {J:.0e} groups; as arrays {arrays / 2**20:.0f} MB, goal: at most 25% = "
          f"{arrays / 4 / 2**20:.0f} MB added")
    print("| route | run | time | added | ÷ data as arrays | process VmHWM | sigma_b2, sigma2, loglik |")
    print("|---|---|---|---|---|---|---|")
    for route in a.routes.split(","):
        for warm in (False, True):
            run = subprocess.run([sys.executable, __file__, "--child", route, str(int(warm)), str(folder),
                                  str(small / "*.parquet")], capture_output=True, text=True, check=True)
            r = json.loads(run.stdout.strip().splitlines()[-1])
            est = ", ".join(f"{v:.10g}" for v in r["estimates"])
            print(f"| {route} | {'warm' if warm else 'cold'} | {r['seconds']:.1f} s | {r['added'] / 2**20:.0f} MB | "
                  f"{r['added'] / arrays:.1%} | {r['hwm'] / 2**20:.0f} MB | {est} |", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3] == "1", sys.argv[4], sys.argv[5])
    else:
        main()
