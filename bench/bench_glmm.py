"""shrinkage's glmer (family="binomial", Laplace) beside mixedlm's glmer (lme4 ported to
Python with a Rust core), lme4's glmer (R; the default call, nAGQ = 1) and gpboost's
GPModel (C++; bernoulli_logit), in one run; and a GLMM of 1e8 Parquet rows out of core.

Speed: Bernoulli rows y ~ x1 + x2 + x3 + (1 | g) with J groups (b_j ~ N(0, 0.5^2), slopes
0.3, -0.2, 0.1, intercept -0.5), the same numbers for every implementation (simulated
from a seed).  Each implementation runs in a process of its own (``--peer``), timing the
fitting call alone (data made, imported and, for lme4, read from CSV before the clock
starts; ours after a first fit of other data, so numba's compiled code is loaded), with
a time limit (--budget): a peer past it is reported as "> budget", a lower bound.  The
estimates are compared with ours: the largest relative difference in fixef and sigma_b,
and the difference in logLik (lme4's Laplace scale; gpboost's is minus its negative
log-likelihood).

Big (--big N): N Bernoulli rows with three categorical covariates (a: 4 text levels,
b: 3 integers, c: bool) and 1e4 groups, written to Parquet by DuckDB in --tmp (not kept),
fitted by shrinkage.fit(formula, data=path) in a process of its own: wall time and the
process's peak resident memory.

    python3 bench/bench_glmm.py [--sizes 1e5:1e3 1e6:1e4] [--peers mixedlm lme4 gpboost]
                                [--budget 900] [--big 1e8] [--tmp /work/tmp] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

FORMULA = "y ~ x1 + x2 + x3 + (1 | g)"
BIG_FORMULA = "y ~ a + b + c + (1 | g)"
HERE = os.path.dirname(os.path.abspath(__file__))

LME4 = """suppressMessages(library(lme4))
d <- read.csv(commandArgs(TRUE)[1]); d$g <- factor(d$g)
t <- system.time(r <- glmer(y ~ x1 + x2 + x3 + (1 | g), d, family = binomial))[["elapsed"]]
cat(sprintf("%.17g", c(t, fixef(r), getME(r, "theta"), as.numeric(logLik(r)))), sep = "\\n")
"""


def data(n: int, J: int):
    import pandas as pd

    rng = np.random.default_rng(0)
    g = rng.integers(0, J, n)
    X = rng.normal(size=(n, 3))
    eta = -0.5 + X @ np.array([0.3, -0.2, 0.1]) + rng.normal(scale=0.5, size=J)[g]
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    return pd.DataFrame({"y": y, "x1": X[:, 0], "x2": X[:, 1], "x3": X[:, 2], "g": g})


def ours(d):
    import shrinkage

    shrinkage.fit(FORMULA, data(30_000, 300), family="binomial")  # imports, numba's cache loaded
    t = time.perf_counter()
    r = shrinkage.fit(FORMULA, d, family="binomial")
    return time.perf_counter() - t, list(r.beta), r.sigma_b, r.loglik


def mixedlm_fit(d):
    import mixedlm

    d = d.assign(g=d.g.astype(str))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        r = mixedlm.glmer(FORMULA, d, family=mixedlm.families.Binomial())
        t = time.perf_counter() - t
    fe = r.fixef()
    beta = list(fe.values()) if isinstance(fe, dict) else list(np.asarray(fe, dtype=float))
    ll = r.logLik()
    return t, [float(b) for b in beta], float(np.ravel(r.theta)[0]), float(getattr(ll, "value", ll))


def gpboost_fit(d):
    import gpboost as gpb

    X = np.column_stack([np.ones(len(d)), d[["x1", "x2", "x3"]].to_numpy()])
    t = time.perf_counter()
    m = gpb.GPModel(group_data=d.g.to_numpy(), likelihood="bernoulli_logit")
    m.fit(y=d.y.to_numpy(), X=X)
    t = time.perf_counter() - t
    beta = np.ravel(np.asarray(m.get_coef(), dtype=float))
    sigma2 = float(np.ravel(np.asarray(m.get_cov_pars(), dtype=float))[0])
    return t, list(beta), float(np.sqrt(sigma2)), -float(m.get_current_neg_log_likelihood())


def lme4_fit(d):
    with tempfile.TemporaryDirectory() as tmp:
        csv, script = os.path.join(tmp, "d.csv"), os.path.join(tmp, "fit.R")
        d.to_csv(csv, index=False)
        with open(script, "w") as fh:
            fh.write(LME4)
        out = subprocess.run(["Rscript", script, csv], capture_output=True, text=True, check=True).stdout.split()
    v = [float(x) for x in out]
    return v[0], v[1:5], v[5], v[6]


PEERS = {"shrinkage": ours, "mixedlm": mixedlm_fit, "lme4": lme4_fit, "gpboost": gpboost_fit}


def run_peer(name: str, n: int, J: int, budget: float):
    """One implementation in a process of its own: (seconds, beta, sigma_b, loglik), or
    None past the budget or on failure (the reason printed)."""
    cmd = [sys.executable, __file__, "--peer", name, "--n", str(n), "--J", str(J)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=budget)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the child's own group: R under it too
        proc.communicate()
        return {"time": None, "over": budget}
    if proc.returncode != 0:
        print(f"  {name} failed: {stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return {"time": None, "failed": True}
    t, beta, sb, ll = json.loads(stdout.strip().splitlines()[-1])
    return {"time": t, "beta": beta, "sigma_b": sb, "loglik": ll}


def load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def speed(sizes, peers, budget):
    rows = []
    for spec in sizes:
        n, J = (int(float(v)) for v in spec.split(":"))
        row = {"N": n, "J": J, "load_before": load(), "shrinkage": run_peer("shrinkage", n, J, budget)}
        me = row["shrinkage"]
        for name in peers:
            r = run_peer(name, n, J, budget)
            if r.get("time") is not None and me.get("time") is not None:
                a, b = np.r_[me["beta"], me["sigma_b"]], np.r_[r["beta"], r["sigma_b"]]
                r.update(ratio=r["time"] / me["time"], max_rel_diff=float(np.max(np.abs(a - b) / np.abs(b))),
                         dloglik=me["loglik"] - r["loglik"])
            elif r.get("over") and me.get("time"):
                r["ratio_at_least"] = r["over"] / me["time"]
            row[name] = r
        row["load_after"] = load()
        rows.append(row)
        cells = [f"{n:>9} {J:>6}  ours {me['time']:.2f} s"]
        for name in peers:
            r = row[name]
            cells.append(f"{name} " + (f"{r['time']:.1f} s ({r['ratio']:.0f}x, est {r['max_rel_diff']:.1e}, "
                                       f"dlogLik {r['dloglik']:.1e})" if r.get("ratio") else
                                       f"> {r['over']:.0f} s (>= {r.get('ratio_at_least', 0):.0f}x)"
                                       if r.get("over") else "failed"))
        print("  ".join(cells) + f"  [load {row['load_before']} -> {row['load_after']}]", flush=True)
    return rows


def big(n: int, tmp: str):
    """Write n rows of Parquet with DuckDB, fit them out of core in a child process."""
    import duckdb

    free = shutil.disk_usage(tmp).free
    if free < 40 * n:  # ~12 bytes a row compressed; keep a wide margin
        raise SystemExit(f"{tmp}: {free / 1e9:.0f} GB free, too little for {n:.0e} rows")
    folder = tempfile.mkdtemp(prefix="shrinkage-bench-glmm-", dir=tmp)
    path = os.path.join(folder, "rows.parquet")
    try:
        t = time.perf_counter()
        con = duckdb.connect(config={"memory_limit": "2GB", "temp_directory": folder})
        con.execute("SELECT setseed(0.25)")
        con.execute("CREATE TABLE b AS SELECT range AS g, 0.5 * sqrt(-2 * ln(random())) * cos(2 * pi() * random()) "
                    "AS b FROM range(10000)")
        con.execute(f"""COPY (
            SELECT CAST(r.g AS INTEGER) AS g, r.a, r.bb AS b, r.c,
                   CAST(random() < 1 / (1 + exp(-(-0.5 + (CASE r.a WHEN 'q' THEN 0.4 WHEN 'r' THEN -0.3
                        WHEN 's' THEN 0.2 ELSE 0 END) - 0.2 * r.bb + 0.3 * CAST(r.c AS INTEGER) + b.b))) AS TINYINT) AS y
            FROM (SELECT hash(range) % 10000 AS g, ['p', 'q', 'r', 's'][1 + CAST(hash(range + 1) % 4 AS INTEGER)] AS a,
                         CAST(hash(range + 2) % 3 AS INTEGER) AS bb, hash(range + 3) % 2 = 0 AS c
                  FROM range({n})) r JOIN b USING (g)
            ) TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE 1000000)""")
        con.close()
        made = time.perf_counter() - t
        size = os.path.getsize(path)
        out = subprocess.run([sys.executable, __file__, "--fit-big", path], capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result.update(N=n, parquet_bytes=size, write_seconds=made)
    print(f"big: {n:.0e} rows ({size / 1e9:.2f} GB Parquet, written in {made:.0f} s): fit {result['seconds']:.1f} s, "
          f"peak RSS {result['peak_rss_mb']:.0f} MB, {result['cells']} cells; beta {np.round(result['beta'], 4)}, "
          f"sigma_b {result['sigma_b']:.4f}, logLik {result['loglik']:.3f}  [load {result['load']}]", flush=True)
    return result


def fit_big(path: str):
    import shrinkage

    t = time.perf_counter()
    r = shrinkage.fit(BIG_FORMULA, data=path, family="binomial")
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak, "cells": r.cells, "nobs": r.nobs,
                      "beta": list(r.beta), "x_names": list(r.x_names), "sigma_b": r.sigma_b, "loglik": r.loglik,
                      "load": load()}))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="*", default=["1e5:1e3", "1e6:1e4"], help="N:J pairs")
    p.add_argument("--peers", nargs="*", default=["mixedlm", "lme4", "gpboost"])
    p.add_argument("--budget", type=float, default=900.0, help="seconds a peer may take at one size")
    p.add_argument("--big", type=float, help="rows of Parquet to fit out of core (e.g. 1e8)")
    p.add_argument("--tmp", default=tempfile.gettempdir())
    p.add_argument("--json")
    p.add_argument("--peer", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--J", type=int, help=argparse.SUPPRESS)
    p.add_argument("--fit-big", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.peer:
        print(json.dumps(PEERS[a.peer](data(a.n, a.J))))
        return
    if a.fit_big:
        fit_big(a.fit_big)
        return
    out = {"speed": speed(a.sizes, a.peers, a.budget)}
    if a.big:
        out["big"] = big(int(a.big), a.tmp)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
