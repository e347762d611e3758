"""shrinkage.fit(formula, data) against lme4's lmer, the implementation users know.

lme4 runs through Rscript with a tight optimiser (bobyqa, rhoend 1e-12), on sleepstudy
with (1 | Subject), (Days | Subject) and (1 | Subject) + (0 + Days | Subject), on
simulated data with a factor covariate and its interaction (lme4's treatment contrasts,
names like MachineB, x:MachineB), and on a singular fit.  fixef, vcov, VarCorr, sigma^2,
logLik, ranef and condVar agree to 1e-6 (relative, or relative to the parameter's scale
for values near 0).  Skipped without R/lme4, never when CI is set.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

import shrinkage
from shrinkage import datasets
from shrinkage.lmm.fit import RankDeficiencyWarning

R_SCRIPT = r"""
suppressMessages(library(lme4))
a <- commandArgs(trailingOnly = TRUE)
d <- read.csv(a[1], stringsAsFactors = TRUE)
d[[a[4]]] <- factor(d[[a[4]]], levels = sort(unique(as.character(d[[a[4]]])), method = "radix"))
m <- lmer(as.formula(a[2]), data = d, REML = (a[3] == "REML"),
          control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e6),
                                check.conv.singular = "ignore"))
out <- file(a[5], "w")
put <- function(key, v, i = seq_along(v), j = 1) {
  writeLines(sprintf("%s,%s,%s,%.17g", key, i, j, v), out)
}
fe <- fixef(m); writeLines(sprintf("fixef,%s,1,%.17g", names(fe), fe), out)
V <- as.matrix(vcov(m)); for (j in seq_len(ncol(V))) put("vcov", V[, j], seq_len(nrow(V)), j)
vc <- VarCorr(m)
S <- as.matrix(Matrix::bdiag(lapply(vc, function(x) as.matrix(x))))
for (j in seq_len(ncol(S))) put("varcorr", S[, j], seq_len(nrow(S)), j)
put("sigma2", sigma(m)^2); put("loglik", as.numeric(logLik(m))); put("singular", as.numeric(isSingular(m)))
put("theta", getME(m, "theta"))
re <- ranef(m, condVar = TRUE)[[1]]
for (k in seq_len(ncol(re))) put("ranef", re[[k]], seq_len(nrow(re)), k)
pv <- attr(re, "postVar")
if (is.list(pv)) {  # one array per bar term: assemble the block-diagonal (q, q, J) array
  full <- array(0, c(ncol(re), ncol(re), nrow(re))); off <- 0
  for (b in pv) { k <- dim(b)[1]; full[off + seq_len(k), off + seq_len(k), ] <- b; off <- off + k }
  pv <- full
}
put("condvar", as.vector(pv))
writeLines(sprintf("label,%d,1,%s", seq_len(nrow(re)), rownames(re)), out)
close(out)
"""


def lme4_available() -> bool:
    if shutil.which("Rscript") is None:
        return False
    return subprocess.run(["Rscript", "-e", "library(lme4)"], capture_output=True).returncode == 0


def require_r() -> None:
    """Skip where R/lme4 is absent; in CI a missing R is a failure."""
    if lme4_available():
        return
    if os.environ.get("CI"):
        pytest.fail("R with lme4 is required when CI is set (apt-get install r-cran-lme4)")
    pytest.skip("R/lme4 not installed")


@pytest.fixture(scope="module")
def lme4(tmp_path_factory):
    require_r()
    folder = tmp_path_factory.mktemp("lme4_lmm")
    script = folder / "fit.R"
    script.write_text(R_SCRIPT)

    def run(frame: pd.DataFrame, formula: str, method: str, group: str):
        data, out = folder / "d.csv", folder / "out.csv"
        logical = {c: frame[c].map({True: "TRUE", False: "FALSE"}) for c in frame if frame[c].dtype.kind == "b"}
        frame.assign(**logical).to_csv(data, index=False, float_format="%.17g")  # R reads TRUE as a logical
        subprocess.run(["Rscript", str(script), str(data), formula, method, group, str(out)], check=True,
                       capture_output=True, timeout=300)
        ref: dict = {}
        with open(out) as f:
            for key, i, j, v in csv.reader(f):
                ref.setdefault(key, []).append((i, int(j), v))
        get = {}
        get["fixef"] = {i: float(v) for i, _, v in ref["fixef"]}
        for key in ("vcov", "varcorr", "ranef"):
            rows = [(int(i), j, float(v)) for i, j, v in ref[key]]
            a = np.zeros((max(r[0] for r in rows), max(r[1] for r in rows)))
            for i, j, v in rows:
                a[i - 1, j - 1] = v
            get[key] = a
        for key in ("sigma2", "loglik", "singular"):
            get[key] = float(ref[key][0][2])
        get["theta"] = np.array([float(v) for _, _, v in ref["theta"]])
        get["labels"] = [v for _, _, v in ref["label"]]
        q, J = get["ranef"].shape[1], len(get["labels"])
        flat = np.array([float(v) for _, _, v in ref["condvar"]])
        get["condvar"] = flat.reshape((q, q, J), order="F").transpose(2, 0, 1)
        return get

    return run


def sleepstudy() -> pd.DataFrame:
    return pd.read_csv(datasets.load("sleepstudy").path)


def factor_data(seed: int = 3) -> pd.DataFrame:
    """Unbalanced groups, a numeric x and a three-level factor with an interaction."""
    rng = np.random.default_rng(seed)
    J = 25
    sizes = rng.integers(2, 14, size=J)
    g = np.repeat([f"s{j:02d}" for j in range(J)], sizes)
    codes = np.repeat(np.arange(J), sizes)
    N = int(sizes.sum())
    x = rng.uniform(0, 10, size=N)
    machine = rng.choice(["A", "B", "C"], size=N)
    b0, b1 = rng.normal(0, 3, size=J), rng.normal(0, 0.5, size=J)
    eff = {"A": 0.0, "B": 2.0, "C": -1.5}
    y = (20 + 1.2 * x + np.vectorize(eff.get)(machine) + 0.3 * x * (machine == "B") + b0[codes]
         + b1[codes] * x + rng.normal(0, 1.5, size=N))
    return pd.DataFrame({"y": y, "x": x, "Machine": machine, "g": g})


def singular_data(seed: int = 5) -> pd.DataFrame:
    """Random intercepts only in truth, a random slope in the model: often singular."""
    rng = np.random.default_rng(seed)
    J, n = 12, 6
    g = np.repeat([f"g{j:02d}" for j in range(J)], n)
    x = np.tile(np.arange(n, dtype=float), J)
    y = 5 + 0.5 * x + np.repeat(rng.normal(0, 0.05, size=J), n) + rng.normal(size=J * n)
    return pd.DataFrame({"y": y, "x": x, "g": g})


def rank_deficient_data() -> pd.DataFrame:
    """lme4's drops and names (issue 19 items 9, 10): x2 = 2 x + 1 (dropped, as lme4's pivoted
    QR drops it), a bool covariate (lme4: bTRUE), a factor with an unused level (dropped)."""
    frame = factor_data(seed=7)
    return frame.assign(x2=2 * frame["x"] + 1, b=frame["x"] > 5,
                        Machine=pd.Categorical(frame["Machine"], categories=["A", "B", "C", "D"]))


CASES = {
    "sleep_intercept": (sleepstudy, "Reaction ~ Days + (1 | Subject)", "Subject"),
    "sleep_slope": (sleepstudy, "Reaction ~ Days + (Days | Subject)", "Subject"),
    "sleep_uncorrelated": (sleepstudy, "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", "Subject"),
    "factor": (factor_data, "y ~ x * Machine + (x | g)", "g"),
    "singular": (singular_data, "y ~ x + (x | g)", "g"),
    "rank_deficient": (rank_deficient_data, "y ~ x + x2 + b + Machine + (1 | g)", "g"),
}
DROPS = {"rank_deficient": "x2"}  # lme4: "fixed-effect model matrix is rank deficient so dropping 1 column ..."


def close(ours, ref, scale, rel=1e-6):
    """|ours - ref| <= rel (|ref| + scale), elementwise (scale: the parameter's own size,
    e.g. its standard error, for estimates near 0)."""
    ours, ref = np.asarray(ours, dtype=float), np.asarray(ref, dtype=float)
    assert ours.shape == ref.shape
    bound = rel * (np.abs(ref) + np.broadcast_to(scale, ref.shape))
    worst = np.max(np.abs(ours - ref) - bound)
    assert worst <= 0, f"differs beyond {rel:g}: ours {ours.ravel()[:6]}, lme4 {ref.ravel()[:6]}"


@pytest.mark.slow
@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_lme4(lme4, case, method):
    make, formula, group = CASES[case]
    frame = make()
    if case in DROPS:
        with pytest.warns(RankDeficiencyWarning, match=f"dropping 1 column / coefficient: {DROPS[case]}$"):
            ours = shrinkage.fit(formula, data=frame, method=method)
    else:
        ours = shrinkage.fit(formula, data=frame, method=method)
    ref = lme4(frame, formula, method, group)
    assert ours.singular == bool(ref["singular"])
    # the maximised criterion: ours is never below lme4's (we find the optimum at least as well)
    assert ours.loglik == pytest.approx(ref["loglik"], abs=1e-6 * abs(ref["loglik"]))
    assert ours.loglik >= ref["loglik"] - 1e-10 * abs(ref["loglik"])
    assert list(ours.fixef.index) == list(ref["fixef"])
    se = np.sqrt(np.diag(ours.vcov_matrix))
    close(ours.fixef.to_numpy(), list(ref["fixef"].values()), se)
    close(ours.vcov_matrix, ref["vcov"], np.outer(se, se))
    assert ours.sigma2 == pytest.approx(ref["sigma2"], rel=1e-6)
    D = ours.varcorr[group].to_numpy()
    sd = np.sqrt(np.maximum(np.diag(D), ours.sigma2 * 1e-4))
    close(D, ref["varcorr"], np.outer(sd, sd))
    assert [str(v) for v in ours.ranef[group].index] == ref["labels"]
    close(ours.ranef[group].to_numpy(), ref["ranef"], sd)
    # lme4 reports condVar term by term (bar term by bar term); ours is the whole matrix,
    # whose off-block entries are checked against the dense definition in test_lmm_objective
    blocks = np.zeros_like(D, dtype=bool)
    start = 0
    for size in ours.blocks:
        blocks[start:start + size, start:start + size] = True
        start += size
    close(ours.condvar[group][:, blocks], ref["condvar"][:, blocks], np.outer(sd, sd)[blocks][None])
    if not ours.singular:
        close(ours.theta, ref["theta"], 1.0)


def test_one_way_formula_equals_array_fit():
    """fit(y, groups) (the one-way code) and the formula y ~ 1 + (1 | g) give the same numbers."""
    frame = sleepstudy()
    for method in ("REML", "ML"):
        a = shrinkage.fit(frame["Reaction"].to_numpy(), frame["Subject"].to_numpy(), method=method)
        f = shrinkage.fit("Reaction ~ 1 + (1 | Subject)", data=frame, method=method)
        assert f.loglik == pytest.approx(a.loglik, rel=1e-12)
        assert f.fixef["(Intercept)"] == pytest.approx(a.beta0, rel=1e-9)
        assert f.sigma2 == pytest.approx(a.sigma2, rel=1e-7)
        assert f.varcorr["Subject"].iloc[0, 0] == pytest.approx(a.sigma_b2, rel=1e-7)
        np.testing.assert_allclose(f.ranef["Subject"]["(Intercept)"].to_numpy(), a.blup, rtol=1e-7,
                                   atol=1e-9 * np.sqrt(a.sigma2))
        np.testing.assert_allclose(f.condvar["Subject"][:, 0, 0], a.conditional_variance, rtol=1e-7)


SUMMARY_R = r"""
suppressMessages(library(lme4))
a <- commandArgs(trailingOnly = TRUE)
d <- read.csv(a[1]); d$Subject <- factor(d$Subject)
m <- lmer(as.formula(a[2]), data = d, REML = (a[3] == "REML"),
          control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e6)))
writeLines(capture.output(print(summary(m))), a[4])
ci <- suppressMessages(suppressWarnings(confint(m, oldNames = TRUE)))
write.csv(data.frame(name = rownames(ci), lo = ci[, 1], hi = ci[, 2]), a[5], row.names = FALSE)
"""


@pytest.fixture(scope="module")
def lme4_summary(tmp_path_factory):
    require_r()
    folder = tmp_path_factory.mktemp("lme4_summary")
    (folder / "s.R").write_text(SUMMARY_R)

    def run(formula: str, method: str):
        out, ci = folder / "summary.txt", folder / "ci.csv"
        subprocess.run(["Rscript", str(folder / "s.R"), str(datasets.load("sleepstudy").path), formula, method,
                        str(out), str(ci)], check=True, capture_output=True, timeout=600)
        return out.read_text(), pd.read_csv(ci)

    return run


@pytest.mark.slow
@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("formula", ["Reaction ~ Days + (Days | Subject)", "Reaction ~ Days + (1 | Subject)",
                                     "Reaction ~ Days + I(2 * Days) + (1 | Subject)"])
def test_summary_and_profile_intervals_match_lme4(lme4_summary, formula, method):
    text, ci = lme4_summary(formula, method)
    if "I(2 * Days)" in formula:  # dropped, and named under "fit warnings:" as lme4 does
        with pytest.warns(RankDeficiencyWarning, match=r"dropping 1 column / coefficient: I\(2 \* Days\)$"):
            ours = shrinkage.fit(formula, data=sleepstudy(), method=method)
    else:
        ours = shrinkage.fit(formula, data=sleepstudy(), method=method)
    # lme4 prints the data argument's expression (d); a Python function cannot see it: the type instead
    theirs = [("   Data: <pandas DataFrame>" if ln.startswith("   Data:") else ln.rstrip()) for ln in text.splitlines()
              if not ln.startswith(("Control:", "    maxfun"))]
    mine = [ln.rstrip() for ln in ours.summary().splitlines()]
    assert mine == theirs[:len(mine)] and len(mine) >= len(theirs) - 1
    # profile intervals of the variance parameters: lme4 interpolates its profile with
    # splines, so agreement is to its interpolation error, not to rounding
    got = ours.confint()
    variance = ci[ci["name"].str.startswith(".sig")]
    assert list(got.index[:len(variance)]) == list(variance["name"])
    np.testing.assert_allclose(got.iloc[:len(variance)].to_numpy(), variance[["lo", "hi"]].to_numpy(),
                               rtol=1e-4, atol=1e-4)


SINGULAR_CI_R = r"""
suppressMessages(library(lme4))
a <- commandArgs(trailingOnly = TRUE)
d <- read.csv(a[1])
m <- lmer(Yield ~ 1 + (1 | Batch), data = d, REML = FALSE,
          control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e6)))
ci <- suppressMessages(suppressWarnings(confint(m, oldNames = TRUE)))
write.csv(data.frame(name = rownames(ci), lo = ci[, 1], hi = ci[, 2]), a[2], row.names = FALSE)
"""


def _small_variance(path) -> None:
    """Six groups of five whose sd(Batch) estimate is positive (0.44) but whose interval reaches 0."""
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(6), 5)
    y = 0.4 * rng.normal(size=6)[g] + rng.normal(size=30)
    pd.DataFrame({"Batch": [chr(65 + k) for k in g], "Yield": y}).to_csv(path, index=False)


@pytest.mark.slow
@pytest.mark.parametrize("data", ["dyestuff2", "small variance"])
def test_a_profile_interval_that_reaches_zero_matches_lme4(tmp_path, data):
    """The interval of sd(Batch) starts at exactly 0, as lme4's, and ends where lme4's does
    (to its spline interpolation): Dyestuff2 (a singular fit, the estimate itself 0) and
    data whose estimate is positive but whose profile stays below the cut down to 0."""
    require_r()
    (tmp_path / "ci.R").write_text(SINGULAR_CI_R)
    path = datasets.load("dyestuff2").path if data == "dyestuff2" else tmp_path / "small.csv"
    if data != "dyestuff2":
        _small_variance(path)
    subprocess.run(["Rscript", str(tmp_path / "ci.R"), str(path), str(tmp_path / "ci.csv")], check=True,
                   capture_output=True, timeout=600)
    theirs = pd.read_csv(tmp_path / "ci.csv").set_index("name")
    fit = shrinkage.fit("Yield ~ 1 + (1 | Batch)", data=pd.read_csv(path), method="ML")
    assert (fit.varcorr["Batch"].iloc[0, 0] > 0.1) == (data != "dyestuff2")
    ours = fit.confint()
    assert theirs.loc[".sig01", "lo"] == 0.0 and ours.loc[".sig01"].iloc[0] == 0.0
    for name in (".sig01", ".sigma"):
        np.testing.assert_allclose(ours.loc[name].to_numpy(), theirs.loc[name, ["lo", "hi"]].to_numpy(),
                                   rtol=1e-5, atol=1e-12)
