"""summary() of a glmer fit as lme4 1.1 prints it (print.summary.merMod for a GLMM)."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

from ..lmm.summary import _correlation, _pad, _table, r_format

__all__ = ["summary"]


def _pvalues(p, digits: int = 3) -> list[str]:
    """R's format.pval(p, digits = 3) as printCoefmat calls it: values from 1e-4 up
    formatted together in fixed notation, smaller ones together in scientific notation
    (the mantissa's digits the most any needs), those below the machine epsilon as
    "< 2e-16" ("<2e-16" when every other entry is at most 6 wide)."""
    eps = np.finfo(float).eps
    out = [""] * len(p)
    tiny = [i for i, v in enumerate(p) if v < eps]
    fixed = [i for i, v in enumerate(p) if v >= eps and math.floor(math.log10(v)) >= -4]
    sci = [i for i, v in enumerate(p) if v >= eps and i not in fixed]
    for i, text in zip(fixed, r_format([p[i] for i in fixed], digits) if fixed else []):
        out[i] = text
    if sci:
        need = max(len(f"{p[i]:.{digits - 1}e}".split("e")[0].rstrip("0").rstrip(".").replace(".", "")) for i in sci)
        for i in sci:
            m, e = f"{p[i]:.{need - 1}e}".split("e")
            out[i] = f"{m}e{e[0]}{int(e[1:]):02d}"
    width = max((len(out[i]) for i in range(len(p)) if i not in tiny), default=0)
    for i in tiny:
        out[i] = "< 2e-16" if width > 6 else "<2e-16"
    return out


def _stars(p: float) -> str:
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else "." if p < 0.1 else ""


def _fixed(r) -> list[str]:
    """printCoefmat(coefs, zap.ind = 3, digits = 4, signif.stars = TRUE) (see lmm.summary)."""
    se = np.sqrt(np.diag(r.vcov_matrix))
    both = np.concatenate([r.beta, se])
    nonzero = np.abs(both[both != 0])
    digmin = 1 + np.floor(np.log10([nonzero.min(), nonzero.max()])) if nonzero.size else np.zeros(2)
    dec = int(max(1, *(4 - digmin)))
    cells = r_format(np.round(both, dec), 4)
    z = r.beta / se
    p = 2 * norm.sf(np.abs(z))
    zs = r_format(np.round(z, 3), 4)
    ps = _pvalues(list(p))
    rows = [[n, e, s, zv, pv, _stars(pp).ljust(3)]
            for n, e, s, zv, pv, pp in zip(r.x_names, cells[:len(se)], cells[len(se):], zs, ps, p)]
    lines = _table(["", "Estimate", "Std. Error", "z value", "Pr(>|z|)", "   "], rows)
    legend = "Signif. codes:  0 ‘***’ 0.001 ‘**’ 0.01 ‘*’ 0.05 ‘.’ 0.1 ‘ ’ 1"
    return lines + (["---", legend] if any(pp < 0.1 for pp in p) else [])


def _pearson(r) -> list[str]:
    pr, md = r.problem, r.optimum.modes
    mu = r.family.mu(md.eta)
    var = mu * (1 - mu) if r.family.name == "binomial" else mu
    res = (pr.y - mu) * np.sqrt(pr.m / var)
    q = np.quantile(res, [0, 0.25, 0.5, 0.75, 1])
    top = float(np.max(np.abs(q)))
    q = np.round(q, max(0, 5 - math.ceil(math.log10(top))) if top > 0 else 5)
    return ["Scaled residuals: "] + _table(["Min", "1Q", "Median", "3Q", "Max"], [_pad(r_format(q, 4))], left=0) + [""]


def _random(r) -> list[str]:
    """The random-effects table: per term its variances and standard deviations (formatted
    together, as R formats a column), the correlations where a term has several columns."""
    if hasattr(r, "terms"):
        groups = [(name, list(t.z_names), D) for name, t, D in zip(r.names, r.terms, r.D)]
    else:
        groups = [(r.group, ["(Intercept)"], np.array([[r.theta ** 2]]))]
    variances = [v for _, _, D in groups for v in np.diag(D)]
    var_s = _pad(r_format(variances, 4))
    sd_s = _pad(r_format(list(np.sqrt(np.maximum(variances, 0.0))), 4))
    rows, at, any_corr = [], 0, any(len(names) > 1 for _, names, _ in groups)
    for label, names, D in groups:
        sd = np.sqrt(np.maximum(np.diag(D), 0.0))
        for i in range(len(names)):
            corr = [f"{D[i, j] / (sd[i] * sd[j]):.2f}" if sd[i] > 0 and sd[j] > 0 else "NaN" for j in range(i)]
            rows.append([label if i == 0 else "", names[i], var_s[at + i], sd_s[at + i], " ".join(corr)])
        at += len(names)
    header = ["Groups", "Name", "Variance", "Std.Dev."] + (["Corr"] if any_corr else [])
    return [" " + ln for ln in _table(header, [row[:len(header)] for row in rows], left=len(header))]


def summary(r) -> str:
    how = ("(Laplace\n  Approximation)" if r.nagq == 1
           else f"(Adaptive\n  Gauss-Hermite Quadrature, nAGQ = {r.nagq})")
    lines = [f"Generalized linear mixed model fit by maximum likelihood {how} [glmerMod]",
             f" Family: {r.family.name}  ( {r.family.link} )", f"Formula: {r.formula}"]
    if r.data:
        lines.append(f"   Data: {r.data}")
    lines.append("")
    values = [f"{r.aic:.1f}", f"{r.bic:.1f}", f"{r.loglik:.1f}", f"{-2 * r.loglik:.1f}", str(r.nobs - r.df)]
    lines += _table(["     AIC", "     BIC", "  logLik", "deviance", "df.resid"], [values], left=0)
    lines += [""] + _pearson(r) + ["Random effects:"]
    lines += _random(r)
    groups = r.ngroups.items() if hasattr(r, "terms") else [(r.group, r.ngroups)]
    lines.append(f"Number of obs: {r.nobs}, groups:  " + "; ".join(f"{g}, {n}" for g, n in groups))
    if r.dropped:
        lines.append(f"({r.dropped} observation{'s' if r.dropped > 1 else ''} deleted due to missingness)")
    lines += ["", "Fixed effects:"] + _fixed(r) + _correlation(r)
    if r.singular:
        lines += ["", "boundary (singular) fit: see help('isSingular')"]
    return "\n".join(lines) + "\n"
