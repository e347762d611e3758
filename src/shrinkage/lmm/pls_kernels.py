"""Steps (1)-(5) and (7)-(9) of :mod:`.objective`, group by group, compiled by numba.

numpy vectorised these over groups: one call (about a microsecond, and a temporary of J
values) per scalar operation of the q x q algebra, and the optimiser evaluates the
criterion some twenty times a fit.  Loops over q x q arrays compiled as written are no
better (23 ns a group for one 2 x 2 product: the loops' overhead), so the algebra is
written out for the model's (q, p), every entry a local variable: the Python loops below
run when the source is generated, not when it runs.  Sums over groups are added in group
order (deterministic).  Formulas, names and numbering are those of the module docstring
of :mod:`.objective`; the tests check them against dense matrices and the derivations.
"""

from __future__ import annotations

import functools

from .kernels import compiled

__all__ = ["pls_kernels", "pls_source", "moment_source", "blup_source", "many_source"]


def _sum(terms, start: str = "") -> str:
    """``start + t0 + t1 ...`` (``start - ...`` for terms beginning with '-'), or 0.0."""
    out = start
    for t in terms:
        if t.startswith("-"):
            out = f"{out} - {t[1:]}" if out else f"-{t[1:]}"
        else:
            out = f"{out} + {t}" if out else t
    return out or "0.0"


def _cholesky(q: int, entry: str, fail: str) -> list:
    """Lines of L L' = the symmetric matrix whose lower entries are named ``entry``a_b:
    pivots D_i, L_ij, and I_i = 1 / L_ii; ``fail`` is the statement when a pivot is not
    positive."""
    lines = []
    for i in range(q):
        for k in range(i + 1):
            t = _sum([f"-L{i}_{n} * L{k}_{n}" for n in range(k)], f"{entry}{i}_{k}")
            if i == k:
                lines += [f"D{i} = {t}", f"if not D{i} > 0.0:", f"    {fail}", f"L{i}_{i} = math.sqrt(D{i})",
                          f"I{i} = 1.0 / L{i}_{i}"]
            else:
                lines.append(f"L{i}_{k} = ({t}) * I{k}")
    return lines


def _inverse(q: int) -> list:
    """Lines of N = L^-1 (lower-triangular), column by column, with I_a = 1 / L_aa."""
    return [f"N{a}_{b} = ({_sum([f'-L{a}_{c} * N{c}_{b}' for c in range(b, a)], '1.0' if a == b else '')}) * I{a}"
            for b in range(q) for a in range(b, q)]


def _reciprocals(q: int) -> list:
    """Lines of I_a = 1 / L_aa: q divisions a group, then products (a division costs
    several multiplications)."""
    return [f"I{a} = 1.0 / L{a}_{a}" for a in range(q)]


def _back_substitution(q: int) -> list:
    """Lines of u = L'^-1 v (with the I_a of :func:`_reciprocals`)."""
    return [f"u{a} = ({_sum([f'-L{c}_{a} * u{c}' for c in range(a + 1, q)], f'v{a}')}) * I{a}"
            for a in reversed(range(q))]


def _loads(q: int, m: int) -> list:
    """Lines reading group j's Z_j'Z_j (z) and [Z_j'X_j | Z_j'y_j] (r)."""
    return ([f"z{a}_{c} = ZtZ[j, {a}, {c}]" for a in range(q) for c in range(q)]
            + [f"r{a}_{b} = ZtXy[j, {a}, {b}]" for a in range(q) for b in range(m)])


def _per_group(q: int, m: int, fail: str = "return np.nan") -> list:
    """Lines of steps (1)-(2) for group j, z and r read (:func:`_loads`): T = Z'Z Lambda,
    S = Lambda'T + I, L = chol(S), Y = L^-1 Lambda' [Z'X | Z'y]; lower-triangular Lambda
    (entries l); ``fail`` where a pivot of S is not positive."""
    lines = [f"T{a}_{b} = {_sum(f'z{a}_{c} * l{c}_{b}' for c in range(b, q))}" for a in range(q) for b in range(q)]
    lines += [f"S{a}_{b} = {_sum([f'l{c}_{a} * T{c}_{b}' for c in range(a, q)] + (['1.0'] if a == b else []))}"
              for a in range(q) for b in range(a + 1)]
    lines += _cholesky(q, "S", fail)
    for b in range(m):
        for a in range(q):
            rhs = _sum([f"l{c}_{a} * r{c}_{b}" for c in range(a, q)])
            lines.append(f"Y{a}_{b} = ({_sum([f'-L{a}_{c} * Y{c}_{b}' for c in range(a)], f'({rhs})')}) * I{a}")
    return lines


def _group_sums(q: int, m: int, g, prod: str, logdet: str) -> list:
    """Lines adding group j's Y_j'Y_j to the sums ``g(a, b)`` and log|S_j| to ``logdet``
    (the pivots multiplied into ``prod``: one log per ~1e150 of product, not a log a group)."""
    return [*(f"{g(a, b)} += {_sum(f'Y{c}_{a} * Y{c}_{b}' for c in range(q))}" for a in range(m) for b in range(a, m)),
            f"det = {' * '.join(f'D{a}' for a in range(q))}  # |S_j| >= 1, the product of the pivots",
            "if det < 1e150:",
            f"    {prod} *= det",
            f"    if {prod} > 1e150:",
            f"        {logdet} += math.log({prod})",
            f"        {prod} = 1.0",
            "else:",
            f"    {logdet} += {' + '.join(f'math.log(D{a})' for a in range(q))}"]


def moment_source(q: int, p: int) -> str:
    """Source of ``group_least_squares`` for :func:`.optimise.moment_start`: per group,
    b_j = (Z_j'Z_j)^-1 Z_j'(y_j - X_j beta) where Z_j'Z_j is well conditioned (its
    determinant above 1e-10 max|Z_j'Z_j|^q) and n_j > q, by its Cholesky factor."""
    lines = [
        "@njit(nogil=True, cache=True, error_model='numpy')",
        "def group_least_squares(ZtZ, ZtXy, beta, n, ok, b, inv_sum, b_sum, bb_sum):",
        '    """Fills ok (J,), b (J, q) (where ok) and, over the ok groups, inv_sum = the sum of',
        "    (Z_j'Z_j)^-1, b_sum = the sum of b_j, bb_sum = the sum of b_j b_j' (their covariance",
        "    without a pass of its own); returns sum_j (Z_j'r_j)' b_j over them (r_j = y_j - X_j beta).\"\"\"",
        *(f"    c{c} = beta[{c}]" for c in range(p)),
        *(f"    s{a}_{b} = 0.0" for a in range(q) for b in range(q)),
        *(f"    m{a} = 0.0" for a in range(q)),
        *(f"    M{a}_{b} = 0.0" for a in range(q) for b in range(a, q)),
        "    fitted = 0.0",
        "    for j in range(ZtZ.shape[0]):",
        "        ok[j] = False",
        f"        if n[j] <= {q}:",
        "            continue",
        *(f"        z{a}_{c} = ZtZ[j, {a}, {c}]" for a in range(q) for c in range(q)),
        f"        big = max({', '.join(f'abs(z{a}_{c})' for a in range(q) for c in range(q))}"
        f"{', 0.0' if q * q == 1 else ''})",
    ]
    body = _cholesky(q, "z", "continue")
    body += [f"if not {' * '.join(f'D{a}' for a in range(q))} > 1e-10 * big ** {q}:", "    continue"]
    body += _inverse(q)
    body += [f"V{a}_{b} = {_sum(f'N{e}_{a} * N{e}_{b}' for e in range(max(a, b), q))}" for a in range(q) for b in range(q)]
    body += [f"r{a} = {_sum([f'-ZtXy[j, {a}, {c}] * c{c}' for c in range(p)], f'ZtXy[j, {a}, {p}]')}" for a in range(q)]
    body += [f"u{a} = {_sum(f'V{a}_{b} * r{b}' for b in range(q))}" for a in range(q)]
    body += ["ok[j] = True", *(f"b[j, {a}] = u{a}" for a in range(q)),
             f"fitted += {_sum(f'r{a} * u{a}' for a in range(q))}",
             *(f"s{a}_{b} += V{a}_{b}" for a in range(q) for b in range(q)),
             *(f"m{a} += u{a}" for a in range(q)),
             *(f"M{a}_{b} += u{a} * u{b}" for a in range(q) for b in range(a, q))]
    lines += ["        " + x for x in body]
    lines += [*(f"    inv_sum[{a}, {b}] = s{a}_{b}" for a in range(q) for b in range(q)),
              *(f"    b_sum[{a}] = m{a}" for a in range(q)),
              *(f"    bb_sum[{a}, {b}] = bb_sum[{b}, {a}] = M{a}_{b}" for a in range(q) for b in range(a, q)),
              "    return fitted"]
    return "\n".join(lines)


def blup_source(q: int, p: int) -> str:
    """Source of ``blup_terms``: per group, lme4's conditional mode b_j = M u_j with
    u_j = L_j'^-1 (Y_jy - Y_jx beta), and condVar sigma^2 M S_j^-1 M' = sigma^2 F F' with
    F = M L_j^-T, from the L_j, Y_j of ``criterion_terms``: M = Lambda, or any q x q
    matrix times it (the fit's map from centred columns back to the user's, applied here
    rather than to J results afterwards)."""
    body = [*(f"L{i}_{k} = L[j, {i}, {k}]" for i in range(q) for k in range(i + 1)),
            *(f"Y{a}_{b} = Y[j, {a}, {b}]" for a in range(q) for b in range(p + 1)),
            *(f"v{a} = {_sum([f'-Y{a}_{c} * c{c}' for c in range(p)], f'Y{a}_{p}')}" for a in range(q))]
    body += _reciprocals(q) + _back_substitution(q)
    body += [f"b[j, {a}] = {_sum(f'l{a}_{c} * u{c}' for c in range(q))}" for a in range(q)]
    body += _inverse(q)
    body += [f"F{a}_{b} = {_sum(f'l{a}_{c} * N{b}_{c}' for c in range(b + 1))}" for a in range(q) for b in range(q)]
    body += [f"cond[j, {a}, {b}] = sigma2 * ({_sum(f'F{a}_{e} * F{b}_{e}' for e in range(q))})" for a in range(q) for b in range(q)]
    return "\n".join([
        "@njit(nogil=True, cache=True, error_model='numpy')",
        "def blup_terms(lam, L, Y, beta, sigma2, b, cond):",
        '    """Fills b (J, q): b_j = M u_j, and cond (J, q, q): sigma2 M S_j^-1 M\' for M = lam."""',
        *(f"    l{a}_{c} = lam[{a}, {c}]" for a in range(q) for c in range(q)),
        *(f"    c{c} = beta[{c}]" for c in range(p)),
        "    for j in range(L.shape[0]):",
        *("        " + x for x in body)])


def pls_source(q: int, p: int) -> str:
    """Source of ``criterion_terms`` and ``gradient_terms`` for q random-effect columns
    and p fixed effects (see their docstrings in the source)."""
    m = p + 1
    lam = [f"l{c}_{b} = lam[{c}, {b}]" for b in range(q) for c in range(b, q)]
    body = _loads(q, m) + _per_group(q, m)
    crit = [
        "@njit(nogil=True, cache=True, error_model='numpy')",
        "def criterion_terms(lam, ZtZ, ZtXy, L, Y, G, keep):",
        '    """(1) L_j = chol(Lambda\' Z_j\'Z_j Lambda + I), (2) Y_j = L_j^-1 Lambda\' [Z_j\'X_j | Z_j\'y_j]',
        "    into L (J, q, q), Y (J, q, p+1) when ``keep`` (the value alone needs neither); G = the",
        "    sum of Y_j'Y_j; returns the sum of log|S_j|, or nan when some S_j lost its positive",
        '    definiteness to rounding."""',
        *("    " + x for x in lam),
        *(f"    g{a}_{b} = 0.0" for a in range(m) for b in range(a, m)),
        "    logdet = 0.0",
        "    prod = 1.0",
        "    for j in range(ZtZ.shape[0]):",
        *("        " + x for x in body),
        "        if keep:",
        *(f"            L[j, {i}, {k}] = {f'L{i}_{k}' if k <= i else '0.0'}" for i in range(q) for k in range(q)),
        *(f"            Y[j, {a}, {b}] = Y{a}_{b}" for a in range(q) for b in range(m)),
        *("        " + x for x in _group_sums(q, m, lambda a, b: f"g{a}_{b}", "prod", "logdet")),
        "    logdet += math.log(prod)",
        *(f"    G[{a}, {b}] = G[{b}, {a}] = g{a}_{b}" for a in range(m) for b in range(a, m)),
        "    return logdet",
    ]
    grad = [
        "@njit(nogil=True, cache=True, error_model='numpy')",
        "def gradient_terms(lam, ZtZ, ZtXy, L, Y, beta, RinvT, reml, dlog, dr2, P):",
        '    """(7)-(9) summed over the groups into the q x q dlog = 2 sum_j Z_j\'Z_j Lambda S_j^-1,',
        "    dr2 = -2 sum_j (Z_j'e_j) u_j' and (REML) P = sum_j W_j A^-1 W_j' (the caller subtracts",
        "    2 P Lambda from the summed dlog), from L, Y of criterion_terms, beta_hat and",
        '    RinvT = R_A^-T (A = R_A R_A\')."""',
        *("    " + x for x in lam),
        *(f"    b{c} = beta[{c}]" for c in range(p)),
        *(f"    w{c}_{b} = RinvT[{c}, {b}]" for c in range(p) for b in range(p)),
        *(f"    d{a}_{b} = 0.0" for a in range(q) for b in range(q)),
        *(f"    e{a}_{b} = 0.0" for a in range(q) for b in range(q)),
        *(f"    P{a}_{b} = 0.0" for a in range(q) for b in range(a, q)),
        "    for j in range(ZtZ.shape[0]):",
        *(f"        z{a}_{c} = ZtZ[j, {a}, {c}]" for a in range(q) for c in range(q)),
        *(f"        r{a}_{b} = ZtXy[j, {a}, {b}]" for a in range(q) for b in range(m)),
        *(f"        L{i}_{k} = L[j, {i}, {k}]" for i in range(q) for k in range(i + 1)),
        *(f"        Y{a}_{b} = Y[j, {a}, {b}]" for a in range(q) for b in range(m)),
    ]
    g = []
    g += [f"v{a} = {_sum([f'-Y{a}_{c} * b{c}' for c in range(p)], f'Y{a}_{p}')}" for a in range(q)]
    g += _reciprocals(q) + _back_substitution(q)
    g += _inverse(q)  # Linv = L^-1
    g += [f"C{a}_{b} = {_sum(f'N{e}_{a} * N{e}_{b}' for e in range(max(a, b), q))}"  # S^-1 = Linv' Linv
          for a in range(q) for b in range(q)]
    g += [f"T{a}_{b} = {_sum(f'z{a}_{c} * l{c}_{b}' for c in range(b, q))}" for a in range(q) for b in range(q)]
    # (the factors 2 and -2 applied to the sums: scaling by 2 is exact, the same numbers)
    g += [f"d{a}_{b} += {_sum(f'T{a}_{c} * C{c}_{b}' for c in range(q))}" for a in range(q) for b in range(q)]
    for a in range(q):  # Z'e = Z'(y - X beta) - Z'Z Lambda u
        g.append(f"f{a} = {_sum([f'-r{a}_{c} * b{c}' for c in range(p)] + [f'-T{a}_{c} * u{c}' for c in range(q)], f'r{a}_{p}')}")
    g += [f"e{a}_{b} += f{a} * u{b}" for a in range(q) for b in range(q)]
    g.append("if reml:")
    reml = []
    for b in range(p):  # H = L^-T Y_x
        for a in reversed(range(q)):
            reml.append(f"H{a}_{b} = ({_sum([f'-L{c}_{a} * H{c}_{b}' for c in range(a + 1, q)], f'Y{a}_{b}')}) * I{a}")
    reml += [f"W{a}_{b} = {_sum([f'-T{a}_{c} * H{c}_{b}' for c in range(q)], f'r{a}_{b}')}" for a in range(q) for b in range(p)]
    reml += [f"V{a}_{b} = {_sum(f'W{a}_{c} * w{c}_{b}' for c in range(p))}" for a in range(q) for b in range(p)]
    reml += [f"P{a}_{b} += {_sum(f'V{a}_{c} * V{b}_{c}' for c in range(p))}" for a in range(q) for b in range(a, q)]
    g += ["    " + x for x in reml]
    grad += ["        " + x for x in g]
    grad += [
        *(f"    P[{a}, {b}] = P[{b}, {a}] = P{a}_{b}" for a in range(q) for b in range(a, q)),
        *(f"    dlog[{a}, {b}] = 2.0 * d{a}_{b}" for a in range(q) for b in range(q)),
        *(f"    dr2[{a}, {b}] = -2.0 * e{a}_{b}" for a in range(q) for b in range(q)),
    ]
    return "\n".join(["import math", "", "import numpy as np", "from numba import njit", "", "",
                      *crit, "", "", *grad, "", "", moment_source(q, p), "", "", blup_source(q, p), "", "",
                      many_source(q, p), ""])


def many_source(q: int, p: int) -> str:
    """Source of ``criterion_many``: criterion_terms' G and log|S_j| sum at K thetas in one
    sweep over the groups (each group's statistics read once, not K times: the starting
    points are evaluated together).  The same arithmetic in the same order: the same
    numbers as K calls of criterion_terms."""
    m = p + 1
    lines = [
        "@njit(nogil=True, cache=True, error_model='numpy')",
        "def criterion_many(lams, ZtZ, ZtXy, G, logdet, bad):",
        '    """For lams (K, q, q): G (K, p+1, p+1), logdet (K,) as criterion_terms gives them, and',
        '    bad (K,): True where some S_j lost its positive definiteness to rounding."""',
        "    K = lams.shape[0]",
        "    prod = np.ones(K)",
        "    for t in range(K):",
        "        logdet[t] = 0.0",
        "        bad[t] = False",
        *(f"        G[t, {a}, {b}] = 0.0" for a in range(m) for b in range(a, m)),
        "    for j in range(ZtZ.shape[0]):",
        *("        " + x for x in _loads(q, m)),
        "        for t in range(K):",
        "            if bad[t]:",
        "                continue",
        *(f"            l{c}_{b} = lams[t, {c}, {b}]" for b in range(q) for c in range(b, q)),
        *("            " + x for x in _per_group(q, m, "bad[t] = True; continue")),
        *("            " + x for x in _group_sums(q, m, lambda a, b: f"G[t, {a}, {b}]", "prod[t]", "logdet[t]")),
        "    for t in range(K):",
        "        logdet[t] += math.log(prod[t])",
        *(f"        G[t, {b}, {a}] = G[t, {a}, {b}]" for a in range(m) for b in range(a + 1, m)),
    ]
    return "\n".join(lines)


@functools.lru_cache(maxsize=None)
def pls_kernels(q: int, p: int):
    """(criterion_terms, gradient_terms, group_least_squares, blup_terms, criterion_many)
    compiled for (q, p), once a process."""
    module = compiled(pls_source(q, p), "pls")
    return (module.criterion_terms, module.gradient_terms, module.group_least_squares, module.blup_terms,
            module.criterion_many)
