"""Benchmark: shrinkage.fit against statsmodels MixedLM and one np.bincount pass.

    python3 bench/bench_fit.py                 # N = 1e4 .. 1e7 (a few minutes)
    python3 bench/bench_fit.py --max-n 1e6     # quicker
    python3 bench/bench_fit.py --sm-max-n 1e5  # statsmodels only up to N = 1e5

For each N and J in (N/100, N/10), on simulated data (y = 10 + b_j + e, random group
codes, so groups are scattered through the rows: the cache-unfriendly case), in one run:

* ``bincount``: one np.bincount(codes, weights=y) pass (the floor: one pass over the data);
* ``stats``: GroupStats.from_codes(y, codes) (two-pass sufficient statistics);
* ``fit``: fit_stats(stats, "REML") (the search over gamma on size classes);
* ``codes total``: stats + fit, i.e. shrinkage.fit on integer codes, and its ratio to bincount;
* ``factorise``: turning int64 labels into codes (np.unique, a sort), reported apart;
* ``statsmodels``: MixedLM(y, 1, groups).fit(reml=True) in a subprocess with a timeout,
  and the largest relative difference of its estimates from ours;
* ``lme4``: lmer(y ~ 1 + (1|g), REML = TRUE) through Rscript (Debian's r-cran-lme4), timing
  lmer() alone inside R (reading the CSV is not counted), and the same difference.

Times are the best of ``--repeat`` runs (wall clock); peak memory is the tracemalloc peak
of numpy allocations during the call, shown as a multiple of the input arrays
(y and codes, 16 bytes a row).  lme4 is skipped when Rscript or lme4 is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np

from shrinkage import GroupStats, fit_stats
from shrinkage.stats import factorize

SM_SCRIPT = r"""
import json, sys, time, tracemalloc, warnings
import numpy as np
import statsmodels.api as sm
warnings.simplefilter("ignore")
N, J, seed = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(seed)
codes = rng.integers(0, J, size=N)
y = 10.0 + rng.normal(size=J)[codes] + rng.normal(size=N)
tracemalloc.start()
t = time.perf_counter()
r = sm.MixedLM(y, np.ones((N, 1)), groups=codes).fit(reml=True)
elapsed = time.perf_counter() - t
peak = tracemalloc.get_traced_memory()[1]
print(json.dumps(dict(time=elapsed, peak=peak, beta0=float(np.asarray(r.fe_params)[0]), sigma2=float(r.scale),
                      sigma_b2=float(np.asarray(r.cov_re)[0, 0]), llf=float(r.llf))))
"""


R_SCRIPT = r"""
suppressMessages(library(lme4))
a <- commandArgs(trailingOnly = TRUE)
d <- read.csv(a[1], colClasses = c("numeric", "character"))
t <- proc.time()[["elapsed"]]
m <- lmer(y ~ 1 + (1 | g), data = d, REML = TRUE)
elapsed <- proc.time()[["elapsed"]] - t
vc <- as.data.frame(VarCorr(m))
cat(sprintf('{"time": %.6f, "beta0": %.17g, "sigma_b2": %.17g, "sigma2": %.17g, "llf": %.17g}',
            elapsed, fixef(m)[[1]], vc$vcov[1], vc$vcov[2], as.numeric(logLik(m))))
"""


def lme4_available() -> bool:
    return shutil.which("Rscript") is not None and subprocess.run(
        ["Rscript", "-e", "library(lme4)"], capture_output=True).returncode == 0


def run_lme4(y, codes, timeout: float):
    """lmer on the same data, written to a temporary CSV; None on timeout."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "d.csv")
        np.savetxt(path, np.column_stack([y, codes]), fmt=["%.17g", "%d"], delimiter=",", header="y,g", comments="")
        script = os.path.join(tmp, "fit.R")
        with open(script, "w") as f:
            f.write(R_SCRIPT)
        try:
            run = subprocess.run(["Rscript", script, path], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
    if run.returncode != 0:
        return {"error": run.stderr.strip().splitlines()[-1]}
    return json.loads(run.stdout)


def compare_cells(ref, res, total, max_n_ok: bool, timeout: float, name: str, row: dict) -> str:
    """Table cells for one reference implementation (time, speed ratio, differences)."""
    if ref and "time" in ref:
        diff = max(abs(ref[k] - getattr(res, k)) / abs(getattr(res, k)) for k in ("beta0", "sigma2", "sigma_b2"))
        row.update({name: ref["time"], f"{name}_speedup": ref["time"] / total, f"{name}_rel_diff": diff,
                    f"{name}_llf_diff": res.loglik - ref["llf"]})
        return f"{fmt_time(ref['time'])} | {ref['time'] / total:,.0f}× | {diff:.1e} | {res.loglik - ref['llf']:.1e}"
    if max_n_ok:
        why = "timeout" if ref is None else "error"
        row[name] = why
        return f"> {timeout:.0f} s ({why}) | > {timeout / total:,.0f}× | n/a | n/a"
    return "not run | | | "


def data(N: int, J: int, seed: int):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, J, size=N)
    y = 10.0 + rng.normal(size=J)[codes] + rng.normal(size=N)
    return y, codes


def measure(f, repeat: int):
    """(best wall time, tracemalloc peak bytes of one call, result)."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t)
    tracemalloc.start()
    out = f()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return best, peak, out


def run_statsmodels(N: int, J: int, seed: int, timeout: float):
    try:
        run = subprocess.run([sys.executable, "-c", SM_SCRIPT, str(N), str(J), str(seed)],
                             capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if run.returncode != 0:
        return {"error": run.stderr.strip().splitlines()[-1]}
    return json.loads(run.stdout)


def fmt_time(t: float | None) -> str:
    if t is None:
        return "n/a"
    return f"{t * 1e3:.1f} ms" if t < 1 else f"{t:.2f} s"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max-n", type=float, default=1e7)
    p.add_argument("--sm-max-n", type=float, default=1e6, help="largest N given to statsmodels")
    p.add_argument("--sm-timeout", type=float, default=300.0, help="seconds before statsmodels is abandoned")
    p.add_argument("--lme4-max-n", type=float, default=1e6, help="largest N given to lme4")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--json", type=str, default=None, help="also write the rows as JSON here")
    args = p.parse_args()

    print(f"# shrinkage.fit benchmark: python {platform.python_version()}, numpy {np.__version__}, "
          f"{platform.machine()}, {__import__('os').cpu_count()} cores")
    has_r = lme4_available()
    print("# lme4 through Rscript" if has_r else "# R/lme4: not run (Rscript or lme4 not installed)")
    header = ("| N | J | bincount | stats | fit | codes total | ÷ bincount | peak mem ÷ input | factorise "
              "| statsmodels | statsmodels ÷ ours | max rel. diff | ℓ ours − ℓ sm "
              "| lme4 | lme4 ÷ ours | max rel. diff | ℓ ours − ℓ lme4 |")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    rows = []
    N = 10_000
    while N <= args.max_n:
        for J in (N // 100, N // 10):
            y, codes = data(N, J, args.seed)
            labels = codes * 7919 + 1_000_003  # int64 labels, not 0..J-1: need factorising
            rep = args.repeat if N < 10**7 else max(1, args.repeat - 1)
            t_bin, _, _ = measure(lambda: np.bincount(codes, weights=y), rep)
            t_stats, m_stats, stats = measure(lambda: GroupStats.from_codes(y, codes), rep)
            t_fit, m_fit, res = measure(lambda: fit_stats(stats, "REML"), rep)
            t_fac, _, _ = measure(lambda: factorize(labels), max(1, rep - 1))
            input_bytes = y.nbytes + codes.nbytes
            peak = max(m_stats, m_fit + sum(a.nbytes for a in (stats.n, stats.mean, stats.ss)))
            sm = run_statsmodels(N, J, args.seed, args.sm_timeout) if N <= args.sm_max_n else None
            total = t_stats + t_fit
            row = dict(N=N, J=J, bincount=t_bin, stats=t_stats, fit=t_fit, total=total, ratio_bincount=total / t_bin,
                       peak_ratio=peak / input_bytes, factorise=t_fac, beta0=res.beta0, sigma2=res.sigma2,
                       sigma_b2=res.sigma_b2, loglik=res.loglik)
            sm_cells = compare_cells(sm, res, total, N <= args.sm_max_n, args.sm_timeout, "statsmodels", row)
            lm = run_lme4(y, codes, args.sm_timeout) if has_r and N <= args.lme4_max_n else None
            lm_cells = compare_cells(lm, res, total, has_r and N <= args.lme4_max_n, args.sm_timeout, "lme4", row)
            rows.append(row)
            print(f"| {N:.0e} | {J:.0e} | {fmt_time(t_bin)} | {fmt_time(t_stats)} | {fmt_time(t_fit)} | "
                  f"{fmt_time(total)} | {total / t_bin:.1f}× | {peak / input_bytes:.2f} | {fmt_time(t_fac)} | "
                  f"{sm_cells} | {lm_cells} |", flush=True)
            del y, codes, labels, stats, res
        N *= 10
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
