"""The source of the compiled loops over the groups (.pls_kernels compiles and caches it):
plumbing around formulas the code generator writes from the derivations (.derived).

What this module writes: the loops over the groups and the fixed effects, loads and
stores, the sums over groups and their order (group order: deterministic); the Cholesky
factorisation and triangular inverse are the backend's algorithms
(shrinkage.matrix.codegen_numba).  Every formula (M_j, the half of the penalised RSS's
quadratic form, log|M_j|, the gradient's terms, W_j, the BLUP, condVar, the group's least
squares) is a block of .derived, generated from a labelled step, with a comment naming it.
The fixed-effect dimension p is a loop in the compiled code, never written out: one
kernel per q serves every p (specialised to a constant p up to pls_kernels.P_SPECIALISED).
Imports SymPy (through .derived): used only when the cached source is missing.
"""

from __future__ import annotations

from ..matrix.codegen_numba import cholesky_lines, contraction_lines, triangular_inverse_lines
from .derived import criteria_source, formulas

__all__ = ["generated", "criterion_source", "gradient_source", "blup_source", "moment_source", "many_source"]


HEAD = "@njit(nogil=True, cache=True, error_model='numpy')"


def _indent(lines, depth: int) -> list:
    return ["    " * depth + x for x in lines]


def _loads(q: int) -> list:
    """Group j's Z_j'Z_j (its lower entries z: symmetric)."""
    return [f"z{a}_{c} = ZtZ[j, {a}, {c}]" for a in range(q) for c in range(a + 1)]


def _lam(q: int, array: str = "lam") -> list:
    return [f"l{c}_{b} = {array}[{c}, {b}]" for b in range(q) for c in range(b, q)]


def _stored_factor(q: int) -> list:
    """L_j read back (from the criterion), its reciprocal diagonal I and N = L^-1."""
    return ([f"L{i}_{k} = L[j, {i}, {k}]" for i in range(q) for k in range(i + 1)]
            + [f"I{a} = 1.0 / L{a}_{a}" for a in range(q)] + triangular_inverse_lines(q))


def _deviation(f, q: int, beta: str) -> list:
    """ty = Z_j'y_j and xb = Z_j'X_j beta (a loop over the p fixed effects)."""
    return [f"ty{a} = ZtXy[j, {a}, p]" for a in range(q)] + contraction_lines(q, "xb", "ZtXy", beta)


def _per_group(f, q: int, fail: str, into: str, keep: bool = False) -> list:
    """M_j's lines, L = chol(M_j), N = L^-1 and the columns b = 0..p of Y_j = F [Z'X | Z'y]
    into ``into`` (rows a, column b); ``fail`` where a pivot is not positive."""
    lines = f.m + cholesky_lines(q, "S", fail) + triangular_inverse_lines(q) + f.factor
    lines += ["for b in range(m):", *(f"    x{a} = ZtXy[j, {a}, b]" for a in range(q)), *_indent(f.factor_apply, 1),
              *(f"    {into}{a}, b] = y{a}" for a in range(q))]
    if keep:  # into Y as well, when the caller keeps the pieces
        lines += ["    if keep:", *(f"        Y[j, {a}, b] = y{a}" for a in range(q))]
    return lines


def _group_sums(q: int, G: str) -> list:
    """Group j's Y_j'Y_j (rows of ``w``) added to the upper triangle of ``G``."""
    return ["for a in range(m):", *(f"    w{c} = w[{c}, a]" for c in range(q)), "    for b in range(a, m):",
            f"        {G}[a, b] += {' + '.join(f'w{c} * w[{c}, b]' for c in range(q))}"]


def _logdet_sum(f, q: int, prod: str, logdet: str) -> list:
    """log|M_j| added to ``logdet``: the determinants multiplied into ``prod`` (|M_j| >= 1),
    one log per ~1e150 of product, not a log a group."""
    return [*f.det, "if det < 1e150:", f"    {prod} *= det", f"    if {prod} > 1e150:",
            f"        {logdet} += math.log({prod})", f"        {prod} = 1.0",
            "else:", f"    {logdet} += {' + '.join(f'math.log(D{a})' for a in range(q))}"]


def _fixed(name: str, shape: str, p: int | None, extra: int = 0) -> str:
    """The loops over the fixed effects get their length from an array's shape (any p), or
    the constant p + extra of a kernel specialised to p (see :func:`pls_kernels`)."""
    return f"    {name} = {shape if p is None else p + extra}"


def _symmetrised(G: str) -> list:
    return ["for a in range(m):", "    for b in range(a + 1, m):", f"        {G}[b, a] = {G}[a, b]"]


def criterion_source(f, q: int, p: int | None = None, blocks: bool = False) -> str:
    """``criterion_terms``: (1) M_j = L_j L_j', (2) Y_j = L_j^-1 Lambda' [Z_j'X_j | Z_j'y_j]
    into L, Y when ``keep``, G = sum_j Y_j'Y_j, returns sum_j log|M_j| (nan when some M_j
    lost its positive definiteness to rounding); with ``blocks``, ``criterion_blocks``:
    every Y_j stored, no G (BLAS sums them)."""
    return "\n".join([
        HEAD,
        "def criterion_blocks(lam, ZtZ, ZtXy, L, Y, keep):" if blocks else
        "def criterion_terms(lam, ZtZ, ZtXy, L, Y, G, keep):",
        '    """lmm_profile: M_j, its Cholesky factor L_j, Y_j (the half of r2_theta\'s quadratic',
        '    form), sum_j Y_j\'Y_j and logdet_L; see the module docstring."""',
        *_indent(_lam(q), 1),
        _fixed("m", "ZtXy.shape[2]", p, 1),
        *([] if blocks else [f"    w = np.empty(({q}, m))", "    G[:, :] = 0.0"]),
        "    logdet = 0.0",
        "    prod = 1.0",
        "    for j in range(ZtZ.shape[0]):",
        *_indent(_loads(q) + _per_group(f, q, "return np.nan", "Y[j, " if blocks else "w[", keep=not blocks), 2),
        "        if keep:",
        *(f"            L[j, {i}, {k}] = {f'L{i}_{k}' if k <= i else '0.0'}" for i in range(q) for k in range(q)),
        *_indent(_logdet_sum(f, q, "prod", "logdet") + ([] if blocks else _group_sums(q, "G")), 2),
        "    logdet += math.log(prod)",
        *([] if blocks else _indent(_symmetrised("G"), 1)),
        "    return logdet"])


def gradient_source(f, q: int, p: int | None = None) -> str:
    """``gradient_terms``: the sums over groups of lmm_gradient's d_logdet_L and d_r2
    (times their steps' numbers) into dlog, dr2 (q x q), and for REML every W_j into W
    (J, q, p): the caller forms sum_j W_j A^-1 W_j' by BLAS (d_logdet_RX)."""
    c_log, c_r2, _ = f.scales
    reml = ["for b in range(p):", *(f"    x{a} = ZtXy[j, {a}, b]" for a in range(q)), *_indent(f.w_apply, 1),
            *(f"    W[j, {a}, b] = w{a}" for a in range(q))]
    body = (_loads(q) + _stored_factor(q) + f.inverse + _deviation(f, q, "beta") + f.gradient
            + ["if reml:", *_indent(f.w_operator + reml, 1)])
    return "\n".join([
        HEAD,
        "def gradient_terms(lam, ZtZ, ZtXy, L, beta, W, reml, dlog, dr2):",
        '    """lmm_gradient, steps d_logdet_L, d_r2 and (W_j) d_logdet_RX, from L of criterion_terms',
        '    and beta_hat; see the module docstring."""',
        *_indent(_lam(q), 1),
        _fixed("p", "beta.shape[0]", p),
        *(f"    d{a}_{b} = 0.0" for a in range(q) for b in range(q)),
        *(f"    e{a}_{b} = 0.0" for a in range(q) for b in range(q)),
        "    for j in range(ZtZ.shape[0]):",
        *_indent(body, 2),
        *(f"    dlog[{a}, {b}] = {c_log!r} * d{a}_{b}" for a in range(q) for b in range(q)),
        *(f"    dr2[{a}, {b}] = {c_r2!r} * e{a}_{b}" for a in range(q) for b in range(q))])


def blup_source(f, q: int, p: int | None = None) -> str:
    """``blup_terms``: per group lmm_blup's blup_theta and condvar_theta, from the L_j of
    ``criterion_terms`` (M_j^-1 = N'N)."""
    def k(a, c):
        return f"k{max(a, c)}_{min(a, c)}"

    body = (_stored_factor(q) + f.inverse + _deviation(f, q, "beta") + f.blup
            + ["# in the user's columns: T b_j and T Var(b_j | y) T' (T the fit's change of basis)"]
            + [f"b[j, {a}] = {' + '.join(f'T{a}_{c} * b{c}' for c in range(q))}" for a in range(q)]
            + [f"h{a}_{c} = {' + '.join(f'T{a}_{e} * {k(e, c)}' for e in range(q))}" for a in range(q) for c in range(q)]
            + [f"cond[j, {a}, {c}] = cond[j, {c}, {a}] = {' + '.join(f'h{a}_{e} * T{c}_{e}' for e in range(q))}"
               for a in range(q) for c in range(a + 1)])
    return "\n".join([
        HEAD,
        "def blup_terms(lam, ZtXy, L, beta, sigma2, T, b, cond):",
        '    """lmm_blup, steps blup_theta and condvar_theta: b (J, q) and cond (J, q, q), times T."""',
        *_indent(_lam(q), 1),
        *(f"    T{a}_{c} = T[{a}, {c}]" for a in range(q) for c in range(q)),
        _fixed("p", "beta.shape[0]", p),
        "    for j in range(L.shape[0]):",
        *_indent(body, 2)])


def moment_source(f, q: int, p: int | None = None) -> str:
    """``group_least_squares`` for :func:`.optimise.moment_start`: per group lmm_blup's
    b_ls_j = (Z_j'Z_j)^-1 Z_j'(y_j - X_j beta) where Z_j'Z_j is well conditioned (its
    determinant above 1e-10 max|Z_j'Z_j|^q) and n_j > q, by its Cholesky factor."""
    body = cholesky_lines(q, "z", "continue")
    body += [f"if not {' * '.join(f'D{a}' for a in range(q))} > 1e-10 * big ** {q}:", "    continue"]
    body += triangular_inverse_lines(q) + f.inverse + _deviation(f, q, "beta") + f.least_squares
    body += ["ok[j] = True", *(f"b[j, {a}] = u{a}" for a in range(q)),
             f"fitted += {' + '.join(f'(ty{a} - xb{a}) * u{a}' for a in range(q))}",
             *(f"s{a}_{c} += C{a}_{c}" for a in range(q) for c in range(a + 1)),
             *(f"m{a} += u{a}" for a in range(q)),
             *(f"M{a}_{c} += u{a} * u{c}" for a in range(q) for c in range(a, q))]
    return "\n".join([
        HEAD,
        "def group_least_squares(ZtZ, ZtXy, beta, n, ok, b, inv_sum, b_sum, bb_sum):",
        '    """Fills ok (J,), b (J, q) (where ok) and, over the ok groups, inv_sum = the sum of',
        "    (Z_j'Z_j)^-1, b_sum = the sum of b_j, bb_sum = the sum of b_j b_j' (their covariance",
        "    without a pass of its own); returns sum_j (Z_j'r_j)' b_j over them (r_j = y_j - X_j beta).\"\"\"",
        _fixed("p", "beta.shape[0]", p),
        *(f"    s{a}_{c} = 0.0" for a in range(q) for c in range(a + 1)),
        *(f"    m{a} = 0.0" for a in range(q)),
        *(f"    M{a}_{c} = 0.0" for a in range(q) for c in range(a, q)),
        "    fitted = 0.0",
        "    for j in range(ZtZ.shape[0]):",
        "        ok[j] = False",
        f"        if n[j] <= {q}:",
        "            continue",
        *_indent(_loads(q), 2),
        f"        big = max({', '.join(f'abs(z{a}_{c})' for a in range(q) for c in range(a + 1))}"
        f"{', 0.0' if q == 1 else ''})",
        *_indent(body, 2),
        *(f"    inv_sum[{a}, {c}] = inv_sum[{c}, {a}] = s{a}_{c}" for a in range(q) for c in range(a + 1)),
        *(f"    b_sum[{a}] = m{a}" for a in range(q)),
        *(f"    bb_sum[{a}, {c}] = bb_sum[{c}, {a}] = M{a}_{c}" for a in range(q) for c in range(a, q)),
        "    return fitted"])


def many_source(f, q: int, p: int | None = None) -> str:
    """``criterion_many``: criterion_terms' G and log-determinant at K thetas in one sweep
    over the groups (each group's statistics read once): the same arithmetic in the same
    order, so the same numbers as K calls of criterion_terms."""
    return "\n".join([
        HEAD,
        "def criterion_many(lams, ZtZ, ZtXy, G, logdet, bad):",
        '    """For lams (K, q, q): G (K, p+1, p+1), logdet (K,) as criterion_terms gives them, and',
        '    bad (K,): True where some M_j lost its positive definiteness to rounding."""',
        "    K = lams.shape[0]",
        _fixed("m", "ZtXy.shape[2]", p, 1),
        f"    w = np.empty(({q}, m))",
        "    prod = np.ones(K)",
        "    G[:, :, :] = 0.0",
        "    for t in range(K):",
        "        logdet[t] = 0.0",
        "        bad[t] = False",
        "    for j in range(ZtZ.shape[0]):",
        *_indent(_loads(q), 2),
        "        for t in range(K):",
        "            if bad[t]:",
        "                continue",
        "            Gt = G[t]",
        *_indent(_lam(q, "lams[t]"), 3),
        *_indent(_per_group(f, q, "bad[t] = True; continue", "w[") + _logdet_sum(f, q, "prod[t]", "logdet[t]")
                 + _group_sums(q, "Gt"), 3),
        "    for t in range(K):",
        "        logdet[t] += math.log(prod[t])",
        "        Gt = G[t]",
        *_indent(_symmetrised("Gt"), 2)])


def generated(q: int, p: int | None = None) -> str:
    """The module of compiled steps for q random-effect columns and p fixed effects (None:
    any), generated from the derivations (imports SymPy: see :func:`pls_source`)."""
    f = formulas(q)
    scale = f"RX_SCALE = {f.scales[2]!r}  # lmm_gradient, step d_logdet_RX: the number in front of its sum"
    parts = [scale, criteria_source(), criterion_source(f, q, p), gradient_source(f, q, p), moment_source(f, q, p), blup_source(f, q, p),
             many_source(f, q, p)] + ([] if p is not None else [criterion_source(f, q, None, True)])
    return "\n".join(["import math", "", "import numpy as np", "from numba import njit", "", "",
                      "\n\n\n".join(parts), ""])
