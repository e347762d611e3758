"""shrinkage's glmer (family="binomial", Laplace) beside mixedlm's glmer (a Python port of
lme4 with a Rust core), in one run.

Bernoulli rows y ~ x1 + x2 + x3 + (1 | g) with J groups (b_j ~ N(0, 0.5^2), slopes 0.3,
-0.2, 0.1, intercept -0.5).  Each time is the best of --repeat runs, the data built before
the clock starts; a peer is not run at a size once it took more than --budget seconds at a
smaller one.  The estimates are compared: the largest relative difference in fixef and
sigma_b, and the difference in logLik (both on lme4's Laplace scale).

    python3 bench/bench_glmm.py [--sizes 1e5:1e3 1e6:1e4] [--repeat 1] [--budget 300] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import warnings

import numpy as np

import shrinkage
from bench_meta import best  # the best of --repeat runs (bench/ is the script's folder)

FORMULA = "y ~ x1 + x2 + x3 + (1 | g)"


def data(n: int, J: int):
    import pandas as pd

    rng = np.random.default_rng(0)
    g = rng.integers(0, J, n)
    X = rng.normal(size=(n, 3))
    eta = -0.5 + X @ np.array([0.3, -0.2, 0.1]) + rng.normal(scale=0.5, size=J)[g]
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    return pd.DataFrame({"y": y, "x1": X[:, 0], "x2": X[:, 1], "x3": X[:, 2], "g": g})


def ours(d):
    r = shrinkage.fit(FORMULA, d, family="binomial")
    return np.asarray(r.beta), r.sigma_b, r.loglik


def mixedlm_fit(d):
    import mixedlm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = mixedlm.glmer(FORMULA, d.assign(g=d.g.astype(str)), family=mixedlm.families.Binomial())
    fe = r.fixef()
    beta = np.asarray(list(fe.values()) if isinstance(fe, dict) else fe, dtype=float)
    ll = r.logLik()
    return beta, float(np.ravel(r.theta)[0]), float(getattr(ll, "value", ll))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", default=["1e5:1e3", "1e6:1e4"], help="N:J pairs")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--budget", type=float, default=300.0)
    p.add_argument("--json")
    a = p.parse_args(argv)
    rows, skip = [], False
    print(f"{'N':>9} {'J':>7} {'ours s':>9} {'mixedlm s':>10} {'ratio':>7} {'max rel diff':>13} {'dlogLik':>9}")
    for spec in a.sizes:
        n, J = (int(float(v)) for v in spec.split(":"))
        d = data(n, J)
        t_ours, (b, s, ll) = best(lambda: ours(d), a.repeat)
        row = {"N": n, "J": J, "ours": t_ours, "mixedlm": None}
        if not skip:
            try:
                t_peer, (b2, s2, ll2) = best(lambda: mixedlm_fit(d), a.repeat)
            except ImportError:
                skip = True
            else:
                skip = t_peer > a.budget
                diff = float(np.max(np.abs(np.r_[b - b2, s - s2]) / np.abs(np.r_[b2, s2])))
                row.update(mixedlm=t_peer, max_rel_diff=diff, dloglik=ll - ll2)
        peer = row["mixedlm"]
        print(f"{n:>9} {J:>7} {t_ours:>9.3f} {peer if peer is None else f'{peer:.3f}':>10} "
              f"{'' if peer is None else f'{peer / t_ours:.1f}x':>7} {row.get('max_rel_diff', ''):>13} "
              f"{row.get('dloglik', ''):>9}")
        rows.append(row)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
