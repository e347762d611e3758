"""The generated meta-analysis functions implement their derivations, corners included.

assert_implements compares each with its checked step evaluated by mpmath (variance ratios
1e-12 to 1e12, tau^2 = 0).  The truncated estimators are
printed as numpy.maximum (SymPy's printer wrote functools.reduce, which the module does not
import: calling them raised NameError).
"""

from __future__ import annotations

import pytest

from shrinkage import numeric
from shrinkage.testing import assert_implements

NAMES = ["meta_blup", "meta_shrinkage", "meta_conditional_variance", "meta_weight", "meta_loglik_term",
         "meta_score_term", "meta_blup_variance", "meta_h2", "meta_i2", "meta_dl_tau2", "meta_he_tau2",
         "meta_hs_tau2", "meta_sj_tau2", "meta_loglik", "meta_reml_loglik"]


@pytest.mark.parametrize("name", NAMES)
def test_generated_function_implements_its_step(name):
    assert_implements(getattr(numeric, name), name)


def test_truncation_at_zero_is_exact():
    assert numeric.meta_dl_tau2(Q=1.0, df=2.0, trP=1.0) == 0.0
    assert numeric.meta_dl_tau2(Q=5.0, df=2.0, trP=1.5) == 2.0
    assert numeric.meta_hs_tau2(Q=3.0, k=4.0, S1=2.0) == 0.0


def test_the_fit_reports_the_exported_log_likelihoods(monkeypatch):
    """The logLik a fit reports (and compares local maxima by) is the derivation's export evaluated at the
    fit's sums, not a copy: shifting the export shifts every reported log-likelihood by as much."""
    import numpy as np

    import shrinkage

    rng = np.random.default_rng(5)
    v = rng.uniform(0.05, 0.5, 12)
    y = rng.normal(scale=np.sqrt(v + 0.2))
    before = {m: shrinkage.meta(y, v, m).fit_stats for m in ("ML", "REML")}
    real = numeric._meta_loglik
    monkeypatch.setattr(numeric, "_meta_loglik", lambda k, logs, Q: real(k, logs, Q) + 1.0)
    for m in ("ML", "REML"):
        after = shrinkage.meta(y, v, m).fit_stats
        for fit in ("ML", "REML"):
            assert after[fit]["logLik"] == pytest.approx(before[m][fit]["logLik"] + 1.0, rel=1e-12)
