"""The Laplace approximation's error on real data: lme4's cbpp, per herd.

R (lme4) fits cbind(incidence, size - incidence) ~ period + (1 | herd) by Laplace with a
tight optimiser and writes each row's fixed linear predictor and theta; here, at those
estimates, each herd's log-integral is computed by mpmath quadrature (40 digits), by
Laplace, by Laplace plus the correction term of docs/glmm_laplace_error.pdf, and by
adaptive Gauss-Hermite with K nodes.  The numbers are written into
src/shrinkage/answer/glmm_numbers.py (the documents quote them); the test
tests/test_glmm_derivations.py recomputes them when R is installed.

    python3 bench/glmm_laplace_demo.py            # rewrite the numbers module
"""

from __future__ import annotations

import csv
import io
import pprint
import subprocess
import sys
from pathlib import Path

import mpmath
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "shrinkage" / "answer" / "glmm_numbers_data.py"
NODES = (1, 2, 3, 5, 9, 25)
R_SCRIPT = r"""
suppressMessages(library(lme4))
data(cbpp)
m <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial, nAGQ = 1,
           control = glmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5)))
eta <- as.vector(model.matrix(m) %*% fixef(m))
out <- data.frame(herd = as.character(cbpp$herd), incidence = cbpp$incidence, size = cbpp$size, eta = eta)
cat(sprintf("%.17g\n%.17g\n", getME(m, "theta"), as.numeric(logLik(m))))
write.csv(out, stdout(), row.names = FALSE)
"""


def from_r() -> tuple[float, float, list[dict]]:
    """(theta, lme4's logLik, rows) from lme4's Laplace fit of cbpp."""
    text = subprocess.run(["Rscript", "-e", R_SCRIPT], check=True, capture_output=True, text=True).stdout
    theta, loglik, rest = text.split("\n", 2)
    rows = list(csv.DictReader(io.StringIO(rest)))
    return float(theta), float(loglik), rows


def herd_terms(rows, theta):
    """Per herd: (y, n, fixed eta) arrays and the log binomial coefficients' sum."""
    herds: dict[str, list] = {}
    for r in rows:
        herds.setdefault(r["herd"], []).append((int(r["incidence"]), int(r["size"]), float(r["eta"])))
    return {h: v for h, v in sorted(herds.items(), key=lambda kv: int(kv[0]))}


def group_numbers(obs, theta, nodes=NODES) -> dict:
    """One herd's exact log-integral, Laplace, correction term and AGQ errors."""
    with mpmath.workdps(40):
        const = sum(mpmath.log(mpmath.binomial(n, y)) for y, n, _ in obs) - mpmath.log(2 * mpmath.pi) / 2
        th = mpmath.mpf(theta)

        def f(u):
            return const - u**2 / 2 + sum(y * (e + th * u) - n * mpmath.log1p(mpmath.exp(e + th * u)) for y, n, e in obs)

        def derivs(u):
            out = [mpmath.mpf(0)] * 4
            for y, n, e in obs:
                mu = 1 / (1 + mpmath.exp(-(e + th * u)))
                v = mu * (1 - mu)
                out[0] += th * (y - n * mu)
                out[1] -= th**2 * n * v
                out[2] -= th**3 * n * v * (1 - 2 * mu)
                out[3] -= th**4 * n * v * (1 - 6 * v)
            return out[0] - u, out[1] - 1, out[2], out[3]

        u = mpmath.mpf(0)
        for _ in range(100):
            d1, d2, _, _ = derivs(u)
            u -= d1 / d2
            if abs(d1) < mpmath.mpf(10) ** -35:
                break
        _, f2, f3, f4 = derivs(u)
        s = 1 / mpmath.sqrt(-f2)
        peak = f(u)
        exact = mpmath.log(mpmath.quad(lambda x: mpmath.exp(f(x) - peak), [u - 40 * s, u - 3 * s, u, u + 3 * s, u + 40 * s])) + peak
        laplace = peak + mpmath.log(2 * mpmath.pi / -f2) / 2
        term = f4 / (8 * f2**2) + 5 * f3**2 / (24 * (-f2) ** 3)
        agq = {}
        for k in nodes:
            z, w = np.polynomial.hermite.hermgauss(k)
            vals = [mpmath.mpf(wi) * mpmath.exp(f(u + mpmath.sqrt(2) * s * mpmath.mpf(zi)) - peak + mpmath.mpf(zi) ** 2)
                    for zi, wi in zip(z, w)]
            agq[k] = float(exact - (mpmath.log(mpmath.sqrt(2) * s * mpmath.fsum(vals)) + peak))
    return {"rows": len(obs), "trials": sum(n for _, n, _ in obs), "events": sum(y for y, _, _ in obs),
            "exact": float(exact), "laplace_error": float(exact - laplace), "term": float(term),
            "after_term": float(exact - laplace - term), "agq_error": agq}


SWEEP_THETA = 1.5
SWEEP = ((2, 1, 0.5), (10, 5, 0.5), (50, 25, 0.5), (2, 0, 0.05), (10, 0, 0.05), (10, 1, 0.05), (50, 2, 0.05),
         (200, 10, 0.05))  # (trials, events, population rate) of one group


def sweep() -> list:
    """One group of m trials at population rate p (eta = logit p), sigma_b = SWEEP_THETA."""
    return [{"trials": n, "events": y, "rate": p,
             **group_numbers([(y, n, float(mpmath.log(p / (1 - p))))], SWEEP_THETA, nodes=(1,))}
            for n, y, p in SWEEP]


def compute() -> dict:
    theta, loglik, rows = from_r()
    groups = {h: group_numbers(obs, theta) for h, obs in herd_terms(rows, theta).items()}
    return {"data": "cbpp", "model": "cbind(incidence, size - incidence) ~ period + (1 | herd)",
            "theta": theta, "lme4_loglik": loglik, "groups": groups, "sweep_theta": SWEEP_THETA, "sweep": sweep()}


def write(numbers: dict, path: Path = OUT) -> None:
    text = ('"""Numbers of bench/glmm_laplace_demo.py (generated: do not edit; rerun the script)."""\n\n'
            f"NUMBERS = {pprint.pformat(numbers, width=110, sort_dicts=True)}\n")
    path.write_text(text)


if __name__ == "__main__":
    numbers = compute()
    laplace_total = sum(g["exact"] - g["laplace_error"] for g in numbers["groups"].values())
    print(f"sum of Laplace terms {laplace_total:.8f}, lme4 logLik {numbers['lme4_loglik']:.8f}", file=sys.stderr)
    write(numbers)
