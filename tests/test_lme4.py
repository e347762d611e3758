"""shrinkage.fit against lme4 (R), the reference implementation users know.

lme4 comes from Debian's packages (r-cran-lme4; .ci/run installs it).  Where R or lme4
is missing the tests skip, but never when the CI variable is set.  lme4 optimises with
bobyqa, so its estimates carry about 1e-6 relative optimiser noise; the log-likelihood
is flat at the optimum, so it agrees far more tightly, and ours is never below lme4's
(we locate the global maximum in gamma).
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess

import numpy as np
import pytest

from shrinkage import datasets, fit

R_SCRIPT = r"""
suppressMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], colClasses = c("numeric", "character"))
m <- lmer(y ~ 1 + (1 | g), data = d, REML = (args[2] == "REML"),
          control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 0.2, rhoend = 1e-12),
                                check.conv.singular = "ignore"))
vc <- as.data.frame(VarCorr(m))
re <- ranef(m, condVar = TRUE)$g
cv <- as.numeric(attr(re, "postVar"))
out <- data.frame(key = c("beta0", "sigma_b2", "sigma2", "loglik", "singular"),
                  value = c(fixef(m)[[1]], vc$vcov[1], vc$vcov[2], as.numeric(logLik(m)), as.numeric(isSingular(m))))
write.csv(out, args[3], row.names = FALSE)
write.csv(data.frame(g = rownames(re), blup = re[[1]], condvar = cv), args[4], row.names = FALSE)
"""


def lme4_available() -> bool:
    if shutil.which("Rscript") is None:
        return False
    run = subprocess.run(["Rscript", "-e", "library(lme4)"], capture_output=True)
    return run.returncode == 0


@pytest.fixture(scope="module")
def lme4(tmp_path_factory):
    if not lme4_available():
        if os.environ.get("CI"):
            pytest.fail("R with lme4 is required when CI is set (apt-get install r-cran-lme4)")
        pytest.skip("R/lme4 not installed")
    folder = tmp_path_factory.mktemp("lme4")
    script = folder / "fit.R"
    script.write_text(R_SCRIPT)

    def run(y, groups, method):
        data, scalars, per_group = folder / "d.csv", folder / "s.csv", folder / "g.csv"
        with open(data, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["y", "g"])
            w.writerows(zip((repr(float(v)) for v in y), (str(g) for g in groups)))
        subprocess.run(["Rscript", str(script), str(data), method, str(scalars), str(per_group)],
                       check=True, capture_output=True, timeout=300)
        with open(scalars) as f:
            values = {row["key"]: float(row["value"]) for row in csv.DictReader(f)}
        with open(per_group) as f:
            rows = list(csv.DictReader(f))
        values["groups"] = [r["g"] for r in rows]
        values["blup"] = np.array([float(r["blup"]) for r in rows])
        values["condvar"] = np.array([float(r["condvar"]) for r in rows])
        return values

    return run


def unbalanced(seed: int):
    rng = np.random.default_rng(seed)
    J = int(rng.integers(5, 30))
    sizes = rng.integers(1, 25, size=J)
    groups = np.repeat([f"g{j:02d}" for j in range(J)], sizes)
    b = rng.normal(0, float(10 ** rng.uniform(-1, 0.5)), size=J)
    y = 3.0 + np.repeat(b, sizes) + rng.normal(size=sizes.sum())
    return y, groups


CASES = {
    "dyestuff": lambda: (datasets.load("dyestuff").y, datasets.load("dyestuff").groups),
    "dyestuff2": lambda: (datasets.load("dyestuff2").y, datasets.load("dyestuff2").groups),
    "sleepstudy": lambda: (datasets.load("sleepstudy").y, datasets.load("sleepstudy").groups),
    **{f"unbalanced{s}": (lambda s=s: unbalanced(s)) for s in range(4)},
}


@pytest.mark.slow
@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_fit_matches_lme4(lme4, case, method):
    y, groups = CASES[case]()
    ours = fit(y, groups, method=method)
    ref = lme4(y, groups, method)
    # the maximised log-likelihood: same scale as logLik(), and ours is the global maximum
    assert ours.loglik == pytest.approx(ref["loglik"], abs=1e-7 * abs(ref["loglik"]))
    assert ours.loglik >= ref["loglik"] - 1e-9 * abs(ref["loglik"])
    assert ours.singular == bool(ref["singular"])
    scale = ours.sigma2
    assert ours.sigma2 == pytest.approx(ref["sigma2"], rel=1e-5)
    assert ours.sigma_b2 == pytest.approx(ref["sigma_b2"], rel=1e-5, abs=1e-7 * scale)
    assert ours.beta0 == pytest.approx(ref["beta0"], rel=1e-7, abs=1e-6 * np.sqrt(scale))
    assert [str(g) for g in ours.groups] == ref["groups"]
    # BLUPs (ranef) and their conditional variances (condVar), group by group
    np.testing.assert_allclose(ours.blup, ref["blup"], rtol=1e-4, atol=1e-6 * np.sqrt(scale))
    np.testing.assert_allclose(ours.conditional_variance, ref["condvar"], rtol=1e-4, atol=1e-9 * scale)
