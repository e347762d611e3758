"""One fit of REML y ~ 1 + (1|g) by one implementation, in its own process, as JSON.

    python bench/peers.py NAME N J SEED LABELS

NAME: shrinkage | mixedlm-rs | mixedlm | statsmodels | lme4 | bincount.  LABELS: compact
(int64 0..J-1, as a user's integer ids) or scattered (int64 ids spread over 1e14: these
need hashing).  The data are simulated here from the seed, so every process fits the
same numbers.  Printed: wall time of the fitting call alone (data creation and, for
lme4, reading the CSV into R are not counted), the peak resident memory *added* by the
call (sampled from /proc every millisecond by a thread, so native allocations count),
and the estimates.  For lme4 the peak is the whole R process's (getrusage of the child).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import warnings

import numpy as np

PAGE = os.sysconf("SC_PAGE_SIZE")


def simulate(N: int, J: int, seed: int, labels: str):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, J, size=N)
    y = 10.0 + rng.normal(size=J)[codes] + rng.normal(size=N)
    if labels == "scattered":
        ids = rng.choice(10**14, size=J, replace=False)
        return y, ids[codes], codes
    return y, codes, codes


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class PeakRSS:
    """Peak resident set size above the level at entry, sampled every millisecond."""

    def __enter__(self):
        self.base = self.peak = rss()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, rss())
        self.added = self.peak - self.base


def fit_shrinkage(y, g):
    import shrinkage
    r = shrinkage.fit(y, g)
    return r.beta0, r.sigma2, r.sigma_b2, r.loglik


def fit_mixedlm_rs(y, g):
    import mixedlm_rs
    r = mixedlm_rs.MixedLM(y, np.ones((y.size, 1)), groups=g).fit(reml=True)
    return float(np.asarray(r.fe_params)[0]), float(r.scale), float(np.asarray(r.cov_re)[0, 0]), float(r.llf)


def fit_statsmodels(y, g):
    import statsmodels.api as sm
    r = sm.MixedLM(y, np.ones((y.size, 1)), groups=g).fit(reml=True)
    return float(np.asarray(r.fe_params)[0]), float(r.scale), float(np.asarray(r.cov_re)[0, 0]), float(r.llf)


def fit_mixedlm(y, g):
    import pandas as pd
    import mixedlm
    r = mixedlm.lmer("y ~ 1 + (1 | g)", data=pd.DataFrame({"y": y, "g": g}), REML=True)
    s = float(r.sigma)
    return float(r.fixef()["(Intercept)"]), s * s, float((r.theta[0] * s) ** 2), float(r.logLik().value)


def fit_bincount(y, codes):
    np.bincount(codes, weights=y)
    return None


R_SCRIPT = r"""
suppressMessages(library(lme4))
a <- commandArgs(trailingOnly = TRUE)
d <- read.csv(a[1], colClasses = c("numeric", "character"))
t <- proc.time()[["elapsed"]]
m <- lmer(y ~ 1 + (1 | g), data = d, REML = TRUE,
          control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12)))
elapsed <- proc.time()[["elapsed"]] - t
vc <- as.data.frame(VarCorr(m))
cat(sprintf('{"time": %.6f, "beta0": %.17g, "sigma_b2": %.17g, "sigma2": %.17g, "llf": %.17g}',
            elapsed, fixef(m)[[1]], vc$vcov[1], vc$vcov[2], as.numeric(logLik(m))))
"""


def run_lme4(y, g) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path, script = os.path.join(tmp, "d.csv"), os.path.join(tmp, "fit.R")
        np.savetxt(path, np.column_stack([y, g]), fmt=["%.17g", "%d"], delimiter=",", header="y,g", comments="")
        with open(script, "w") as f:
            f.write(R_SCRIPT)
        run = subprocess.run(["Rscript", script, path], capture_output=True, text=True)
    if run.returncode != 0:
        return {"error": run.stderr.strip().splitlines()[-1]}
    out = json.loads(run.stdout)
    out["peak"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    out["peak_kind"] = "R process max RSS"
    return out


FITS = {"shrinkage": fit_shrinkage, "mixedlm-rs": fit_mixedlm_rs, "statsmodels": fit_statsmodels,
        "mixedlm": fit_mixedlm, "bincount": fit_bincount}


def main() -> None:
    name, N, J, seed, labels = sys.argv[1], int(float(sys.argv[2])), int(float(sys.argv[3])), int(sys.argv[4]), sys.argv[5]
    warnings.simplefilter("ignore")
    y, g, codes = simulate(N, J, seed, labels)
    if name == "lme4":
        print(json.dumps(run_lme4(y, g)))
        return
    f = FITS[name]
    arg = codes if name == "bincount" else g
    if name != "bincount":
        f(*simulate(2000, 20, seed + 1, labels)[:2])  # imports and warm-up outside the timing
    with PeakRSS() as mem:
        t = time.perf_counter()
        est = f(y, arg)
        elapsed = time.perf_counter() - t
    out = {"time": elapsed, "peak": mem.added, "peak_kind": "added RSS"}
    if est is not None:
        out.update(zip(("beta0", "sigma2", "sigma_b2", "llf"), map(float, est)))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
