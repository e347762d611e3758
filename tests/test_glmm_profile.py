"""The profile (likelihood-ratio) interval for sigma_b of a glmer fit against lme4's
confint(m, parm = "theta_", method = "profile") on cbpp (Laplace) and grouseticks (nAGQ = 9),
to 1e-4 relative (lme4 interpolates a spline through its profile points; the ends here are
the profile's roots); and the interval's own definition: at each end the deviance
minimised over beta is z^2 above the minimum.  Skipped without R/lme4, never when CI is set.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

import shrinkage
from shrinkage import InputError
from shrinkage.glmm.profile import _deviance
from test_lmm_lme4 import require_r

R_SCRIPT = r"""
suppressMessages(library(lme4))
dir <- commandArgs(trailingOnly = TRUE)[1]
data(cbpp); data(grouseticks)
write.csv(cbpp, file.path(dir, "cbpp.csv"), row.names = FALSE)
write.csv(grouseticks, file.path(dir, "grouseticks.csv"), row.names = FALSE)
ctl <- glmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e6), tolPwrss = 1e-12)
a <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial, control = ctl)
b <- glmer(TICKS ~ YEAR + cHEIGHT + (1 | BROOD), grouseticks, poisson, nAGQ = 9, control = ctl)
ci <- rbind(suppressMessages(confint(a, parm = "theta_", method = "profile")),
            suppressMessages(confint(b, parm = "theta_", method = "profile", level = 0.9)))
write.csv(ci, file.path(dir, "ci.csv"), row.names = FALSE)
"""


@pytest.fixture(scope="module")
def lme4_profile(tmp_path_factory):
    require_r()
    folder = tmp_path_factory.mktemp("lme4_glmm_profile")
    (folder / "fit.R").write_text(R_SCRIPT)
    subprocess.run(["Rscript", str(folder / "fit.R"), str(folder)], check=True, capture_output=True)
    cbpp = pd.read_csv(folder / "cbpp.csv").astype({"herd": str, "period": str})
    grouse = pd.read_csv(folder / "grouseticks.csv").astype({"YEAR": str, "BROOD": str})
    return cbpp, grouse, pd.read_csv(folder / "ci.csv").to_numpy()


def test_profile_interval_equals_lme4(lme4_profile):
    cbpp, grouse, ref = lme4_profile
    a = shrinkage.fit("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial")
    b = shrinkage.fit("TICKS ~ YEAR + cHEIGHT + (1 | BROOD)", grouse, family="poisson", nagq=9)
    ci_a, ci_b = a.confint(method="profile"), b.confint(level=0.9, method="profile")
    assert list(ci_a.index) == [".sig01"] and list(ci_b.columns) == ["5.0 %", "95.0 %"]
    np.testing.assert_allclose(ci_a.to_numpy()[0], ref[0], rtol=1e-4)
    np.testing.assert_allclose(ci_b.to_numpy()[0], ref[1], rtol=1e-4)
    z2 = norm.ppf(0.975) ** 2
    for end in ci_a.to_numpy()[0]:  # the definition: the profiled deviance is z^2 above the minimum
        assert _deviance(a, end, a.beta)[0] - a.optimum.value == pytest.approx(z2, abs=1e-7)


def test_profile_lower_end_at_zero_and_bad_options(rng):
    """Where the deviance at sigma_b = 0 is within z^2 of the minimum the lower end is 0
    (lme4 reports 0); a bad level or method is refused."""
    g = np.repeat(np.arange(6), 8)
    d = pd.DataFrame({"y": rng.poisson(np.exp(0.5 + rng.normal(scale=0.05, size=6)[g])).astype(float),
                      "g": g})
    r = shrinkage.fit("y ~ 1 + (1 | g)", d, family="poisson")
    lo, hi = r.confint(method="profile").to_numpy()[0]
    assert lo == 0.0 and hi > r.sigma_b
    assert _deviance(r, 0.0, r.beta)[0] - r.optimum.value < norm.ppf(0.975) ** 2
    with pytest.raises(InputError, match=r"method must be 'Wald' or 'profile'"):
        r.confint(method="boot")
    with pytest.raises(InputError, match=r"level must be between 0 and 1"):
        r.confint(level=1.5, method="profile")
