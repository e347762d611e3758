"""shrinkage.meta beside PyMARE and statsmodels' combine_effects, in one run.

Three calls on simulated Fay-Herriot / meta-analysis data (v_i ~ U(0.5, 2), tau^2 = 0.3):
  REML with three covariates      ours vs PyMARE's VarianceBasedLikelihoodEstimator(REML)
  REML, intercept only            ours vs PyMARE
  PM (Paule-Mandel), intercept    ours vs statsmodels combine_effects(method_re="iterated")
  DL, intercept                   ours vs statsmodels combine_effects(method_re="chi2")
Each time is the best of --repeat runs or more, until they took --least seconds (fewer once
they took --budget seconds: the same rules for ours and the peers; the 1-minute load average
is printed beside each row); a peer
is not run at a size once it took more than --budget seconds at a smaller one.  The estimates are compared (tau^2 relative difference).

    python3 bench/bench_meta.py [--sizes 1e3 1e4 1e5 1e6 1e7] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings

import numpy as np

import shrinkage


def data(k: int, covariates: int):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(k, covariates))
    v = rng.uniform(0.5, 2.0, k)
    y = 1 + X @ np.linspace(0.5, -0.2, covariates) + rng.normal(scale=np.sqrt(v + 0.3))
    return y, v, X


def best(f, repeat, cap=float("inf"), least=1.0):
    """The best of at least `repeat` runs, more until they took `least` seconds in all (at most 200:
    a fit of a millisecond on a loaded machine needs many to find its time), fewer once the runs so
    far took more than `cap` seconds (the same rules for ours and the peers)."""
    times, out = [], None
    while len(times) < 200:
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
        if sum(times) > cap or (len(times) >= repeat and sum(times) >= least):
            break
    return min(times), out


def pymare_fit(y, v, X, method):
    from pymare import Dataset
    from pymare.estimators import VarianceBasedLikelihoodEstimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = VarianceBasedLikelihoodEstimator(method=method).fit_dataset(
            Dataset(y=y, v=v, X=X if X is not None and X.shape[1] else None, add_intercept=True))
    return float(np.ravel(est.params_["tau2"])[0])


def statsmodels_fit(y, v, method_re):
    from statsmodels.stats.meta_analysis import combine_effects

    return float(combine_effects(y, v, method_re=method_re).tau2)


CALLS = {
    "REML, 3 covariates": (3, "REML", lambda y, v, X: pymare_fit(y, v, X, "REML"), "PyMARE"),
    "REML, intercept only": (0, "REML", lambda y, v, X: pymare_fit(y, v, None, "REML"), "PyMARE"),
    "PM, intercept only": (0, "PM", lambda y, v, X: statsmodels_fit(y, v, "iterated"), "statsmodels"),
    "DL, intercept only": (0, "DL", lambda y, v, X: statsmodels_fit(y, v, "chi2"), "statsmodels"),
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e3, 1e4, 1e5, 1e6, 1e7])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--budget", type=float, default=60.0)
    ap.add_argument("--least", type=float, default=1.0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    rows = []
    for name, (cov, method, peer, peer_name) in CALLS.items():
        peer_ok = True
        for k in map(int, args.sizes):
            y, v, X = data(k, cov)
            mods = X if cov else None
            ours, r = best(lambda: shrinkage.meta(y, v, method, mods=mods), args.repeat, args.budget, args.least)
            row = {"call": name, "k": k, "ours_s": ours, "tau2": r.tau2, "peer": peer_name, "load": os.getloadavg()[0]}
            if peer_ok:
                theirs, t2 = best(lambda: peer(y, v, X), args.repeat, args.budget, args.least)
                row.update(peer_s=theirs, ratio=theirs / ours, tau2_rel_diff=abs(t2 - r.tau2) / r.tau2)
                peer_ok = theirs < args.budget
            rows.append(row)
            peer_text = (f"{peer_name} {row['peer_s']:.4g} s, {row['ratio']:.1f}x, tau2 rel. diff "
                         f"{row['tau2_rel_diff']:.1e}" if "peer_s" in row else f"{peer_name} not run")
            print(f"{name:22s} k={k:>9,d}  ours {ours:.4g} s   {peer_text}   load {row['load']:.1f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
