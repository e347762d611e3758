"""summary() printed as lme4 prints it (lme4 1.1's print.summary.merMod layout).

Numbers are formatted by R's rule for a column: each value rounded to ``digits``
significant digits, and the whole column shown with the most decimals any of them needs.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["summary", "r_format", "abbreviate", "rank_note"]


def rank_note(dropped: int) -> str:
    """lme4's note on a rank-deficient X (its warning and its summary's fit warnings)."""
    s = "s" if dropped > 1 else ""
    return f"fixed-effect model matrix is rank deficient so dropping {dropped} column{s} / coefficient{s}"


def _decimals(v: float, digits: int) -> int:
    if v == 0 or not math.isfinite(v):
        return 0
    top = digits - 1 - math.floor(math.log10(abs(v)))
    if top <= 0:
        return 0
    target = round(v, top)
    for d in range(top + 1):
        if round(v, d) == target:
            return d
    return top


def r_format(values, digits: int) -> list[str]:
    """Format a column as R's format(x, digits=) does (common number of decimals)."""
    values = [float(v) for v in values]
    d = min(max([_decimals(v, digits) for v in values] + [0]), 15)
    return [f"{v:.{d}f}" for v in values]


def abbreviate(name: str, minlength: int = 6) -> str:
    """R's abbreviate(): drop lower-case vowels from the right (never the first
    character), then lower-case letters from the right, until short enough."""
    chars = list(name)
    for test in (lambda c: c in "aeiou", lambda c: c.islower()):
        i = len(chars) - 1
        while len(chars) > minlength and i > 0:
            if test(chars[i]):
                del chars[i]
            i -= 1
    return "".join(chars)


def _table(header: list[str], rows: list[list[str]], left: int = 1) -> list[str]:
    """Columns right-aligned, the first ``left`` columns left-aligned."""
    cols = list(zip(header, *rows))
    widths = [max(len(c) for c in col) for col in cols]
    out = []
    for line in [header] + rows:
        cells = [c.ljust(w) if k < left else c.rjust(w) for k, (c, w) in enumerate(zip(line, widths))]
        out.append(" ".join(cells).rstrip())
    return out


def _pad(cells: list[str]) -> list[str]:
    width = max(len(c) for c in cells)
    return [c.rjust(width) for c in cells]


def _groups(r) -> list:
    """(label, column names, covariance block) per term: a fit with several terms names
    them itself; one factor's blocks are labelled g, g.1, ..."""
    if hasattr(r, "terms"):
        return [(name, list(t.z_names), D) for name, t, D in zip(r.names, r.terms, r.D)]
    out, start = [], 0
    for k, size in enumerate(r.blocks):
        out.append((r.group if k == 0 else f"{r.group}.{k}", list(r.z_names[start:start + size]),
                    r.D[start:start + size, start:start + size]))
        start += size
    return out


def _random_effects(r) -> list[str]:
    groups = _groups(r)
    variances = [v for _, _, D in groups for v in np.diag(D)]
    sds = np.sqrt(np.maximum(variances, 0.0))
    # R pads a formatted column to one width, then prints it left-aligned
    var_s = _pad(r_format(variances + [r.sigma2], 4))
    sd_s = _pad(r_format(list(sds) + [r.sigma], 4))
    rows, at, any_corr = [], 0, any(len(names) > 1 for _, names, _ in groups)
    for label, names, D in groups:
        sd = np.sqrt(np.maximum(np.diag(D), 0.0))
        for i in range(len(names)):
            corr = []
            for j in range(i):
                c = D[i, j] / (sd[i] * sd[j]) if sd[i] > 0 and sd[j] > 0 else float("nan")
                corr.append("NaN" if not math.isfinite(c) else f"{c:.2f}")
            rows.append([label if i == 0 else "", names[i], var_s[at + i], sd_s[at + i], " ".join(corr)])
        at += len(names)
    rows.append(["Residual", "", var_s[-1], sd_s[-1], ""])
    header = ["Groups", "Name", "Variance", "Std.Dev."] + (["Corr"] if any_corr else [])
    rows = [row[:len(header)] for row in rows]
    return [" " + ln for ln in _table(header, rows, left=len(header))]


def _fixed_effects(r, digits: int = 4) -> list[str]:
    """R's printCoefmat(coefs, zap.ind = 3, digits = 4), as lme4 calls it: estimates and
    standard errors rounded together to max(1, digits - digmin) decimals (digmin from the
    smallest and largest magnitude) and formatted as one block; t values to 3 decimals."""
    se = np.sqrt(np.diag(r.vcov_matrix))
    both = np.concatenate([r.beta, se])
    nonzero = np.abs(both[both != 0])
    digmin = 1 + np.floor(np.log10([nonzero.min(), nonzero.max()])) if nonzero.size else np.zeros(2)
    dec = int(max(1, *(digits - digmin)))
    cells = r_format(np.round(both, dec), digits)
    est, err = cells[:len(se)], cells[len(se):]
    t = r_format(np.round(r.beta / se, max(1, min(5, digits - 1))), digits)
    rows = [[n, e, s, tv] for n, e, s, tv in zip(r.x_names, est, err, t)]
    return _table(["", "Estimate", "Std. Error", "t value"], rows)


def _correlation(r) -> list[str]:
    p = len(r.x_names)
    if p < 2:
        return []
    se = np.sqrt(np.diag(r.vcov_matrix))
    C = r.vcov_matrix / np.outer(se, se)
    header = [""] + [abbreviate(n) for n in r.x_names[:-1]]
    rows = [[r.x_names[i]] + [f"{C[i, j]:.3f}" for j in range(i)] + [""] * (p - 1 - i) for i in range(1, p)]
    return ["", "Correlation of Fixed Effects:"] + _table(header, rows)


def _residuals(r) -> list[str]:
    d = r.design
    if d is None:
        return []
    fitted = r.predict() if hasattr(r, "terms") else d.X @ r.beta + np.einsum("nk,nk->n", d.Z, r.b[d.codes])
    q = np.quantile((d.y - fitted) / r.sigma, [0, 0.25, 0.5, 0.75, 1])
    top = float(np.max(np.abs(q)))
    # R's zapsmall(q, 5), as lme4: round(q, 5 - log10(max |q|)), R's round taking the nearest whole digits
    q = np.round(q, max(0, math.floor(5 - math.log10(top) + 0.5)) if top > 0 else 5)
    return ["Scaled residuals: "] + _table(["Min", "1Q", "Median", "3Q", "Max"], [_pad(r_format(q, 4))],
                                           left=0) + [""]


def summary(r) -> str:
    """lme4's summary(fit) for an LmmResult, as text."""
    kind = "REML" if r.method == "REML" else "maximum likelihood "
    lines = [f"Linear mixed model fit by {kind} ['lmerMod']"]
    if r.formula:
        lines.append(f"Formula: {r.formula}")
    if r.data:
        lines.append(f"   Data: {r.data}")
    lines.append("")
    if r.method == "REML":
        lines.append(f"REML criterion at convergence: {r_format([round(r.deviance, 1)], 7)[0]}")  # R's format(round(x, 1))
    else:
        values = [f"{r.aic:.1f}", f"{r.bic:.1f}", f"{r.loglik:.1f}", f"{r.deviance:.1f}", str(r.nobs - r.df)]
        lines += _table(["     AIC", "     BIC", "  logLik", "deviance", "df.resid"], [values], left=0)
    lines.append("")
    lines += _residuals(r)
    lines.append("Random effects:")
    lines += _random_effects(r)
    groups = r.ngroups.items() if hasattr(r, "terms") else [(r.group, r.ngroups)]
    lines.append(f"Number of obs: {r.nobs}, groups:  " + "; ".join(f"{g}, {n}" for g, n in groups))
    if r.dropped:
        lines.append(f"({r.dropped} observation{'s' if r.dropped > 1 else ''} deleted due to missingness)")
    lines += ["", "Fixed effects:"] + _fixed_effects(r) + _correlation(r)
    if r.x_dropped:
        lines += ["fit warnings:", rank_note(len(r.x_dropped))]
    if r.singular:
        lines += ["", "boundary (singular) fit: see help('isSingular')"]
    return "\n".join(lines) + "\n"
