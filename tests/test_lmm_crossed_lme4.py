"""Several grouping factors against lme4's lmer, on data no one here wrote.

lme4's own data sets (Penicillin: crossed plate x sample; Pastes: cask nested in batch,
written (1 | batch/cask) and as crossed (1 | sample) + (1 | batch); InstEval: 73,421
ratings, students x lecturers; sleepstudy with a random slope, correlated or not, beside
a crossed factor of the days) are written out by R and fitted by lmer with a tight optimiser (bobyqa, rhoend
1e-12, as lme4's lmerControl takes it), in one R session.  fixef, each term's covariance,
sigma^2 and logLik agree to 1e-6 (relative), vcov, ranef and condVar to 1e-5, and
summary() prints lme4's text.  Skipped without R/lme4, never when CI is set.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import shrinkage
from shrinkage.lmm.blocked import deviance
from test_lmm_lme4 import require_r

MODELS = {  # name: (data set, formula, method)
    "penicillin": ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", "REML"),
    "penicillin_ml": ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", "ML"),
    "pastes_nested": ("Pastes", "strength ~ 1 + (1 | batch/cask)", "REML"),
    "pastes_nested_ml": ("Pastes", "strength ~ 1 + (1 | batch/cask)", "ML"),
    "pastes_crossed": ("Pastes", "strength ~ 1 + (1 | sample) + (1 | batch)", "REML"),
    "sleep_slope": ("sleepstudy", "Reaction ~ 1 + (Days | Subject) + (1 | fDays)", "REML"),
    "sleep_uncorrelated": ("sleepstudy", "Reaction ~ 1 + (Days || Subject) + (1 | fDays)", "ML"),
    "insteval": ("InstEval", "y ~ 1 + (1 | s) + (1 | d)", "REML"),
}

# lme4's bobyqa stops at a local minimum (fDays' variance 559, REML criterion 1776.64); a lower
# one lies on the boundary (fDays' variance 0, criterion 1769.84: ours); both criteria checked
LOCAL = {"sleep_slope"}

R_SCRIPT = r"""
suppressMessages(library(lme4))
a <- commandArgs(trailingOnly = TRUE)
folder <- a[1]
s <- sleepstudy; s$fDays <- paste0("d", s$Days)
frames <- list(Penicillin = Penicillin, Pastes = Pastes, InstEval = InstEval[, c("s", "d", "y", "service")],
               sleepstudy = s)
for (n in names(frames)) write.csv(frames[[n]], file.path(folder, paste0(n, ".csv")), row.names = FALSE)
models <- read.csv(file.path(folder, "models.csv"), stringsAsFactors = FALSE)
for (k in seq_len(nrow(models))) {
  d <- read.csv(file.path(folder, paste0(models$data[k], ".csv")), stringsAsFactors = TRUE)
  m <- lmer(as.formula(models$formula[k]), data = d, REML = (models$method[k] == "REML"),
            control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e6),
                                  check.conv.singular = "ignore"))
  out <- file(file.path(folder, paste0(models$name[k], ".out")), "w")
  put <- function(key, name, i, j, v) writeLines(sprintf("%s\t%s\t%s\t%s\t%.17g", key, name, i, j, v), out)
  fe <- fixef(m); put("fixef", "", names(fe), "", fe)
  V <- as.matrix(vcov(m)); for (j in seq_len(ncol(V))) put("vcov", "", seq_len(nrow(V)), j, V[, j])
  vc <- VarCorr(m)
  for (g in names(vc)) { S <- as.matrix(vc[[g]]); for (j in seq_len(ncol(S))) put("varcorr", g, seq_len(nrow(S)), j, S[, j]) }
  put("sigma2", "", 1, 1, sigma(m)^2); put("loglik", "", 1, 1, as.numeric(logLik(m)))
  put("theta", "", seq_along(getME(m, "theta")), "", getME(m, "theta"))
  re <- ranef(m, condVar = TRUE)
  for (g in names(re)) {
    r <- re[[g]]
    for (j in seq_len(ncol(r))) put("ranef", g, rownames(r), colnames(r)[j], r[[j]])
    pv <- attr(r, "postVar")
    if (is.array(pv)) put("condvar", g, seq_along(pv), "", as.vector(pv))
  }
  close(out)
  writeLines(capture.output(print(summary(m))), file.path(folder, paste0(models$name[k], ".txt")))
}
"""


@pytest.fixture(scope="module")
def lme4(tmp_path_factory):
    require_r()
    folder = tmp_path_factory.mktemp("lme4_crossed")
    (folder / "fit.R").write_text(R_SCRIPT)
    pd.DataFrame([(n, *v) for n, v in MODELS.items()], columns=["name", "data", "formula", "method"]).to_csv(
        folder / "models.csv", index=False)
    subprocess.run(["Rscript", str(folder / "fit.R"), str(folder)], check=True, capture_output=True, timeout=1800)
    return folder


def read_lme4(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", header=None, names=["key", "name", "i", "j", "value"], dtype={"i": str, "j": str},
                       keep_default_na=False)


@pytest.mark.slow
@pytest.mark.parametrize("model", list(MODELS))
def test_matches_lme4(lme4, model):
    data, formula, method = MODELS[model]
    frame = pd.read_csv(lme4 / f"{data}.csv")
    ours = shrinkage.fit(formula, data=frame, method=method)
    ref = read_lme4(lme4 / f"{model}.out")

    def part(key):
        return ref[ref["key"] == key]

    # our criterion at lme4's theta is lme4's: the same function, whichever optimiser
    at_theirs = deviance(part("theta")["value"].to_numpy(), ours.problem, method)
    np.testing.assert_allclose(at_theirs, -2 * part("loglik")["value"].iloc[0], rtol=1e-10)
    if model in LOCAL:  # lme4's bobyqa ends in a local minimum; ours is lower (the dense tests show it global)
        assert ours.deviance < at_theirs - 1.0
        return
    fe = part("fixef")
    assert list(ours.fixef.index) == list(fe["i"])
    np.testing.assert_allclose(ours.beta, fe["value"], rtol=1e-6)
    np.testing.assert_allclose(ours.sigma2, part("sigma2")["value"].iloc[0], rtol=1e-6)
    np.testing.assert_allclose(ours.loglik, part("loglik")["value"].iloc[0], rtol=1e-9)
    p = len(ours.beta)
    np.testing.assert_allclose(ours.vcov_matrix, part("vcov")["value"].to_numpy().reshape(p, p).T, rtol=1e-5)
    vc = part("varcorr")
    assert list(dict.fromkeys(vc["name"])) == ours.names  # lme4's names and order of the terms
    for name, D in ours.varcorr.items():
        theirs = vc[vc["name"] == name]["value"].to_numpy().reshape(D.shape).T
        np.testing.assert_allclose(D.to_numpy(), theirs, rtol=1e-6, atol=1e-6 * ours.sigma2)
    re = part("ranef")
    for factor, frame_b in ours.ranef.items():
        theirs = re[re["name"] == factor].pivot(index="i", columns="j", values="value")
        mine = frame_b.rename(index=str)
        theirs = theirs.loc[list(mine.index), list(mine.columns)]
        scale = np.sqrt(np.diag(np.atleast_2d(ours.varcorr[factor].to_numpy())))
        np.testing.assert_allclose(mine.to_numpy(), theirs.to_numpy(), rtol=1e-5, atol=1e-5 * max(scale.max(), 1e-3))
    cv = part("condvar")
    for name, t in zip(ours.names, ours.terms):
        theirs = cv[cv["name"] == name]["value"].to_numpy()
        if theirs.size:  # lme4's postVar in its level order (the labels', as ranef's rows)
            order = [list(t.labels.astype(str)).index(lab) for lab in
                     re[re["name"] == name]["i"].drop_duplicates()]
            theirs = theirs.reshape(t.levels, t.q, t.q).transpose(0, 2, 1)
            np.testing.assert_allclose(ours.condvar[name][order], theirs, rtol=1e-5, atol=1e-8)
    if ours.singular:  # lme4 prints the near-zero variance it stopped at (2e-13), and no singular note
        return           # under check.conv.singular = "ignore"; ours is 0
    text = (lme4 / f"{model}.txt").read_text()
    theirs = [("   Data: <pandas DataFrame>" if ln.startswith("   Data:") else ln.rstrip()) for ln in text.splitlines()
              if not ln.startswith(("Control:", "    maxfun"))]
    mine = [ln.rstrip() for ln in ours.summary().splitlines()]
    data_line = next(k for k, ln in enumerate(theirs) if ln.startswith("   Data:"))
    theirs[1:data_line] = [mine[1]]  # lme4 prints the formula deparsed (|| expanded, wrapped), ours as written
    assert mine == theirs[:len(mine)] and len(mine) >= len(theirs) - 1
