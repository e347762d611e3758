"""The fit (profile derivation, size classes) against the other derivations' generated
functions: marginal_loglik, gls_beta0, ml_criterion, reml_criterion (docs/marginal.pdf,
gls.pdf, ml_reml.pdf).  Two derivations of the same quantities must agree."""

from __future__ import annotations

import numpy as np
import pytest

from shrinkage import GroupStats, datasets, fit, numeric

from test_fit import CASES


def stats_of(case):
    return GroupStats.from_data(*CASES[case]())


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_loglik_and_beta0_agree_with_other_derivations(case, method):
    s = stats_of(case)
    n, ybar, ss = s.n.astype(float), s.mean, s.ss
    r = fit(stats=s, method=method)
    sb2 = max(r.sigma_b2, 1e-300 * r.sigma2)  # their public functions need sigma_b2 > 0
    other = (numeric.reml_criterion if method == "REML" else numeric.ml_criterion)(n, ybar, ss, r.sigma2, sb2)
    assert r.loglik == pytest.approx(float(other), abs=1e-9 * abs(r.loglik))
    assert r.beta0 == pytest.approx(float(numeric.gls_beta0(n, ybar, r.sigma2, sb2)), rel=1e-12, abs=1e-12)
    if method == "ML":
        total = float(np.sum(numeric.marginal_loglik(n, ybar, ss, r.beta0, r.sigma2, sb2)))
        assert r.loglik == pytest.approx(total, abs=1e-9 * abs(total))


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_evaluation_at_given_variances_agrees(method):
    d = datasets.load("sleepstudy")
    s = GroupStats.from_data(d.y, d.groups)
    for s2, sb2 in ((1000.0, 10.0), (2000.0, 1300.0), (50.0, 1e5)):
        r = fit(stats=s, method=method, sigma2=s2, sigma_b2=sb2)
        crit = numeric.reml_criterion if method == "REML" else numeric.ml_criterion
        assert r.loglik == pytest.approx(float(crit(s.n.astype(float), s.mean, s.ss, s2, sb2)), abs=1e-9 * abs(r.loglik))
