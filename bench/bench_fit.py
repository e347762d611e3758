"""Benchmark: shrinkage.fit against mixedlm-rs, mixedlm, statsmodels, lme4 and one np.bincount.

    python3 bench/bench_fit.py                  # N = 1e4 .. 1e7 (about 10 minutes)
    python3 bench/bench_fit.py --max-n 1e6      # quicker
    python3 bench/bench_fit.py --json out.json  # also the rows as JSON
    python3 bench/bench_fit.py --medians 1e7 1e6 --repeat 3   # medians against mixedlm-rs, hashed ids

REML y ~ 1 + (1|g) on simulated data (y = 10 + b_j + e, rows in random group order: the
cache-unfriendly case), for each N and J in (N/100, N/10), all in one run:

* in this process, best of ``--repeat`` runs, measured in turn so that a busy machine
  slows every one alike: ``bincount`` = one np.bincount(codes, weights=y) pass (the
  floor), ``codes`` = GroupStats.from_codes + fit_stats (the integer-code path) and its
  ratio to bincount (the JSON also holds ``counts`` = np.bincount(codes), ``stats`` =
  from_codes alone and ``fit_stats`` = the O(J) fit alone), ``fit compact`` = shrinkage.fit(y, g) with int64 ids 0..J-1 (the
  direct offset route), ``fit hashed`` = shrinkage.fit(y, g) with int64 ids spread over
  1e14 (the hashing rounds of shrinkage.labels);
* each peer in its own process (bench/peers.py, compact ids; time of the fitting call
  alone, peak RSS added by it), with the ratio of its time to ``fit compact`` and the
  differences of its REML log-likelihood from ours; mixedlm-rs, the fastest, in
  ``--rounds`` rounds alternating with ours (best of each), also on the hashed ids.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from peers import PeakRSS, simulate  # noqa: E402

from shrinkage import GroupStats, fit, fit_stats  # noqa: E402

LIMITS = {"mixedlm-rs": 1e7, "mixedlm": 1e6, "statsmodels": 1e5, "lme4": 1e6}


def peer(name: str, N: int, J: int, seed: int, labels: str, timeout: float) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")])}
    try:
        run = subprocess.run([sys.executable, str(HERE / "peers.py"), name, str(N), str(J), str(seed), labels],
                             capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout {timeout:.0f} s"}
    if run.returncode != 0:
        return {"error": (run.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(run.stdout)


def interleaved(fs: dict, repeat: int) -> dict:
    best = {k: float("inf") for k in fs}
    for _ in range(repeat):
        for k, f in fs.items():
            t = time.perf_counter()
            f()
            best[k] = min(best[k], time.perf_counter() - t)
    return best


def fmt_time(t) -> str:
    if not isinstance(t, (int, float)):
        return "n/a"
    return f"{t * 1e6:.0f} µs" if t < 1e-3 else f"{t * 1e3:.1f} ms" if t < 1 else f"{t:.2f} s"


def fmt_mem(b) -> str:
    return "n/a" if not isinstance(b, (int, float)) else f"{b / 2**20:.0f} MB"


def best_peer(runs: list) -> dict:
    ok = [r for r in runs if "time" in r]
    return min(ok, key=lambda r: r["time"]) if ok else runs[-1]


def measure(N: int, J: int, args) -> dict:
    y, codes, _ = simulate(N, J, args.seed, "compact")
    _, scattered, _ = simulate(N, J, args.seed, "scattered")
    stats = GroupStats.from_codes(y, codes)
    rep = args.repeat if N < 10**7 else max(2, args.repeat - 2)
    fs = {"bincount": lambda: np.bincount(codes, weights=y),
          "counts": lambda: np.bincount(codes),  # where the codes path's time goes: JSON only
          "stats": lambda: GroupStats.from_codes(y, codes),
          "fit_stats": lambda: fit_stats(stats),
          "codes": lambda: fit_stats(GroupStats.from_codes(y, codes)),
          "fit_compact": lambda: fit(y, codes),
          "fit_hashed": lambda: fit(y, scattered)}
    # rounds: ours (best of `rep`, in turn), then mixedlm-rs on both label kinds, so that a
    # change of load on the shared machine hits both sides of the ratio; best of each
    t = {k: float("inf") for k in fs}
    rs = {"compact": [], "scattered": []}
    for _ in range(args.rounds if N <= LIMITS["mixedlm-rs"] else 1):
        t = {k: min(v, t[k]) for k, v in interleaved(fs, rep).items()}
        if N <= LIMITS["mixedlm-rs"]:
            for labels in rs:
                rs[labels].append(peer("mixedlm-rs", N, J, args.seed, labels, args.timeout))
    with PeakRSS() as mem:
        ours = fit(y, codes)
    row = {"N": N, "J": J, **t, "codes_ratio": t["codes"] / t["bincount"], "peak_ours": mem.added,
           "input_bytes": y.nbytes + codes.nbytes, "loglik": ours.loglik, "peers": {}}
    del y, codes, scattered, stats
    for name, limit in LIMITS.items():
        if N > limit or (name == "lme4" and not args.lme4):
            continue
        r = best_peer(rs["compact"]) if name == "mixedlm-rs" else peer(name, N, J, args.seed, "compact", args.timeout)
        if "llf" in r:
            r["llf_diff"] = ours.loglik - r["llf"]
            r["speedup"] = r["time"] / t["fit_compact"]
        row["peers"][name] = r
    if N <= LIMITS["mixedlm-rs"]:
        r = best_peer(rs["scattered"])
        if "time" in r:
            r["speedup"] = r["time"] / t["fit_hashed"]
        row["peers"]["mixedlm-rs hashed"] = r
    return row


def medians(N: int, J: int, args) -> None:
    """Medians, not bests, for one size and hashed ids: ``--rounds`` calls of mixedlm-rs,
    each followed by ``--repeat`` calls of ours (and of one bincount and the codes path)."""
    y, codes, _ = simulate(N, J, args.seed, "compact")
    _, scattered, _ = simulate(N, J, args.seed, "scattered")
    t = {"mixedlm-rs hashed": [], "fit hashed": [], "bincount": [], "codes path": []}
    fs = {"fit hashed": lambda: fit(y, scattered), "bincount": lambda: np.bincount(codes, weights=y),
          "codes path": lambda: fit_stats(GroupStats.from_codes(y, codes))}
    for _ in range(args.rounds):
        r = peer("mixedlm-rs", N, J, args.seed, "scattered", args.timeout)
        t["mixedlm-rs hashed"].append(r["time"])
        for _ in range(args.repeat):
            for k, f in fs.items():
                start = time.perf_counter()
                f()
                t[k].append(time.perf_counter() - start)
    m = {k: float(np.median(v)) for k, v in t.items()}
    print(f"N = {N:.0e}, J = {J:.0e}, medians of {args.rounds} and {args.rounds * args.repeat} calls: "
          + ", ".join(f"{k} {fmt_time(v)}" for k, v in m.items())
          + f"; mixedlm-rs ÷ ours (hashed) {m['mixedlm-rs hashed'] / m['fit hashed']:.2f}×"
          + f"; codes path ÷ bincount {float(np.median(np.divide(t['codes path'], t['bincount']))):.2f}×"
          + f" (median of the {len(t['bincount'])} pairs); Δℓ {fit(y, scattered).loglik - r['llf']:.0e}")


def cell(r: dict | None) -> str:
    if r is None:
        return "not run"
    if "error" in r:
        return r["error"]
    out = f"{fmt_time(r['time'])} ({r['speedup']:.1f}×), {fmt_mem(r['peak'])}"
    return out + (f", Δℓ {r['llf_diff']:.0e}" if "llf_diff" in r else "")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--min-n", type=float, default=1e4)
    p.add_argument("--max-n", type=float, default=1e7)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3, help="rounds of (ours, mixedlm-rs), best of each")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--timeout", type=float, default=600.0, help="seconds before a peer is abandoned")
    p.add_argument("--json", type=str, default=None)
    p.add_argument("--medians", type=float, nargs=2, metavar=("N", "J"), default=None,
                   help="only medians at one size, hashed ids (e.g. --medians 1e7 1e6 --repeat 3)")
    args = p.parse_args()
    if args.medians:
        medians(int(args.medians[0]), int(args.medians[1]), args)
        return
    args.lme4 = shutil.which("Rscript") is not None and subprocess.run(
        ["Rscript", "-e", "library(lme4)"], capture_output=True).returncode == 0
    load = os.getloadavg()[0]
    print(f"# python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}, {os.cpu_count()} cores, "
          f"load average {load:.1f} at start (a shared machine)")
    names = list(LIMITS) + ["mixedlm-rs hashed"]
    head = ("| N | J | bincount | codes path | ÷ bincount | fit compact | fit hashed | our peak RSS | "
            + " | ".join(names) + " |")
    print(head)
    print("|" + "---|" * (head.count("|") - 1), flush=True)
    rows = []
    N = int(args.min_n)
    while N <= args.max_n:
        for J in (N // 100, N // 10):
            r = measure(N, J, args)
            rows.append(r)
            print(f"| {N:.0e} | {J:.0e} | {fmt_time(r['bincount'])} | {fmt_time(r['codes'])} | {r['codes_ratio']:.1f}× | "
                  f"{fmt_time(r['fit_compact'])} | {fmt_time(r['fit_hashed'])} | {fmt_mem(r['peak_ours'])} | "
                  + " | ".join(cell(r["peers"].get(k)) for k in names) + " |", flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps(rows, indent=1))
        N *= 10
    print(f"# load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
