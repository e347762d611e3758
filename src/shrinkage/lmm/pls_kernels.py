"""Steps (1)-(5) and (7)-(9) of :mod:`.objective`, group by group, compiled by numba.

numpy vectorised these over groups: one call (about a microsecond, and a temporary of J
values) per scalar operation of the q x q algebra, and the optimiser evaluates the
criterion some twenty times a fit.  Loops over q x q arrays compiled as written are no
better (23 ns a group for one 2 x 2 product: the loops' overhead), so the q x q algebra
is written out for the model's q (small: the random terms of one grouping factor), every
entry a local variable: the Python loops below run when the source is generated, not
when it runs.  The fixed-effect dimension p is a loop in the compiled code, never
written out: one kernel per q serves every p (written out per (q, p), a formula with a
40-level factor covariate compiled for over ten minutes).  Sums over groups are added in
group order (deterministic).  From BLAS_P fixed effects on, the O(J q p^2) sums over the
groups (of Y_j'Y_j, and REML's W_j A^-1 W_j') are left to BLAS: ``criterion_blocks`` and
``gradient_blocks`` store the blocks instead (at p = 1000 the scalar sums took most of a
minute a fit).  Formulas, names and numbering are those of the module
docstring of :mod:`.objective`; the tests check them against dense matrices and the
derivations.
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


def _indent(lines, depth: int) -> list:
    return ["    " * depth + x for x in lines]


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


def _back_substitution(q: int, out: str = "u", rhs=lambda a: f"v{a}") -> list:
    """Lines of out = L'^-1 rhs (with the I_a of :func:`_reciprocals`)."""
    return [f"{out}{a} = ({_sum([f'-L{c}_{a} * {out}{c}' for c in range(a + 1, q)], rhs(a))}) * I{a}"
            for a in reversed(range(q))]


def _residual(q: int, source: str, beta: str, into: str) -> list:
    """Lines of ``into``a = source[j, a, p] - sum_c source[j, a, c] beta[c]: the entries of
    Z_j'(y_j - X_j beta) (or of Y_jy - Y_jx beta), the loop over the p fixed effects
    shared by the q rows."""
    return [*(f"{into}{a} = {source}[j, {a}, p]" for a in range(q)),
            "for c in range(p):",
            f"    bc = {beta}[c]",
            *(f"    {into}{a} -= {source}[j, {a}, c] * bc" for a in range(q))]


def _loads(q: int) -> list:
    """Lines reading group j's Z_j'Z_j (entries z)."""
    return [f"z{a}_{c} = ZtZ[j, {a}, {c}]" for a in range(q) for c in range(q)]


def _per_group(q: int, fail: str = "return np.nan", keep: bool = False) -> list:
    """Lines of steps (1)-(2) for group j, z read (:func:`_loads`): T = Z'Z Lambda, S = Lambda'T + I, L = chol(S),
    and the columns b = 0..p of Y = L^-1 Lambda' [Z'X | Z'y] into the rows of ``w``
    (q, p+1); lower-triangular Lambda (entries l); ``fail`` where a pivot of S is not
    positive."""
    lines = [f"T{a}_{b} = {_sum(f'z{a}_{c} * l{c}_{b}' for c in range(b, q))}" for a in range(q) for b in range(q)]
    lines += [f"S{a}_{b} = {_sum([f'l{c}_{a} * T{c}_{b}' for c in range(a, q)] + (['1.0'] if a == b else []))}"
              for a in range(q) for b in range(a + 1)]
    lines += _cholesky(q, "S", fail)
    lines += ["for b in range(m):", *(f"    r{a} = ZtXy[j, {a}, b]" for a in range(q))]
    for a in range(q):
        rhs = _sum([f"l{c}_{a} * r{c}" for c in range(a, q)])
        lines.append(f"    y{a} = ({_sum([f'-L{a}_{c} * y{c}' for c in range(a)], f'({rhs})')}) * I{a}")
        lines.append(f"    w[{a}, b] = y{a}")
    if keep:  # into Y as well, when the caller keeps the pieces
        lines += ["    if keep:", *(f"        Y[j, {a}, b] = y{a}" for a in range(q))]
    return lines


def _group_sums(q: int, G: str, prod: str, logdet: str) -> list:
    """Lines adding group j's Y_j'Y_j (rows of ``w``) to the upper triangle of ``G`` and
    log|S_j| to ``logdet`` (the pivots multiplied into ``prod``: one log per ~1e150 of
    product, not a log a group)."""
    return ["for a in range(m):",
            *(f"    w{c} = w[{c}, a]" for c in range(q)),
            "    for b in range(a, m):",
            f"        {G}[a, b] += {_sum(f'w{c} * w[{c}, b]' for c in range(q))}",
            *_logdet_sum(q, prod, logdet)]


def _logdet_sum(q: int, prod: str, logdet: str) -> list:
    """Lines adding log|S_j| to ``logdet`` (see :func:`_group_sums`)."""
    return [f"det = {' * '.join(f'D{a}' for a in range(q))}  # |S_j| >= 1, the product of the pivots",
            "if det < 1e150:",
            f"    {prod} *= det",
            f"    if {prod} > 1e150:",
            f"        {logdet} += math.log({prod})",
            f"        {prod} = 1.0",
            "else:",
            f"    {logdet} += {' + '.join(f'math.log(D{a})' for a in range(q))}"]


def _fixed(name: str, shape: str, p: int | None, extra: int = 0) -> str:
    """The line giving the loops over the fixed effects their length: read from an array's
    shape (any p), or the constant p + extra of a kernel specialised to p (see
    :func:`pls_kernels`)."""
    return f"    {name} = {shape if p is None else p + extra}"


def _symmetrised(G: str) -> list:
    return ["for a in range(m):", "    for b in range(a + 1, m):", f"        {G}[b, a] = {G}[a, b]"]


def moment_source(q: int, p: int | None = None) -> str:
    """Source of ``group_least_squares`` for :func:`.optimise.moment_start`: per group,
    b_j = (Z_j'Z_j)^-1 Z_j'(y_j - X_j beta) where Z_j'Z_j is well conditioned (its
    determinant above 1e-10 max|Z_j'Z_j|^q) and n_j > q, by its Cholesky factor."""
    lines = [
        "@njit(nogil=True, cache=True, error_model='numpy')",
        "def group_least_squares(ZtZ, ZtXy, beta, n, ok, b, inv_sum, b_sum, bb_sum):",
        '    """Fills ok (J,), b (J, q) (where ok) and, over the ok groups, inv_sum = the sum of',
        "    (Z_j'Z_j)^-1, b_sum = the sum of b_j, bb_sum = the sum of b_j b_j' (their covariance",
        "    without a pass of its own); returns sum_j (Z_j'r_j)' b_j over them (r_j = y_j - X_j beta).\"\"\"",
        _fixed("p", "beta.shape[0]", p),
        *(f"    s{a}_{b} = 0.0" for a in range(q) for b in range(q)),
        *(f"    m{a} = 0.0" for a in range(q)),
        *(f"    M{a}_{b} = 0.0" for a in range(q) for b in range(a, q)),
        "    fitted = 0.0",
        "    for j in range(ZtZ.shape[0]):",
        "        ok[j] = False",
        f"        if n[j] <= {q}:",
        "            continue",
        *_indent(_loads(q), 2),
        f"        big = max({', '.join(f'abs(z{a}_{c})' for a in range(q) for c in range(q))}"
        f"{', 0.0' if q * q == 1 else ''})",
    ]
    body = _cholesky(q, "z", "continue")
    body += [f"if not {' * '.join(f'D{a}' for a in range(q))} > 1e-10 * big ** {q}:", "    continue"]
    body += _inverse(q)
    body += [f"V{a}_{b} = {_sum(f'N{e}_{a} * N{e}_{b}' for e in range(max(a, b), q))}" for a in range(q) for b in range(q)]
    body += _residual(q, "ZtXy", "beta", "r")
    body += [f"u{a} = {_sum(f'V{a}_{b} * r{b}' for b in range(q))}" for a in range(q)]
    body += ["ok[j] = True", *(f"b[j, {a}] = u{a}" for a in range(q)),
             f"fitted += {_sum(f'r{a} * u{a}' for a in range(q))}",
             *(f"s{a}_{b} += V{a}_{b}" for a in range(q) for b in range(q)),
             *(f"m{a} += u{a}" for a in range(q)),
             *(f"M{a}_{b} += u{a} * u{b}" for a in range(q) for b in range(a, q))]
    lines += _indent(body, 2)
    lines += [*(f"    inv_sum[{a}, {b}] = s{a}_{b}" for a in range(q) for b in range(q)),
              *(f"    b_sum[{a}] = m{a}" for a in range(q)),
              *(f"    bb_sum[{a}, {b}] = bb_sum[{b}, {a}] = M{a}_{b}" for a in range(q) for b in range(a, q)),
              "    return fitted"]
    return "\n".join(lines)


def blup_source(q: int, p: int | None = None) -> str:
    """Source of ``blup_terms``: per group, lme4's conditional mode b_j = M u_j with
    u_j = L_j'^-1 (Y_jy - Y_jx beta), and condVar sigma^2 M S_j^-1 M' = sigma^2 F F' with
    F = M L_j^-T, from the L_j, Y_j of ``criterion_terms``: M = Lambda, or any q x q
    matrix times it (the fit's map from centred columns back to the user's, applied here
    rather than to J results afterwards)."""
    body = [*(f"L{i}_{k} = L[j, {i}, {k}]" for i in range(q) for k in range(i + 1))]
    body += _residual(q, "Y", "beta", "v")
    body += _reciprocals(q) + _back_substitution(q)
    body += [f"b[j, {a}] = {_sum(f'l{a}_{c} * u{c}' for c in range(q))}" for a in range(q)]
    body += _inverse(q)
    body += [f"F{a}_{b} = {_sum(f'l{a}_{c} * N{b}_{c}' for c in range(b + 1))}" for a in range(q) for b in range(q)]
    body += [f"cond[j, {a}, {b}] = sigma2 * ({_sum(f'F{a}_{e} * F{b}_{e}' for e in range(q))})" for a in range(q) for b in range(q)]
    return "\n".join([
        "@njit(nogil=True, cache=True, error_model='numpy')",
        "def blup_terms(lam, L, Y, beta, sigma2, b, cond):",
        '    """lmm_blup, steps blup_theta and condvar_theta: fills b (J, q): b_j = M u_j, and',
        '    cond (J, q, q): sigma2 M S_j^-1 M\' for M = lam."""',
        *(f"    l{a}_{c} = lam[{a}, {c}]" for a in range(q) for c in range(q)),
        _fixed("p", "beta.shape[0]", p),
        "    for j in range(L.shape[0]):",
        *_indent(body, 2)])


def criterion_source(q: int, p: int | None = None, blocks: bool = False) -> str:
    """Source of ``criterion_terms`` (steps (1), (2) and the sum of Y_j'Y_j); with ``blocks``,
    of ``criterion_blocks``: without that sum, every Y_j stored (the caller sums them by
    BLAS, see :data:`BLAS_P`)."""
    doc = ['    """criterion_terms\' steps (1), (2): Y (J, q, p+1) always, L (J, q, q) when ``keep``;',
           '    returns the sum of log|S_j|, or nan as criterion_terms."""'] if blocks else [
        '    """lmm_profile, definitions M_j and logdet_L, and r2_pls (the penalised RSS):',
        '    (1) L_j = chol(Lambda\' Z_j\'Z_j Lambda + I), (2) Y_j = L_j^-1 Lambda\' [Z_j\'X_j | Z_j\'y_j]',
        "    into L (J, q, q), Y (J, q, p+1) when ``keep`` (the value alone needs neither); G = the",
        "    sum of Y_j'Y_j; returns the sum of log|S_j|, or nan when some S_j lost its positive",
        '    definiteness to rounding."""']
    return "\n".join([
        "@njit(nogil=True, cache=True, error_model='numpy')",
        "def criterion_blocks(lam, ZtZ, ZtXy, L, Y, keep):" if blocks else
        "def criterion_terms(lam, ZtZ, ZtXy, L, Y, G, keep):",
        *doc,
        *(f"    l{c}_{b} = lam[{c}, {b}]" for b in range(q) for c in range(b, q)),
        _fixed("m", "ZtXy.shape[2]", p, 1),
        *([] if blocks else [f"    w = np.empty(({q}, m))", "    G[:, :] = 0.0"]),
        "    logdet = 0.0",
        "    prod = 1.0",
        "    for j in range(ZtZ.shape[0]):",
        *_indent(_loads(q) + (_stored(q) if blocks else _per_group(q, keep=True)), 2),
        "        if keep:",
        *(f"            L[j, {i}, {k}] = {f'L{i}_{k}' if k <= i else '0.0'}" for i in range(q) for k in range(q)),
        *_indent(_logdet_sum(q, "prod", "logdet") if blocks else _group_sums(q, "G", "prod", "logdet"), 2),
        "    logdet += math.log(prod)",
        *([] if blocks else _indent(_symmetrised("G"), 1)),
        "    return logdet"])


def _stored(q: int) -> list:
    """:func:`_per_group`'s lines with the columns of Y_j written into Y (not ``w``)."""
    return [x.replace("w[", "Y[j, ") for x in _per_group(q)]


def gradient_source(q: int, p: int | None = None, blocks: bool = False) -> str:
    """Source of ``gradient_terms`` (steps (7)-(9) summed over the groups)."""
    head = [
        "@njit(nogil=True, cache=True, error_model='numpy')",
        ("def gradient_blocks(lam, ZtZ, ZtXy, L, Y, beta, W, reml, dlog, dr2):" if blocks else
         "def gradient_terms(lam, ZtZ, ZtXy, L, Y, beta, RinvT, reml, dlog, dr2, P):"),
        '    """lmm_gradient, steps d_logdet_L, d_r2 and d_logdet_RX: (7)-(9) summed over the',
        '    groups into the q x q dlog = 2 sum_j Z_j\'Z_j Lambda S_j^-1,',
        "    dr2 = -2 sum_j (Z_j'e_j) u_j' and (REML) P = sum_j W_j A^-1 W_j' (the caller subtracts",
        "    2 P Lambda from the summed dlog), from L, Y of criterion_terms, beta_hat and",
        *(['    RinvT = R_A^-T (A = R_A R_A\'); here the W_j go into W (J, q, p) instead of P (the',
           '    caller forms P by BLAS)."""'] if blocks else ['    RinvT = R_A^-T (A = R_A R_A\')."""']),
        *(f"    l{c}_{b} = lam[{c}, {b}]" for b in range(q) for c in range(b, q)),
        _fixed("p", "beta.shape[0]", p),
        *([] if blocks else [f"    W = np.empty(({q}, p))", f"    V = np.empty(({q}, p))"]),
        *(f"    d{a}_{b} = 0.0" for a in range(q) for b in range(q)),
        *(f"    e{a}_{b} = 0.0" for a in range(q) for b in range(q)),
        *([] if blocks else [f"    P{a}_{b} = 0.0" for a in range(q) for b in range(a, q)]),
        "    for j in range(ZtZ.shape[0]):",
    ]
    g = _loads(q)
    g += [f"L{i}_{k} = L[j, {i}, {k}]" for i in range(q) for k in range(i + 1)]
    g += _residual(q, "Y", "beta", "v")
    g += _reciprocals(q) + _back_substitution(q)
    g += _inverse(q)  # Linv = L^-1
    g += [f"C{a}_{b} = {_sum(f'N{e}_{a} * N{e}_{b}' for e in range(max(a, b), q))}"  # S^-1 = Linv' Linv
          for a in range(q) for b in range(q)]
    g += [f"T{a}_{b} = {_sum(f'z{a}_{c} * l{c}_{b}' for c in range(b, q))}" for a in range(q) for b in range(q)]
    # (the factors 2 and -2 applied to the sums: scaling by 2 is exact, the same numbers)
    g += [f"d{a}_{b} += {_sum(f'T{a}_{c} * C{c}_{b}' for c in range(q))}" for a in range(q) for b in range(q)]
    g += _residual(q, "ZtXy", "beta", "f")  # Z'e = Z'(y - X beta) - Z'Z Lambda u
    g += [f"f{a} = {_sum([f'-T{a}_{c} * u{c}' for c in range(q)], f'f{a}')}" for a in range(q)]
    g += [f"e{a}_{b} += f{a} * u{b}" for a in range(q) for b in range(q)]
    reml = ["for b in range(p):"]  # H = L^-T Y_x, W = Z'X - T H, V = W R_A^-T, P += V V'
    reml += _indent(_back_substitution(q, "H", lambda a: f"Y[j, {a}, b]"), 1)
    w = "W[j, " if blocks else "W["
    reml += [f"    {w}{a}, b] = {_sum([f'-T{a}_{c} * H{c}' for c in range(q)], f'ZtXy[j, {a}, b]')}" for a in range(q)]
    reml += [] if blocks else ["for b in range(p):", *(f"    V[{a}, b] = 0.0" for a in range(q)),
             "for c in range(p):",  # V = W R_A^-T, R_A^-T upper-triangular: row c of it scaled, rows added
             *(f"    w{a} = W[{a}, c]" for a in range(q)),
             "    for b in range(c, p):",
             "        t = RinvT[c, b]",
             *(f"        V[{a}, b] += w{a} * t" for a in range(q)),
             "for b in range(p):",
             *(f"    P{a}_{e} += V[{a}, b] * V[{e}, b]" for a in range(q) for e in range(a, q))]
    g += ["if reml:", *_indent(reml, 1)]
    tail = [*([] if blocks else (f"    P[{a}, {b}] = P[{b}, {a}] = P{a}_{b}" for a in range(q) for b in range(a, q))),
            *(f"    dlog[{a}, {b}] = 2.0 * d{a}_{b}" for a in range(q) for b in range(q)),
            *(f"    dr2[{a}, {b}] = -2.0 * e{a}_{b}" for a in range(q) for b in range(q))]
    return "\n".join(head + _indent(g, 2) + tail)


def many_source(q: int, p: int | None = None) -> str:
    """Source of ``criterion_many``: criterion_terms' G and log|S_j| sum at K thetas in one
    sweep over the groups (each group's statistics read once, not K times: the starting
    points are evaluated together).  The same arithmetic in the same order: the same
    numbers as K calls of criterion_terms."""
    return "\n".join([
        "@njit(nogil=True, cache=True, error_model='numpy')",
        "def criterion_many(lams, ZtZ, ZtXy, G, logdet, bad):",
        '    """For lams (K, q, q): G (K, p+1, p+1), logdet (K,) as criterion_terms gives them, and',
        '    bad (K,): True where some S_j lost its positive definiteness to rounding."""',
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
        *(f"            l{c}_{b} = lams[t, {c}, {b}]" for b in range(q) for c in range(b, q)),
        *_indent(_per_group(q, "bad[t] = True; continue"), 3),
        *_indent(_group_sums(q, "Gt", "prod[t]", "logdet[t]"), 3),
        "    for t in range(K):",
        "        logdet[t] += math.log(prod[t])",
        "        Gt = G[t]",
        *_indent(_symmetrised("Gt"), 2)])


def pls_source(q: int, p: int | None = None) -> str:
    """Source of the module of compiled steps for q random-effect columns, for p fixed
    effects (None: any)."""
    parts = (criterion_source(q, p), gradient_source(q, p), moment_source(q, p), blup_source(q, p),
             many_source(q, p)) + (() if p is not None else (criterion_source(q, None, True), gradient_source(q, None, True)))
    return "\n".join(["import math", "", "import numpy as np", "from numba import njit", "", "",
                      "\n\n\n".join(parts), ""])


P_SPECIALISED = 4  # up to this many fixed effects the kernels are compiled for p (seconds)


def pls_kernels(q: int, p: int):
    """(criterion_terms, gradient_terms, group_least_squares, blup_terms, criterion_many)
    for q random-effect columns and p fixed effects, compiled once a process: for p up
    to P_SPECIALISED the loops over the fixed effects get a constant length, which LLVM
    unrolls (1.2x to 1.4x faster than the loops at q = 2, p = 3, J = 1e4); beyond, one kernel per
    q for every p (no compile per shape)."""
    module = _kernels(q, p if p <= P_SPECIALISED else None)
    return (module.criterion_terms, module.gradient_terms, module.group_least_squares, module.blup_terms,
            module.criterion_many)


BLAS_P = 32  # from this many fixed effects the p-sized sums are left to BLAS (objective.py)


def blocks_kernels(q: int):
    """(criterion_blocks, gradient_blocks) for q random-effect columns and any p: the
    kernels without the O(J q p^2) sums over groups, which BLAS forms from the stored
    blocks (the same flops at BLAS speed)."""
    module = _kernels(q, None)
    return module.criterion_blocks, module.gradient_blocks


@functools.lru_cache(maxsize=None)
def _kernels(q: int, p: int | None):
    """The compiled module of :func:`pls_source` (once a process)."""
    return compiled(pls_source(q, p), "pls")
