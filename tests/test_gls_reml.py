"""GLS, profiled ML and REML against dense computations built from the model alone.

Oracles (none shares code with derivations/gls.py or ml_reml.py):
* dense GLS with the block-diagonal covariance V = sigma2 I + sigma_b2 Z Z^T (numpy solve);
* the dense log-likelihood maximised over beta0, and Harville's REML log-likelihood
  -1/2 [(N - p) log 2 pi + log det V + log det(X^T V^-1 X) + r^T V^-1 r], X = 1, p = 1;
* the REML criterion as the integral over beta0 of the dense likelihood (mpmath.quad);
* statsmodels MixedLM (reml=True and False), whose log-likelihood profiles sigma2 out.
A deliberately wrong weight must fail the same comparisons.
"""

from __future__ import annotations

import warnings

import mpmath
import numpy as np
import pytest
from scipy import optimize

from shrinkage import numeric

REL = 1e-10


def random_problem(rng, J=None):
    """An unbalanced data set drawn from the model, and variances to evaluate at."""
    J = J or int(rng.integers(1, 9))
    sizes = rng.choice([1, 2, 3, 4, 6, 10, 25], size=J)
    sigma2 = float(10 ** rng.uniform(-1.5, 1.5))
    sigma_b2 = float(10 ** rng.uniform(-1.5, 1.5))
    beta0 = float(rng.normal(0, 5))
    groups = [beta0 + rng.normal(0, np.sqrt(sigma_b2)) + rng.normal(0, np.sqrt(sigma2), size=k) for k in sizes]
    # evaluate at variances near, not at, the truth
    return groups, sigma2 * float(10 ** rng.uniform(-0.5, 0.5)), sigma_b2 * float(10 ** rng.uniform(-0.5, 0.5))


def statistics(groups):
    n = np.array([len(g) for g in groups], dtype=float)
    ybar = np.array([g.mean() for g in groups])
    ss = np.array([np.sum((g - g.mean()) ** 2) for g in groups])
    return n, ybar, ss


class Dense:
    """The model as one multivariate normal: y ~ N(beta0 1, V), V = sigma2 I + sigma_b2 Z Z^T."""

    def __init__(self, groups, sigma2, sigma_b2):
        self.y = np.concatenate(groups)
        labels = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
        self.N = len(self.y)
        self.V = sigma2 * np.eye(self.N) + sigma_b2 * (labels[:, None] == labels[None, :])
        self.one = np.ones(self.N)
        self.Vi_one = np.linalg.solve(self.V, self.one)
        self.Vi_y = np.linalg.solve(self.V, self.y)
        self.logdet = np.linalg.slogdet(self.V)[1]

    def precompute_inverse(self):
        """Make loglik cheap to call many times (for quadrature)."""
        Vinv = np.linalg.inv(self.V)
        self.loglik = lambda beta0: -0.5 * (self.N * np.log(2 * np.pi) + self.logdet + (self.y - beta0) @ Vinv @ (self.y - beta0))

    def gls(self):
        return (self.one @ self.Vi_y) / (self.one @ self.Vi_one)

    def loglik(self, beta0):
        r = self.y - beta0
        return -0.5 * (self.N * np.log(2 * np.pi) + self.logdet + r @ np.linalg.solve(self.V, r))

    def reml(self):
        """Harville's REML log-likelihood with the (N - p) log 2 pi constant, p = 1."""
        r = self.y - self.gls()
        xvx = self.one @ self.Vi_one
        return -0.5 * ((self.N - 1) * np.log(2 * np.pi) + self.logdet + np.log(xvx) + r @ np.linalg.solve(self.V, r))


def close(a, b, rel=REL):
    return abs(a - b) <= rel * max(1.0, abs(a), abs(b))


def test_gls_weight_is_the_precision_of_a_group_mean(rng):
    for _ in range(100):
        n = int(rng.choice([1, 2, 5, 40]))
        sigma2, sigma_b2 = 10 ** rng.uniform(-2, 2, size=2)
        V = sigma2 * np.eye(n) + sigma_b2 * np.ones((n, n))
        want = np.ones(n) @ np.linalg.solve(V, np.ones(n))  # 1^T V_j^-1 1 = 1/Var(ybar_j)
        assert close(float(numeric.gls_weight(n, sigma2, sigma_b2)), want)


def test_gls_beta0_matches_dense_gls(rng):
    for _ in range(200):
        groups, sigma2, sigma_b2 = random_problem(rng)
        n, ybar, _ = statistics(groups)
        want = Dense(groups, sigma2, sigma_b2).gls()
        assert close(float(numeric.gls_beta0(n, ybar, sigma2, sigma_b2)), want)


def test_gls_beta0_maximises_the_dense_likelihood(rng):
    for _ in range(20):
        groups, sigma2, sigma_b2 = random_problem(rng)
        n, ybar, _ = statistics(groups)
        dense = Dense(groups, sigma2, sigma_b2)
        res = optimize.minimize_scalar(lambda b: -dense.loglik(b), bracket=(ybar.min() - 1, ybar.max() + 1), tol=1e-12)
        assert float(numeric.gls_beta0(n, ybar, sigma2, sigma_b2)) == pytest.approx(res.x, abs=1e-6 * (1 + abs(res.x)))


def test_a_wrong_weight_is_rejected(rng):
    """w_j = n_j/(sigma2 + sigma_b2) (n_j missing from the random-effect part) fails the dense check."""
    wrong = caught = 0
    for _ in range(60):
        groups, sigma2, sigma_b2 = random_problem(rng, J=int(rng.integers(2, 9)))
        n, ybar, _ = statistics(groups)
        if np.all(n == n[0]):
            continue  # equal sizes: every weighting gives the same mean
        w = n / (sigma2 + sigma_b2)
        wrong += 1
        caught += not close(np.sum(w * ybar) / np.sum(w), Dense(groups, sigma2, sigma_b2).gls())
    assert wrong > 30 and caught == wrong


def test_ml_criterion_is_the_dense_likelihood_maximised_over_beta0(rng):
    for _ in range(200):
        groups, sigma2, sigma_b2 = random_problem(rng)
        n, ybar, ss = statistics(groups)
        dense = Dense(groups, sigma2, sigma_b2)
        assert close(float(numeric.ml_criterion(n, ybar, ss, sigma2, sigma_b2)), dense.loglik(dense.gls()))


def test_reml_criterion_matches_harvilles_dense_formula(rng):
    for _ in range(200):
        groups, sigma2, sigma_b2 = random_problem(rng)
        n, ybar, ss = statistics(groups)
        assert close(float(numeric.reml_criterion(n, ybar, ss, sigma2, sigma_b2)), Dense(groups, sigma2, sigma_b2).reml())


def test_reml_minus_ml_is_the_log_integral_term(rng):
    """REML = ML + log(2 pi)/2 - log(sum_j w_j)/2, the Gaussian integral over beta0."""
    for _ in range(50):
        groups, sigma2, sigma_b2 = random_problem(rng)
        n, ybar, ss = statistics(groups)
        W = np.sum(numeric.gls_weight(n, sigma2, sigma_b2))
        diff = numeric.reml_criterion(n, ybar, ss, sigma2, sigma_b2) - numeric.ml_criterion(n, ybar, ss, sigma2, sigma_b2)
        assert diff == pytest.approx(0.5 * np.log(2 * np.pi) - 0.5 * np.log(W), rel=1e-9, abs=1e-9)


@pytest.mark.slow
def test_reml_is_the_integral_of_the_likelihood_over_beta0(rng):
    """log of the integral over beta0 of the dense likelihood (flat prior), by mpmath."""
    for _ in range(8):
        groups, sigma2, sigma_b2 = random_problem(rng, J=int(rng.integers(1, 5)))
        n, ybar, ss = statistics(groups)
        dense = Dense(groups, sigma2, sigma_b2)
        dense.precompute_inverse()
        centre, width = dense.gls(), 1 / np.sqrt(dense.one @ dense.Vi_one)
        # integrate the dense likelihood itself (no use of its being quadratic in beta0)
        peak = dense.loglik(centre)
        f = lambda b: mpmath.exp(dense.loglik(float(b)) - peak)  # noqa: E731
        breaks = [-mpmath.inf] + [centre + k * width for k in (-10, -3, 0, 3, 10)] + [mpmath.inf]
        value = float(mpmath.log(mpmath.quad(f, breaks))) + peak
        assert close(float(numeric.reml_criterion(n, ybar, ss, sigma2, sigma_b2)), value, 1e-9)


def test_vectorised_over_a_batch_of_variances(rng):
    groups, _, _ = random_problem(rng, J=5)
    n, ybar, ss = statistics(groups)
    s2 = np.array([0.5, 1.0, 2.0])[:, None]
    sb2 = np.array([0.1, 1.0, 10.0])[:, None]
    for f in (numeric.ml_criterion, numeric.reml_criterion):
        batch = f(n, ybar, ss, s2, sb2)
        assert batch.shape == (3,)
        for k in range(3):
            assert close(batch[k], float(f(n, ybar, ss, s2[k, 0], sb2[k, 0])))
    beta = numeric.gls_beta0(n, ybar, s2, sb2)
    assert beta.shape == (3,)


def test_stable_when_group_means_are_far_from_zero(rng):
    """y around 1e8 with unit noise: the criteria depend only on deviations from beta0_hat."""
    groups, sigma2, sigma_b2 = random_problem(rng, J=6)
    n, ybar, ss = statistics(groups)
    for f in (numeric.ml_criterion, numeric.reml_criterion):
        assert close(float(f(n, ybar + 1e8, ss, sigma2, sigma_b2)), float(f(n, ybar, ss, sigma2, sigma_b2)), 1e-7)


# --- statsmodels: the lme4 convention for the REML constant ------------------------
def _statsmodels_model(groups, reml):
    sm = pytest.importorskip("statsmodels.api")
    y = np.concatenate(groups)
    labels = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
    m = sm.MixedLM(y, np.ones((len(y), 1)), groups=labels)
    m.reml = reml
    m.cov_pen = m.fe_pen = None  # what fit() sets before it calls loglike()
    return m


def _profiled_over_sigma2(criterion, n, ybar, ss, gamma):
    """max over sigma2 of criterion(sigma2, gamma sigma2), numerically (scipy, bounded Brent)."""
    res = optimize.minimize_scalar(lambda t: -criterion(n, ybar, ss, np.exp(t), gamma * np.exp(t)),
                                   bounds=(-12, 12), method="bounded", options={"xatol": 1e-10})
    return -res.fun


@pytest.mark.parametrize("reml", [True, False])
def test_criteria_match_statsmodels_mixedlm(rng, reml):
    from statsmodels.regression.mixed_linear_model import MixedLMParams

    criterion = numeric.reml_criterion if reml else numeric.ml_criterion
    for _ in range(10):
        groups, sigma2, sigma_b2 = random_problem(rng, J=int(rng.integers(2, 7)))
        model = _statsmodels_model(groups, reml)
        n, ybar, ss = statistics(groups)
        gamma = sigma_b2 / sigma2
        params = MixedLMParams.from_components(fe_params=np.zeros(1), cov_re=np.array([[gamma]]))
        theirs = model.loglike(params, profile_fe=True)  # beta0 and sigma2 profiled out
        ours = _profiled_over_sigma2(lambda *a: float(criterion(*a)), n, ybar, ss, gamma)
        assert close(ours, theirs, 1e-9), (reml, ours, theirs)


def test_reml_criterion_at_a_statsmodels_reml_fit_is_its_loglik(rng):
    groups, _, _ = random_problem(rng, J=8)
    model = _statsmodels_model(groups, True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = model.fit(reml=True)
    n, ybar, ss = statistics(groups)
    sigma_b2 = float(np.asarray(fit.cov_re)[0, 0])
    if sigma_b2 <= 1e-8:
        pytest.skip("boundary fit")
    assert float(numeric.reml_criterion(n, ybar, ss, fit.scale, sigma_b2)) == pytest.approx(fit.llf, rel=1e-9)


# --- lme4: logLik of an lmer fit is our criterion at lme4's variance estimates -----
LME4_SCRIPT = r"""
suppressMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], colClasses = c("numeric", "character", "character"))
out <- NULL
for (s in unique(d$set)) for (reml in c(TRUE, FALSE)) {
  m <- lmer(y ~ 1 + (1 | g), data = d[d$set == s, ], REML = reml,
            control = lmerControl(check.conv.singular = "ignore"))
  vc <- as.data.frame(VarCorr(m))
  out <- rbind(out, data.frame(set = s, reml = reml, sigma_b2 = sprintf("%.17g", vc$vcov[1]),
                               sigma2 = sprintf("%.17g", vc$vcov[2]), loglik = sprintf("%.17g", as.numeric(logLik(m)))))
}
write.csv(out, args[2], row.names = FALSE)
"""


@pytest.mark.slow  # starts R
def test_criteria_are_lme4s_loglik(rng, tmp_path):
    """lme4's logLik (REML fit: with the (N - 1) log 2 pi constant; ML fit: the ordinary
    log-likelihood) equals reml_criterion / ml_criterion at lme4's own estimates."""
    import csv
    import os
    import shutil
    import subprocess

    if shutil.which("Rscript") is None or subprocess.run(["Rscript", "-e", "library(lme4)"], capture_output=True).returncode:
        if os.environ.get("CI"):
            pytest.fail("R with lme4 is required when CI is set")
        pytest.skip("R/lme4 not installed")
    sets = {}
    with open(tmp_path / "d.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["y", "g", "set"])
        for s in range(4):
            groups, _, _ = random_problem(rng, J=int(rng.integers(3, 9)))
            sets[str(s)] = statistics(groups)
            for k, g in enumerate(groups):
                for v in g:
                    w.writerow([repr(float(v)), f"g{k}", str(s)])
    (tmp_path / "fit.R").write_text(LME4_SCRIPT)
    subprocess.run(["Rscript", str(tmp_path / "fit.R"), str(tmp_path / "d.csv"), str(tmp_path / "out.csv")],
                   check=True, capture_output=True, timeout=120)
    with open(tmp_path / "out.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8
    for row in rows:
        n, ybar, ss = sets[row["set"]]
        sigma_b2 = max(float(row["sigma_b2"]), 1e-300)  # a singular fit reports exactly 0
        criterion = numeric.reml_criterion if row["reml"] == "TRUE" else numeric.ml_criterion
        ours = float(criterion(n, ybar, ss, float(row["sigma2"]), sigma_b2))
        assert close(ours, float(row["loglik"]), 1e-10), row
