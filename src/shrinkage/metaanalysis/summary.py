"""summary() as metafor prints summary(rma(...)): the same sections, numbers, widths and stars."""

from __future__ import annotations

import numpy as np

EPS10 = np.finfo(float).eps * 10
LEGEND = "---\nSignif. codes:  0 \u2018***\u2019 0.001 \u2018**\u2019 0.01 \u2018*\u2019 0.05 \u2018.\u2019 0.1 \u2018 \u2019 1\n"


def fcf(x: float, digits: int = 4) -> str:
    """R's formatC(x, digits, format = "f"), with -0.0000 printed as 0.0000 as R does."""
    s = f"{x:.{digits}f}"
    return s[1:] if s.startswith("-") and float(s) == 0 else s


def pval(p: float, showeq: bool = False) -> str:
    if p < 1e-4:
        return "< .0001" if showeq else "<.0001"
    return ("= " if showeq else "") + fcf(p)


def stars(p: float) -> str:
    for cut, sym in ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, ".")):
        if p <= cut:
            return sym
    return " "


def _columns(header: list[str], rows: list[list[str]], rownames: list[str] | None) -> list[str]:
    """R's print.data.frame(right = TRUE, print.gap = 2), then metafor's trailing space."""
    widths = [max(len(h), *(len(r[j]) for r in rows)) for j, h in enumerate(header)]
    lead = max(len(n) for n in rownames) if rownames else 0
    lines = []
    for name, cells in [("", header)] + list(zip(rownames or [""] * len(rows), rows)):
        body = "".join(("  " if (rownames or j) else "") + c.rjust(w) for j, (c, w) in enumerate(zip(cells, widths)))
        lines.append(name.ljust(lead) + body + " ")
    return lines


def _fit_block(r) -> list[str]:
    fs = r.fit_stats["REML" if r.method == "REML" else "ML"]
    values = [fcf(fs[n]) for n in ("logLik", "deviance", "AIC", "BIC", "AICc")]
    names = ["logLik", "deviance", "AIC", "BIC", "AICc"]
    w = max(max(map(len, values)), max(map(len, names)))
    return ["  ".join(n.rjust(w) for n in names) + "   ", "  ".join(v.rjust(w) for v in values) + "   "]


def render(r) -> str:
    io = r.p == 1
    out = ["", f"{'Random-Effects Model' if io else 'Mixed-Effects Model'} (k = {r.k}; tau^2 estimator: {r.method})", ""]
    out += _fit_block(r) + [""]
    t2digits = 0 if abs(r.tau2) <= EPS10 else 4
    if io:
        out += [f"tau^2 (estimated amount of total heterogeneity): {fcf(r.tau2, t2digits)} (SE = {fcf(r.se_tau2)})",
                f"tau (square root of estimated tau^2 value):      {fcf(np.sqrt(r.tau2), t2digits)}",
                f"I^2 (total heterogeneity / total variability):   {fcf(r.I2, 2)}%",
                f"H^2 (total variability / sampling variability):  {fcf(r.H2, 2)}"]
    else:
        out += [f"tau^2 (estimated amount of residual heterogeneity):     {fcf(r.tau2, t2digits)} (SE = {fcf(r.se_tau2)})",
                f"tau (square root of estimated tau^2 value):             {fcf(np.sqrt(r.tau2), t2digits)}",
                f"I^2 (residual heterogeneity / unaccounted variability): {fcf(r.I2, 2)}%",
                f"H^2 (unaccounted variability / sampling variability):   {fcf(r.H2, 2)}"]
        if r.R2 is not None:
            out.append(f"R^2 (amount of heterogeneity accounted for):            {fcf(r.R2, 2)}%")
    out += ["", "Test for Heterogeneity:" if io else "Test for Residual Heterogeneity:",
            f"{'Q' if io else 'QE'}(df = {r.k - r.p}) = {fcf(r.QE)}, p-val {pval(r.QEp, True)}", ""]
    knha = r.test == "knha"
    if not io:
        m = r.QMdf[0]
        btt = "2" if m == 1 else f"2:{r.p}"
        out.append(f"Test of Moderators (coefficient{' ' if m == 1 else 's '}{btt}):")
        if knha:
            out.append(f"F(df1 = {m}, df2 = {r.k - r.p}) = {fcf(r.QM)}, p-val {pval(r.QMp, True)}")
        else:
            out.append(f"QM(df = {m}) = {fcf(r.QM)}, p-val {pval(r.QMp, True)}")
        out.append("")
    header = ["estimate", "se", "tval" if knha else "zval"] + (["df"] if knha else []) + ["pval", "ci.lb", "ci.ub", ""]
    rows = []
    for j in range(r.p):
        row = [fcf(r.beta[j]), fcf(r.se[j]), fcf(r.zval[j])] + ([f"{r.ddf:g}"] if knha else [])
        rows.append(row + [pval(r.pval[j]), fcf(r.ci_lb[j]), fcf(r.ci_ub[j]), stars(r.pval[j])])
    out += ["Model Results:", ""] + _columns(header, rows, None if io else list(r.names)) + ["", LEGEND]
    return "\n".join(out)
