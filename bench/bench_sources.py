"""Benchmark: fits past memory (DuckDB on Parquet) and on a cluster (Dask LocalCluster).

    python3 bench/bench_sources.py --rows 1e8 --groups 1e5 --folder /tmp/shrinkage-bench

Writes ``rows`` simulated rows (y = 10 + b_j + e; g int64 0..J-1 in random order) as
Parquet files of 1e6 rows each, then, each in its own process:

* ``duckdb``: shrinkage.fit(data="<folder>/*.parquet", response="y", group="g");
* ``dask``: the same through dask.dataframe.read_parquet on a LocalCluster of 2 worker
  processes (1 thread each); the client process's added peak is in the table, each
  worker's maximum RSS (before and after the fit) in the JSON;
* ``memory``: the same rows regenerated as numpy arrays and shrinkage.fit(y, g), the
  reference the others must equal (relative differences of beta0, sigma2, sigma_b2,
  loglik).

Time is wall clock of the fitting call; peak is the resident memory the call added
(sampled every millisecond, so DuckDB's native allocations count), shown against the
size of the data as arrays (16 bytes a row).  The machine is shared: other jobs run beside these.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

PER_FILE = 1_000_000


def part(k: int, rows: int, J: int, seed: int):
    rng = np.random.default_rng([seed, k])
    b = np.random.default_rng(seed).normal(size=J)
    g = rng.integers(0, J, size=rows)
    return 10.0 + b[g] + rng.normal(size=rows), g


def write(folder: Path, N: int, J: int, seed: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder / f"done-{N}-{J}-{seed}"
    if stamp.exists():
        return
    for old in folder.glob("*.parquet"):
        old.unlink()
    for k in range(-(-N // PER_FILE)):
        y, g = part(k, min(PER_FILE, N - k * PER_FILE), J, seed)
        pq.write_table(pa.table({"y": y, "g": g}), folder / f"part{k:05d}.parquet", row_group_size=1 << 17)
    stamp.write_text("")


sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import PeakRSS  # noqa: E402


def _maxrss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def worker(kind: str, folder: str, N: int, J: int, seed: int) -> None:
    import shrinkage
    workers = {}
    if kind == "duckdb":
        import duckdb  # noqa: F401
        with PeakRSS() as mem:
            t = time.perf_counter()
            r = shrinkage.fit(data=f"{folder}/*.parquet", response="y", group="g", progress=False)
            elapsed = time.perf_counter() - t
    elif kind == "dask":
        import dask.dataframe as dd
        from distributed import Client, LocalCluster
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client, PeakRSS() as mem:
            before = client.run(_maxrss)
            t = time.perf_counter()
            r = shrinkage.fit(data=dd.read_parquet(f"{folder}/*.parquet"), response="y", group="g")
            elapsed = time.perf_counter() - t
            workers = {"workers_maxrss_before": list(before.values()), "workers_maxrss": list(client.run(_maxrss).values())}
    else:
        parts = [part(k, min(PER_FILE, N - k * PER_FILE), J, seed) for k in range(-(-N // PER_FILE))]
        y = np.concatenate([p[0] for p in parts])
        g = np.concatenate([p[1] for p in parts])
        del parts
        with PeakRSS() as mem:
            t = time.perf_counter()
            r = shrinkage.fit(y, g)
            elapsed = time.perf_counter() - t
    total = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(dict(time=elapsed, peak_added=mem.added, peak_total=total, beta0=r.beta0, sigma2=r.sigma2,
                          sigma_b2=r.sigma_b2, loglik=r.loglik, groups=r.n_groups, obs=r.n_obs, **workers)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=float, default=3e7)
    p.add_argument("--groups", type=float, default=1e5)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--folder", type=str, default="/tmp/shrinkage-bench")
    p.add_argument("--kinds", type=str, default="duckdb,dask,memory")
    p.add_argument("--worker", type=str, default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    N, J = int(a.rows), int(a.groups)
    folder = Path(a.folder) / f"n{N}-j{J}"
    if a.worker:
        worker(a.worker, str(folder), N, J, a.seed)
        return
    t = time.perf_counter()
    write(folder, N, J, a.seed)
    size = sum(f.stat().st_size for f in folder.glob("*.parquet"))
    print(f"# {N:.0e} rows, {J:.0e} groups: {size / 2**30:.2f} GiB of Parquet, written in {time.perf_counter() - t:.0f} s; "
          f"as arrays {16 * N / 2**30:.2f} GiB; load average {os.getloadavg()[0]:.1f} (shared machine)", flush=True)
    out = {}
    for kind in a.kinds.split(","):
        run = subprocess.run([sys.executable, __file__, "--rows", str(N), "--groups", str(J), "--seed", str(a.seed),
                              "--folder", a.folder, "--worker", kind], capture_output=True, text=True)
        if run.returncode != 0:
            print(f"| {kind} | failed: {run.stderr.strip().splitlines()[-1]} |", flush=True)
            continue
        out[kind] = json.loads(run.stdout.strip().splitlines()[-1])
    ref = out.get("memory")
    print("| route | time | peak RSS added | ÷ data as arrays | max rel. diff from in-memory |")
    print("|---|---|---|---|---|")
    for kind, r in out.items():
        diff = "reference" if kind == "memory" or ref is None else f"{max(abs(r[k] / ref[k] - 1) for k in ('beta0', 'sigma2', 'sigma_b2', 'loglik')):.1e}"
        print(f"| {kind} | {r['time']:.1f} s | {r['peak_added'] / 2**20:.0f} MB | {r['peak_added'] / (16 * N):.1%} | {diff} |")
        if "workers_maxrss" in r:
            print(f"|  (each dask worker) | | max RSS {', '.join(f'{b / 2**20:.0f} MB' for b in r['workers_maxrss'])} "
                  f"(before: {', '.join(f'{b / 2**20:.0f} MB' for b in r['workers_maxrss_before'])}) | | |")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
