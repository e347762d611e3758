"""shrinkage.meta against R's metafor (rma.uni, blup, confint), the implementation users know.

metafor runs through Rscript with tight control (threshold 1e-12, maxiter 1000, tol 1e-12
for PM's and the Q-profile's uniroot) on real meta-analyses from metadat: dat.bcg (escalc
RR, moderators ablat + year), dat.normand1999 (MD), dat.hackshaw1998 (+ year),
dat.molloy2014 (ZCOR, + meanage + quality), dat.pritz1997 (PR), dat.raudenbush1985
(+ weeks), dat.mcdaniel1994 (ZCOR, 160 studies), and two tables of dat.yusuf1985: table 6,
where every estimator but SJ gives tau^2 = 0, and table 12b, where ML gives 0 and REML does
not.  Every method, with and without moderators, Knapp-Hartung for DL, PM and REML.  The
estimates, tests, fit statistics, BLUPs and Q-profile intervals agree to 1e-8 relative
(relative to the standard error for coefficients and to 1 for p-values near 0), tau^2 = 0
exactly where metafor gives 0; summary() prints metafor's text.  Skipped without R and
metafor, never when CI is set.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import shrinkage

R_SCRIPT = Path(__file__).with_name("meta_reference.R")
RTOL = 1e-8


def metafor_available() -> bool:
    return shutil.which("Rscript") is not None and subprocess.run(
        ["Rscript", "-e", "library(metafor)"], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    if not metafor_available():
        if os.environ.get("CI"):
            pytest.fail("R with metafor is required when CI is set (apt-get install r-cran-metafor)")
        pytest.skip("R/metafor not installed")
    out = tmp_path_factory.mktemp("metafor")
    subprocess.run(["Rscript", str(R_SCRIPT), str(out)], check=True, capture_output=True, timeout=600)
    ref: dict = {}
    with open(out / "ref.csv") as f:
        for case, key, _, value in csv.reader(f):
            ref.setdefault(case, {}).setdefault(key, []).append(float(value))
    return out, {c: {k: np.array(v) for k, v in d.items()} for c, d in ref.items()}


def fitted(folder: Path, case: str, via_formula: bool = False) -> shrinkage.metaanalysis.MetaResult:
    name, mods, method, test = case.split(":")
    d = pd.read_csv(folder / f"{name}.csv")
    cols = [c for c in d.columns if c not in ("yi", "vi")] if mods == "mods" else []
    if via_formula and cols:
        return shrinkage.meta("yi", "vi", method, mods="~ " + " + ".join(cols), test=test, data=d)
    return shrinkage.meta(d.yi.to_numpy(), d.vi.to_numpy(), method, mods=d[cols] if cols else None,
                          test=test)


def close(got, want, scale=None, what=""):
    got, want = np.atleast_1d(np.asarray(got, float)), np.atleast_1d(want)
    room = RTOL * np.maximum(np.abs(want), 0 if scale is None else scale)
    bad = ~(np.abs(got - want) <= room)
    assert not bad.any(), f"{what}: got {got[bad]}, metafor {want[bad]} (room {room[bad]})"


def compare(r, ref, case):
    if ref["tau2"][0] == 0:
        assert r.tau2 == 0.0, f"{case}: metafor's tau^2 is exactly 0, ours {r.tau2!r}"
    close(r.tau2, ref["tau2"], what=f"{case} tau2")
    close(r.se_tau2, ref["se_tau2"], what=f"{case} se_tau2")
    close(r.beta, ref["beta"], scale=ref["se"], what=f"{case} beta")
    close(r.se, ref["se"], what=f"{case} se")
    close(r.zval, ref["zval"], scale=1, what=f"{case} zval")
    close(r.pval, ref["pval"], scale=1e-3, what=f"{case} pval")
    close(r.ci_lb, ref["ci_lb"], scale=ref["se"], what=f"{case} ci_lb")
    close(r.ci_ub, ref["ci_ub"], scale=ref["se"], what=f"{case} ci_ub")
    for key in ("QE", "QM", "H2"):
        close(getattr(r, key), ref[key], what=f"{case} {key}")
    for key in ("QEp", "QMp", "I2"):
        close(getattr(r, key), ref[key], scale=1e-3 if key != "I2" else 1, what=f"{case} {key}")
    if "R2" in ref:
        close(r.R2, ref["R2"], scale=1, what=f"{case} R2")
    for which in ("ML", "REML"):
        stats = r.fit_stats[which]
        close([stats[k] for k in ("logLik", "deviance", "AIC", "BIC", "AICc")], ref[f"fit_{which}"], scale=1,
              what=f"{case} fit statistics {which}")
    se_pred = np.median(ref["blup_se"])
    close(r.blup, ref["blup"], scale=se_pred, what=f"{case} blup")
    close(r.blup_se, ref["blup_se"], what=f"{case} blup se")
    close(r.pi_lb, ref["pi_lb"], scale=se_pred, what=f"{case} pi.lb")
    close(r.pi_ub, ref["pi_ub"], scale=se_pred, what=f"{case} pi.ub")


def test_every_method_and_data_set_equals_metafor(reference):
    folder, ref = reference
    assert len(ref) >= 100
    for case, values in ref.items():
        compare(fitted(folder, case), values, case)


def test_tau2_zero_exactly_where_metafor_gives_zero(reference):
    folder, ref = reference
    zeros = [c for c, v in ref.items() if v["tau2"][0] == 0]
    assert {"yusuf6:none:REML:z", "yusuf6:none:ML:z", "yusuf12b:none:ML:z", "hackshaw:none:HE:z"} <= set(zeros)
    for case in zeros:
        assert fitted(folder, case).tau2 == 0.0, case


def test_moderators_by_formula_equal_the_matrix(reference):
    folder, ref = reference
    for case in ("bcg:mods:REML:z", "molloy:mods:DL:knha"):
        r = fitted(folder, case, via_formula=True)
        assert r.names[0] == "intrcpt" and len(r.names) == len(ref[case]["beta"])
        compare(r, ref[case], case)


def test_q_profile_interval_equals_metafor(reference):
    folder, ref = reference
    for case, values in ref.items():
        if "ci_tau2" not in values:
            continue
        ci = fitted(folder, case).confint_tau2(0.95)
        for key, name in (("ci_tau2", "tau^2"), ("ci_I2", "I^2(%)"), ("ci_H2", "H^2")):
            want = values[key]
            close(ci[name], want, scale=1e-9 * max(1.0, abs(want[0])), what=f"{case} {name}")


def test_summary_prints_metafor_text(reference):
    folder, ref = reference
    for case in [c for c in ref if c.endswith("REML:z")]:
        want = (folder / f"{case.replace(':', '_')}.txt").read_text()
        assert fitted(folder, case).summary().rstrip() == want.rstrip(), case


def test_a_wrong_formula_is_rejected(reference, monkeypatch):
    """DerSimonian-Laird with its denominator tr P off by 5% is caught."""
    folder, ref = reference
    from shrinkage import numeric
    from shrinkage.metaanalysis import estimators

    monkeypatch.setattr(estimators.numeric, "_meta_dl_tau2",
                        lambda Q, df, trP: max(0.0, (Q - df) / (trP * 1.05)))
    with pytest.raises(AssertionError, match="tau2"):
        compare(fitted(folder, "bcg:none:DL:z"), ref["bcg:none:DL:z"], "bcg:none:DL:z")
    assert numeric._meta_dl_tau2 is not None
