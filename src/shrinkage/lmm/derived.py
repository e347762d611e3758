"""The formulas of the compiled kernels, written by the code generator from the checked
derivations (lmm_profile, lmm_gradient, lmm_blup), for one q.

Each block below takes a labelled step (or a definition) of a derivation, binds its
symbols to the kernel's local names (:class:`shrinkage.matrix.codegen_numba.Explicit`)
and prints its entries; every block starts with a comment naming the derivation and
step, which the kernel's source keeps.  Local names the kernels share (.pls_kernels):
z = Z_j'Z_j (symmetric: zA_B for A >= B), l = Lambda_theta (lower), L, D, I = the
Cholesky factor, pivots and reciprocal diagonal of M_j = S (lower entries S), N = L^-1,
C = M_j^-1 = N'N, ty = Z_j'y_j, xb = Z_j'X_j beta (a loop over p), x = one column of
[Z_j'X_j | Z_j'y_j].  Loading the derivations imports SymPy (about a second), so the
kernels' source is generated once per q and kept (.pls_kernels caches it on disk).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import sympy as sp

from ..checking import load_file
from ..errors import DerivationError
from ..matrix import codegen_numba as gen
from ..matrix.notation import N, Lambda_theta, ZtX, ZtZ, Zty, beta, p as p_size, q as q_size, sigma2
from ..paths import package_derivations_dir

SOURCES = ("lmm_profile", "lmm_gradient", "lmm_blup")


@functools.lru_cache(maxsize=None)
def derivations() -> dict:
    """The three derivations (not checked here: the build and the tests check them)."""
    folder = package_derivations_dir()
    return {name: load_file(folder / f"{name}.py") for name in SOURCES}


def _step(d, label: str):
    return d.steps[d.step_index(label)]


def _definition(d, name: str):
    """The step defining the symbol called ``name``."""
    for s in d.steps:
        if getattr(s, "symbol", None) is not None and s.symbol.name == name:
            return s
    raise DerivationError(f"derivation {d.name} defines no {name}")


def _named(expr, name: str):
    found = [s for s in expr.free_symbols if getattr(s, "name", None) == name]
    if not found:
        raise DerivationError(f"{name} does not occur in {expr}")
    return found[0]


@dataclass(frozen=True)
class Formulas:
    """Line blocks (lists of source lines, unindented) of the kernels for one q."""

    q: int
    m: list  # S (lower) = M_j, from z, l
    factor: list  # F (q x q): Y_j = F [Z'X | Z'y], from N, l
    factor_apply: list  # y = F x
    det: list  # det = |M_j| from the pivots D
    inverse: list  # C = M_j^-1 from N
    gradient: list  # u = u_hat_j; d += term of d log|L|^2; e += term of d r^2 (from z, l, C, ty, xb)
    scales: tuple  # (c_logdet_L, c_r2, c_logdet_RX): each step's number in front of its sum
    w_operator: list  # B with W_j = B Z'X (from z, l, C)
    w_apply: list  # w = B x
    blup: list  # b = b_hat_j (from l, C, ty, xb), k = Var(b_j | y) (and sigma2)
    least_squares: list  # u = the group's own least-squares b (from C = (Z'Z)^-1, ty, xb)


@functools.lru_cache(maxsize=None)
def formulas(q: int) -> Formulas:
    """The blocks for q random-effect columns."""
    d = derivations()
    profile, grad, blup = d["lmm_profile"], d["lmm_gradient"], d["lmm_blup"]
    z, l = gen.entries("z", q, symmetric=True), gen.entries("l", q, lower=True)
    N, C = gen.entries("N", q, lower=True), gen.entries("C", q, symmetric=True)
    x, ty, xb = gen.vector("x", q), gen.vector("ty", q), gen.vector("xb", q)
    sizes = {q_size: q}
    lower = [(a, b) for a in range(q) for b in range(a + 1)]

    m_def = _definition(profile, "M_j")
    M = m_def.symbol
    base = {ZtZ: z, Lambda_theta: l}
    S = gen.Explicit(base, sizes=sizes)(m_def.rhs)
    m = [gen.step_comment(profile, m_def)] + gen.assign([(f"S{a}_{b}", S[a, b]) for a, b in lower], "tm")

    r2 = _step(profile, "r2_theta")  # sum_j |r|^2 - sum_j r' K r, K = A M^-1 A': |L^-1 A' r|^2 with M = L L'
    K = _middle(gen.group_sum(r2.rhs.args[1] if isinstance(r2.rhs, sp.Add) else r2.rhs)[1], M)
    F = N * gen.Explicit(base, sizes=sizes)(K.args[0]).T
    Fs = gen.entries("F", q)
    factor = [gen.step_comment(profile, r2) + ": Y_j = L^-1 Lambda' [Z'X | Z'y], the half of its quadratic form"]
    factor += gen.assign([(f"F{a}_{c}", F[a, c]) for a in range(q) for c in range(q)], "tf")
    logdet = _step(profile, "logdet_L")
    if gen.group_sum(logdet.rhs)[1] != sp.log(sp.Determinant(M)):
        raise DerivationError(f"lmm_profile's logdet_L is not sum_j log det {M}: {logdet.rhs}")
    det = [gen.step_comment(profile, logdet) + ": det M_j = the product of its Cholesky pivots",
           f"det = {' * '.join(f'D{a}' for a in range(q))}"]
    inverse = ["# M_j^-1 = (L L')^-1 = N'N, N = L^-1"] + gen.assign(
        [(f"C{a}_{b}", (N.T * N)[a, b]) for a, b in lower], "tc")

    u_def = _definition(grad, "u_hat_j")
    beta_hat = _named(u_def.rhs, "beta_hat")
    ex = gen.Explicit({**base, Zty: ty}, inverses=((M, C),), products={(ZtX, beta_hat): xb}, sizes=sizes)
    u = ex(u_def.rhs)
    us = gen.vector("u", q)
    gradient = [gen.step_comment(grad, u_def)] + gen.assign([(f"u{a}", u[a]) for a in range(q)], "tu")
    ex.leaves[u_def.symbol] = us
    c_log, t_log = gen.group_sum(_step(grad, "d_logdet_L").rhs)
    c_r2, t_r2 = gen.group_sum(_step(grad, "d_r2").rhs)
    dl, dr = ex(t_log), ex(t_r2)
    gradient += [gen.step_comment(grad, _step(grad, "d_logdet_L")) + " and " +
                 gen.step_comment(grad, _step(grad, "d_r2"))[2:] + ": the terms of their sums"]
    gradient += gen.assign([(f"d{a}_{b}", dl[a, b]) for a in range(q) for b in range(q)]
                           + [(f"e{a}_{b}", dr[a, b]) for a in range(q) for b in range(q)], "tg", "+=")
    w_def = _definition(grad, "W_j")
    W = gen.Explicit({**base, ZtX: x}, inverses=((M, C),), sizes=sizes)(w_def.rhs)
    B = gen.operator(W, x)
    w_operator = [gen.step_comment(grad, w_def) + ": W_j = B Z_j'X_j"]
    w_operator += gen.assign([(f"B{a}_{c}", B[a, c]) for a in range(q) for c in range(q)], "tw")
    c_rx, t_rx = gen.group_sum(_step(grad, "d_logdet_RX").rhs)
    W_sym = w_def.symbol
    if not (isinstance(t_rx, sp.MatMul) and t_rx.args[0] == W_sym and t_rx.args[2] == W_sym.T
            and t_rx.args[3] == Lambda_theta and isinstance(t_rx.args[1], sp.Inverse)):
        raise DerivationError(f"lmm_gradient's d_logdet_RX is not a sum of W_j A^-1 W_j' Lambda: {t_rx}")

    blup_step, cond_step = _step(blup, "blup_theta"), _step(blup, "condvar_theta")
    bx = gen.Explicit({**base, Zty: ty, sigma2: sp.Symbol("sigma2")}, inverses=((M, C), (m_def.rhs, C)),
                      products={(ZtX, beta): xb}, sizes=sizes)
    bv, cv = bx(blup_step.rhs), bx(cond_step.rhs)
    if not gen.vanishes(cv - cv.T):
        raise DerivationError(f"lmm_blup's condvar_theta is not symmetric: {cond_step.rhs}")
    blup_lines = [gen.step_comment(blup, blup_step) + " and " + gen.step_comment(blup, cond_step)[2:]]
    blup_lines += gen.assign([(f"b{a}", bv[a]) for a in range(q)]  # the covariance symmetric: its lower half
                             + [(f"k{a}_{b}", cv[a, b]) for a, b in lower], "tb")
    ls_def = _definition(blup, "b_ls_j")
    lv = gen.Explicit({ZtZ: z, Zty: ty}, inverses=((ZtZ, C),), products={(ZtX, beta): xb}, sizes=sizes)(ls_def.rhs)
    least = [gen.step_comment(blup, ls_def)] + gen.assign([(f"u{a}", lv[a]) for a in range(q)], "ts")
    return Formulas(
        q, m, factor, gen.assign([(f"y{a}", (Fs * x)[a]) for a in range(q)], "ta"), det, inverse, gradient,
        (float(c_log), float(c_r2), float(c_rx)), w_operator,
        gen.assign([(f"w{a}", (gen.entries("B", q) * x)[a]) for a in range(q)], "tx"), blup_lines, least)


def _middle(term, M):
    """K of a term r' K r with K = A M^-1 A' (the quadratic form of lmm_profile's r2_theta)."""
    inner = term.matrix if hasattr(term, "matrix") else term
    if isinstance(inner, sp.MatMul) and len(inner.args) == 1:
        inner = inner.args[0]
    K = inner.args[1] if isinstance(inner, sp.MatMul) and len(inner.args) == 3 else None
    if K is None and hasattr(term, "args") and term.args:  # -(Scalar(...)): the sign is the group sum's
        return _middle(term.args[-1], M)
    if not (isinstance(K, sp.MatMul) and len(K.args) == 3 and K.args[1] == sp.Inverse(M) and K.args[2] == K.args[0].T):
        raise DerivationError(f"lmm_profile's r2_theta is not a quadratic form in A M_j^-1 A': {term}")
    return K


@functools.lru_cache(maxsize=None)
def criteria_source() -> str:
    """Python functions of the scalars the fit computes (logdet_M = log|L|^2, logdet_RX =
    log|A|, r2_theta, N, p) and of the gradient steps' values: lmm_profile's ml_deviance,
    reml_criterion, sigma2_ml, sigma2_reml, and lmm_gradient's ml_gradient and reml_gradient
    written as combinations of d_logdet_L, d_r2, d_logdet_RX (each sum over the groups of
    the gradient matched to the step that computes it)."""
    d = derivations()
    profile, grad = d["lmm_profile"], d["lmm_gradient"]
    ml = _step(profile, "ml_deviance").rhs
    logdet_M, r2 = _named(ml, "logdet_M"), _named(ml, "r2_theta")
    logdet_RX = _named(_step(profile, "reml_criterion").rhs, "logdet_RX")
    args = {"ml_deviance": (logdet_M, r2, N), "reml_criterion": (logdet_M, logdet_RX, r2, N, p_size),
            "sigma2_ml": (r2, N), "sigma2_reml": (r2, N, p_size)}
    out = [gen.scalar_function(name, _step(profile, name).rhs, a, gen.step_comment(profile, _step(profile, name)))
           for name, a in args.items()]
    zte = _definition(grad, "Zte_hat_j")
    parts = {label: gen.group_sum(_step(grad, label).rhs) for label in ("d_logdet_L", "d_r2", "d_logdet_RX")}
    values = {label: sp.Symbol(label) for label in parts}
    for name, a in (("ml_gradient", ("d_logdet_L", "d_r2")), ("reml_gradient", ("d_logdet_L", "d_r2", "d_logdet_RX"))):
        step = _step(grad, name)
        total = sp.S.Zero
        for term in step.rhs.args:
            c, t = gen.group_sum(term)
            label = next((k for k, (_, tk) in parts.items() if t.xreplace({zte.symbol: zte.rhs}) == tk), None)
            if label is None:
                raise DerivationError(f"lmm_gradient's {name}: a sum no gradient step computes: {t}")
            total += c / parts[label][0] * values[label]
        out.append(gen.scalar_function(name, total, tuple(values[k] for k in a) + (r2, N, p_size),
                                       gen.step_comment(grad, step)))
    return "\n\n".join(out)
