"""Crossed random effects beside the peers, in one run (issue 22 item 4).

    PYTHONPATH=src python bench/bench_crossed.py [--repeat 3] [--no-lme4]
    PYTHONPATH=src python bench/bench_crossed.py --recommender 1e7 1e5 1e4 [--timeout 1800]
    PYTHONPATH=src python bench/bench_crossed.py --units 1e7 1e5 1e4

InstEval (lme4's data: 73,421 ratings, 2,972 students x 1,128 lecturers),
``y ~ 1 + (1 | s) + (1 | d)``: each time the best of ``--repeat`` fits in this process (data
in memory): shrinkage.fit (REML and ML), mixedlm.lmer (a Python port of lme4 with a Rust
core; REML and ML), gpboost's GPModel (C++; ML, it has no REML) and lme4's lmer timed
inside R (default optimiser, the data read before the clock starts).  Prints seconds,
log-likelihoods (same model, same estimator: they must agree, or the peer stopped short)
and our ratio to each peer, with the load average.

``--recommender N U I``: simulated y = 1 + a_user + b_item + e (a ~ N(0, 0.25), b ~ N(0, 1),
e ~ N(0, 1)), N rows uniform over U users and I items; each package fits REML (gpboost ML)
in a process of its own under ``--timeout`` seconds and the wall time (or the failure) is
printed; ours also prints its time per factorisation.  ``--units N U I``: the CPU time of
each piece of one fit of that design (prepare, one evaluation, one gradient) and the memory.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

FORMULA = "y ~ 1 + (1 | s) + (1 | d)"

R_TIMED = r"""
suppressMessages(library(lme4))
a <- commandArgs(trailingOnly = TRUE)
if (grepl("[.]bin$", a[1])) {  # the recommender's columns: n, then s, d (int32) and y (float64)
  con <- file(a[1], "rb"); n <- readBin(con, "integer", 1)
  d <- data.frame(s = factor(readBin(con, "integer", n)), d = factor(readBin(con, "integer", n)),
                  y = readBin(con, "double", n)); close(con)
} else {
  d <- read.csv(a[1]); d$s <- factor(d$s); d$d <- factor(d$d)
}
best <- Inf
for (k in seq_len(as.integer(a[2]))) {
  t <- system.time(m <- lmer(y ~ 1 + (1 | s) + (1 | d), d, REML = TRUE))[["elapsed"]]
  best <- min(best, t)
}
cat(sprintf("%.6f %.10f\n", best, as.numeric(logLik(m))))
"""


def best_of(fit, repeat: int):
    out, best = None, float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        out = fit()
        best = min(best, time.perf_counter() - start)
    return best, out


def fit_ours(data, method):
    import shrinkage

    return float(shrinkage.fit(FORMULA, data=data, method=method).loglik)


def fit_mixedlm(data, method):
    import mixedlm

    return float(mixedlm.lmer(FORMULA, data, REML=method == "REML").logLik().value)


def fit_gpboost(data, method):
    """GPBoost's grouped random effects (ML only); its logLik is minus its neg_log_likelihood."""
    import gpboost as gpb

    assert method == "ML", "gpboost estimates by ML"
    groups = np.column_stack([pd.factorize(data["s"])[0], pd.factorize(data["d"])[0]])
    y = data["y"].to_numpy(float)
    m = gpb.GPModel(group_data=groups, likelihood="gaussian")
    m.fit(y=y, X=np.ones((len(y), 1)), params={"trace": False})
    return -float(m.get_current_neg_log_likelihood())


PEERS = {"shrinkage": fit_ours, "mixedlm": fit_mixedlm, "gpboost": fit_gpboost}


def for_peer(name: str, data: pd.DataFrame) -> pd.DataFrame:
    """mixedlm's formula interface wants string labels (as the earlier benches gave it)."""
    return data.astype({"s": str, "d": str}) if name == "mixedlm" else data


def insteval(args) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "insteval.csv"
        subprocess.run(["Rscript", "-e", f"write.csv(lme4::InstEval[, c('s', 'd', 'y')], '{path}', row.names = FALSE)"],
                       check=True, capture_output=True)
        data = pd.read_csv(path)
        rows = []
        for method in ("REML", "ML"):
            for name, fit in PEERS.items():
                if name == "gpboost" and method == "REML":
                    continue
                try:
                    frame = for_peer(name, data)
                    load = os.getloadavg()[0]
                    t, ll = best_of(lambda: fit(frame, method), args.repeat)
                    rows.append((method, name, t, ll, load))
                except ImportError:
                    print(f"{name} not installed (pip install '.[bench]')")
        if not args.no_lme4:
            script = Path(scratch) / "t.R"
            script.write_text(R_TIMED)
            load = os.getloadavg()[0]
            out = subprocess.run(["Rscript", str(script), str(path), str(args.repeat)], check=True,
                                 capture_output=True, text=True).stdout.split()
            rows.append(("REML", "lme4", float(out[0]), float(out[1]), load))
    print(f"InstEval {FORMULA}, {len(data)} rows; best of {args.repeat}; {os.cpu_count()} cores")
    for method in ("REML", "ML"):
        ours = next(t for m, n, t, _, _ in rows if m == method and n == "shrinkage")
        for m, name, t, ll, load in rows:
            if m == method:
                print(f"  {m:4s} {name:10s} {t:9.3f} s   logLik {ll:.6f}   their time / ours {t / ours:6.2f}"
                      f"   (load {load:.1f})")


def simulate(N: int, U: int, I: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    s = rng.integers(0, U, N).astype(np.int32)
    d = rng.integers(0, I, N).astype(np.int32)
    y = 1.0 + 0.5 * rng.standard_normal(U)[s] + rng.standard_normal(I)[d] + rng.standard_normal(N)
    return pd.DataFrame({"s": s, "d": d, "y": y})


def child(name: str, path: str, method: str) -> None:
    """One fit in this process: prints seconds and logLik (or the error)."""
    data = pd.read_parquet(path)
    if name == "shrinkage":
        from shrinkage.lmm import blocked

        original = blocked.evaluate
        clock = []

        def timed(theta, pr):
            t = time.perf_counter()
            out = original(theta, pr)
            clock.append(time.perf_counter() - t)
            return out

        blocked.evaluate = timed
    t = time.perf_counter()
    ll = PEERS[name](for_peer(name, data), method)
    print(f"RESULT {time.perf_counter() - t:.3f} {ll:.10f}", flush=True)
    if name == "shrinkage":
        print(f"  {len(clock)} factorisations of the dense block, {np.mean(clock):.2f} s each on average")


def recommender(args) -> None:
    N, U, I = (int(float(v)) for v in args.recommender)
    with tempfile.TemporaryDirectory() as scratch:
        t = time.perf_counter()
        data = simulate(N, U, I)
        path = Path(scratch) / "rec.parquet"
        data.to_parquet(path)
        binary = Path(scratch) / "rec.bin"
        with open(binary, "wb") as f:
            np.array([N], np.int32).tofile(f)
            (data["s"].to_numpy() + 1).tofile(f)
            (data["d"].to_numpy() + 1).tofile(f)
            data["y"].to_numpy().tofile(f)
        print(f"recommender: {N:.3g} rows, {U:.3g} users x {I:.3g} items, simulated in {time.perf_counter() - t:.0f} s;"
              f" timeout {args.timeout} s each")
        runs = [("shrinkage", "REML"), ("mixedlm", "REML"), ("gpboost", "ML")]
        for name, method in runs:
            if name not in args.peers:
                continue
            cmd = [sys.executable, __file__, "--child", name, str(path), method]
            report(name, method, cmd, args.timeout)
        if "lme4" in args.peers:
            script = Path(scratch) / "t.R"
            script.write_text(R_TIMED)
            report("lme4", "REML", ["Rscript", str(script), str(binary), "1"], args.timeout, r_output=True)


def report(name: str, method: str, cmd: list, timeout: float, r_output: bool = False) -> None:
    load = os.getloadavg()[0]
    t = time.perf_counter()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"  {method:4s} {name:10s} no fit within {timeout:.0f} s (stopped)   (load {load:.1f})", flush=True)
        return
    wall = time.perf_counter() - t
    lines = out.stdout.splitlines()
    result = [ln for ln in lines if ln.startswith("RESULT")] if not r_output else lines[-1:]
    if out.returncode != 0 or not result:
        last = (out.stderr.strip().splitlines() or ["?"])[-1]
        print(f"  {method:4s} {name:10s} failed after {wall:.0f} s: {last[:160]}   (load {load:.1f})", flush=True)
        return
    fields = result[0].split()[-2:]
    print(f"  {method:4s} {name:10s} {float(fields[0]):9.1f} s fit ({wall:.0f} s with start-up and reading)   "
          f"logLik {float(fields[1]):.4f}   (load {load:.1f})", flush=True)
    for ln in lines:
        if ln.startswith("  "):
            print("  " + ln)


def units(N: int, U: int, I: int) -> None:
    """What one fit of the recommender design is made of, in CPU seconds: prepare, one
    evaluation (downdate and dense Cholesky), one gradient after it; and the peak memory."""
    import resource

    from shrinkage.lmm._blas import one_thread
    from shrinkage.lmm.blocked import centred, evaluate, prepare
    from shrinkage.lmm.blocked_gradient import value_and_gradient

    data = simulate(N, U, I)
    codes = [data["s"].to_numpy().astype(np.int64), data["d"].to_numpy().astype(np.int64)]
    Xc, yc, _, _ = centred(np.ones((N, 1)), data["y"].to_numpy(), ("(Intercept)",))
    theta = np.array([0.5, 1.0])
    with one_thread():
        steps = [("prepare", lambda: prepare(codes, [np.ones((N, 1))] * 2, Xc, yc))]
        out = {}
        steps += [("evaluate", lambda: evaluate(theta, out["prepare"])),
                  ("gradient", lambda: value_and_gradient(theta, out["prepare"], "REML", out["evaluate"]))]
        for name, step in steps:
            c, t = time.process_time(), time.perf_counter()
            out[name] = step()
            print(f"  {name:9s} {time.process_time() - c:7.1f} s CPU  {time.perf_counter() - t:7.1f} s wall"
                  f"  (load {os.getloadavg()[0]:.1f})", flush=True)
    print(f"  peak resident memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.1f} GB")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--no-lme4", action="store_true")
    p.add_argument("--recommender", nargs=3, metavar=("ROWS", "USERS", "ITEMS"))
    p.add_argument("--peers", nargs="*", default=["shrinkage", "mixedlm", "gpboost", "lme4"])
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--child", nargs=3, metavar=("NAME", "PARQUET", "METHOD"))
    p.add_argument("--units", nargs=3, metavar=("ROWS", "USERS", "ITEMS"))
    args = p.parse_args()
    if args.units:
        units(*(int(float(v)) for v in args.units))
    elif args.child:
        child(*args.child)
    elif args.recommender:
        recommender(args)
    else:
        insteval(args)


if __name__ == "__main__":
    main()
