"""The crossed derivation (derivations/lmm_crossed.py): checked on crossed designs, wrong
steps rejected, and its generated functions against the blocked fit's pieces
(shrinkage.lmm.blocked: prepare, evaluate, deviance, solution, condvar) and against dense
computations written from the model alone: V = sigma^2 (I + Z Lambda Lambda' Z'), GLS,
E(b | y) = Lambda Lambda' Z' V0^-1 (y - X beta), Var(b | y) = sigma^2 Lambda (Lambda'Z'Z Lambda + I)^-1 Lambda'.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from scipy.linalg import block_diag

from shrinkage.codegen import generate
from shrinkage.lmm import blocked
from test_lmm_derivations import _with_step, first_rejection, load


@pytest.fixture(scope="module")
def crossed_checked(session_cache):
    """lmm_crossed checked alone (with lmm_blup, which it cites), through the session's cache."""
    from conftest import DERIVATIONS
    from shrinkage.build import check_all, load_sources

    found = check_all(load_sources([DERIVATIONS / "lmm_crossed.py"]), say=lambda _: None, cache=session_cache, jobs=1)
    return {cd.derivation.name: cd for cd in found}["lmm_crossed"]


@pytest.fixture(scope="module")
def gen(crossed_checked):
    source = generate([crossed_checked])
    namespace: dict = {}
    exec(compile(source.replace("from ._validation import require", "from shrinkage._validation import require"),
                 "<generated lmm_crossed>", "exec"), namespace)
    return namespace


def test_every_claim_is_checked_on_crossed_designs(crossed_checked):
    claims = [s for s in crossed_checked.steps if s.verdict.symbolic != "n/a"]
    assert len(claims) >= 20
    for s in claims:
        assert s.verdict.points == 12 and "random crossed designs" in s.verdict.method, (s.number, s.verdict.method)
    proved = [s for s in claims if s.verdict.symbolic is True]
    assert {s.step.kind for s in proved} == {"maximiser"}  # the maximisers in sigma^2, by SymPy


@pytest.mark.parametrize("case", ["downdate_no_weights", "logdet_no_schur", "condvar_known_rest", "backfit_no_offset",
                                  "one_way_no_n", "henderson_no_identity"])
def test_a_wrong_step_is_rejected_and_named(case):
    mod = load("lmm_crossed")
    d = mod.derivation()
    mt, tr = mod.mtimes, mod.tr
    if case == "downdate_no_weights":  # T_1 T_1' for T_1 M_j^-1 T_1': the first block taken as identity
        wrong = mod.GroupMatSum(mt(tr(mod.ZtR), mod.Lambda_theta, tr(mod.Lambda_theta), mod.ZtR))
        d, number = _with_step(d, "downdate", rhs=wrong)
    elif case == "logdet_no_schur":  # log det M as the first block's alone
        d, number = _with_step(d, "logdet_blocked", rhs=mod.GroupSum(mod.logdet(mod.M_j)))
    elif case == "condvar_known_rest":  # the one-factor covariance: the other terms' uncertainty left out
        d, number = _with_step(d, "condvar_first", rhs=mt(mod.sigma2, mod.W1))
    elif case == "backfit_no_offset":  # the first term's BLUP from the raw data, not the adjusted
        d, number = _with_step(d, "backfit", rhs=mt(mod.W1, mod.ols(mod.beta)))
    elif case == "one_way_no_n":  # the one-way factor without n_j
        lam = mod.frac(mod.sigma2_a, mod.terms(mod.sigma2_a, mod.sigma2))
        d, number = _with_step(d, "backfit_one_way", rhs=mod.times(lam, d.step("backfit_one_way").rhs.args[1]))
    else:  # Henderson's matrix without the identity of the prior
        step = d.step("henderson")
        H = step.precision.args[1]
        wrong = sp.BlockMatrix([[mt(mod.LZ, mod.Zc, mod.Lc), H.blocks[0, 1]], [H.blocks[1, 0], H.blocks[1, 1]]])
        d, number = _with_step(d, "henderson", rhs=mt(sp.Inverse(wrong), step.rhs.args[1]))
    err = first_rejection(d, number)
    assert err is not None, f"{case}: the corrupted step {number} was accepted"
    assert f"step {number} " in str(err) and "lmm_crossed" in str(err)


# --- random crossed designs, dense ------------------------------------------------------
def design(seed: int, q1: int = 1, others=((1,),)):
    """A crossed design: the first factor (J levels, q1 columns), the other terms (one per
    entry of ``others``: its q_k), unbalanced, every level present; X = [1, x]."""
    rng = np.random.default_rng(seed)
    N = int(rng.integers(30, 60))
    x = rng.uniform(-2, 2, N)
    codes, Zs = [], []
    for qk in (q1,) + tuple(o[0] for o in others):
        J = int(rng.integers(3, 7))
        c = rng.integers(0, J, N)
        c[:J] = np.arange(J)
        codes.append(c)
        Zs.append(np.column_stack([np.ones(N), x][:qk] if qk <= 2 else [np.ones(N), x, x ** 2]))
    X = np.column_stack([np.ones(N), x])
    y = 1 + 0.5 * x + rng.normal(size=N) * 2
    for c, Z in zip(codes, Zs):
        y += (rng.normal(size=(c.max() + 1, Z.shape[1]))[c] * Z).sum(axis=1)
    Ts = []
    for Z in Zs:
        T = np.tril(rng.normal(size=(Z.shape[1],) * 2) * 0.3)
        np.fill_diagonal(T, np.exp(rng.normal(size=Z.shape[1]) * 0.5))
        Ts.append(T)
    return codes, Zs, X, y, Ts


def dense_Z(c, Z):
    out = np.zeros((len(c), (c.max() + 1) * Z.shape[1]))
    for k in range(Z.shape[1]):
        out[np.arange(len(c)), c * Z.shape[1] + k] = Z[:, k]
    return out


def pieces(codes, Zs, X, y, Ts):
    """The arguments of the generated functions, from dense matrices: the first factor's
    levels are the groups j; the other terms stacked into Z_r."""
    Za = dense_Z(codes[0], Zs[0])
    Zr = np.hstack([dense_Z(c, Z) for c, Z in zip(codes[1:], Zs[1:])])
    J, q = codes[0].max() + 1, Zs[0].shape[1]
    rows = [codes[0] == j for j in range(J)]
    Z1 = [Zs[0][r] for r in rows]
    a = dict(ZtZ=np.array([Z.T @ Z for Z in Z1]), ZtX=np.array([Z.T @ X[r] for Z, r in zip(Z1, rows)]),
             Zty=np.array([Z.T @ y[r] for Z, r in zip(Z1, rows)]), ZtR=np.array([Z.T @ Zr[r] for Z, r in zip(Z1, rows)]),
             XtX=np.array([X[r].T @ X[r] for r in rows]), Xty=np.array([X[r].T @ y[r] for r in rows]),
             yty=np.array([y[r] @ y[r] for r in rows]), n=np.array([r.sum() for r in rows], dtype=float),
             RtR=Zr.T @ Zr, RtX=Zr.T @ X, Rty=Zr.T @ y)
    lam_r = block_diag(*[np.kron(np.eye(c.max() + 1), T) for c, T in zip(codes[1:], Ts[1:])])
    Lam = block_diag(np.kron(np.eye(J), Ts[0]), lam_r)
    return a, Za, Zr, lam_r, Lam, (J, q)


def dense_fit(Za, Zr, Lam, X, y):
    """GLS and the criterion pieces from V0 = I + Z Lambda Lambda' Z' (V = sigma^2 V0)."""
    Z = np.hstack([Za, Zr])
    N, p = X.shape
    V0 = np.eye(N) + Z @ Lam @ Lam.T @ Z.T
    A = X.T @ np.linalg.solve(V0, X)
    beta = np.linalg.solve(A, X.T @ np.linalg.solve(V0, y))
    e = y - X @ beta
    r2 = e @ np.linalg.solve(V0, e)
    logdet = np.linalg.slogdet(V0)[1]  # = log det(Lambda'Z'Z Lambda + I) (Sylvester)
    ml = logdet + N * (1 + np.log(2 * np.pi * r2 / N))
    reml = logdet + np.linalg.slogdet(A)[1] + (N - p) * (1 + np.log(2 * np.pi * r2 / (N - p)))
    b = Lam @ Lam.T @ Z.T @ np.linalg.solve(V0, e)
    cov = Lam @ np.linalg.solve(Lam.T @ Z.T @ Z @ Lam + np.eye(Z.shape[1]), Lam.T)  # Var(b | y) / sigma^2
    return beta, A, r2, ml, reml, b, cov


CASES = [(0, 1, ((1,),)), (1, 2, ((1,),)), (2, 1, ((1,), (1,))), (3, 2, ((2,), (1,))), (4, 3, ((1,),)),
         (5, 1, ((2,),))]


@pytest.mark.parametrize("seed, q1, others", CASES)
def test_generated_functions_equal_the_blocked_fit_and_the_dense_model(gen, seed, q1, others):
    codes, Zs, X, y, Ts = design(seed, q1, others)
    a, Za, Zr, lam_r, Lam, (J, q) = pieces(codes, Zs, X, y, Ts)
    pr = blocked.prepare(codes, Zs, X, y)
    theta = np.concatenate([T[pr.layout.tri(k)] for k, T in enumerate(Ts)])
    pc = blocked.evaluate(theta, pr)
    beta, A, r2, ml, reml, b, cov = dense_fit(Za, Zr, Lam, X, y)
    T1 = Ts[0]
    # the first block, level by level, and its weights
    w = gen["crossed_first_weights"](a["ZtZ"], T1)
    np.testing.assert_allclose(w, T1 @ np.linalg.inv(pc.L1 @ np.transpose(pc.L1, (0, 2, 1))) @ T1.T, rtol=1e-10, atol=1e-13)
    # the downdate: of the other terms (dense), and of the whole rest [Z_r X y] as blocked forms it
    Lam_a = np.kron(np.eye(J), T1)
    M11 = Lam_a.T @ Za.T @ Za @ Lam_a + np.eye(J * q)
    Dn = gen["crossed_downdate"](a["ZtZ"], a["ZtR"], T1)
    np.testing.assert_allclose(Dn, Zr.T @ Za @ Lam_a @ np.linalg.solve(M11, Lam_a.T @ Za.T @ Zr), rtol=1e-10, atol=1e-11)
    C = pr.C.toarray().reshape(J, q, -1)
    lam_w = block_diag(lam_r, np.eye(X.shape[1] + 1))
    S_w = lam_w.T @ (pr.G - gen["crossed_downdate"](a["ZtZ"], C, T1)) @ lam_w
    S_w[np.arange(pr.m_r), np.arange(pr.m_r)] += 1
    np.testing.assert_allclose(S_w, pc.LW @ pc.LW.T, rtol=1e-10, atol=1e-10)
    # the criterion, beta, the BLUPs, the conditional variances
    S_r = lam_r.T @ (a["RtR"] - Dn) @ lam_r + np.eye(lam_r.shape[0])
    beta_b, bs, r2_b, XtVX_inv = blocked.solution(pc, pr)
    A_gen = gen["crossed_gls_precision"](a["XtX"], a["ZtX"], a["ZtZ"], a["ZtR"], a["RtX"], S_r, T1, lam_r)
    np.testing.assert_allclose(A_gen, A, rtol=1e-9)
    np.testing.assert_allclose(np.linalg.inv(XtVX_inv), A, rtol=1e-9)
    np.testing.assert_allclose(beta_b, beta, rtol=1e-9, atol=1e-10)
    rss = gen["crossed_penalised_rss"](a["yty"], a["Xty"], a["XtX"], a["Zty"], a["ZtX"], a["ZtZ"], a["ZtR"], a["Rty"],
                                       a["RtX"], beta, S_r, T1, lam_r)
    np.testing.assert_allclose([rss, r2_b], [r2, r2], rtol=1e-9)
    ml_gen = gen["crossed_ml_deviance"](a["n"], a["ZtZ"], T1, S_r, rss)
    reml_gen = gen["crossed_reml_criterion"](a["n"], a["ZtZ"], T1, S_r, A_gen, rss)
    np.testing.assert_allclose([ml_gen, blocked.deviance(theta, pr, "ML")], [ml, ml], rtol=1e-10)
    np.testing.assert_allclose([reml_gen, blocked.deviance(theta, pr, "REML")], [reml, reml], rtol=1e-10)
    b_r = gen["crossed_blup_rest"](a["ZtZ"], a["ZtX"], a["Zty"], a["ZtR"], a["Rty"], a["RtX"], beta, S_r, T1, lam_r)
    b_a = gen["crossed_blup_first"](a["ZtZ"], a["ZtX"], a["Zty"], a["ZtR"], beta, b_r, T1)
    np.testing.assert_allclose(np.concatenate([b_a.ravel(), b_r]), b, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(np.concatenate([x.ravel() for x in bs]), b, rtol=1e-8, atol=1e-10)
    cv = blocked.condvar(pc, pr)
    cv_a = gen["crossed_condvar_first"](a["ZtZ"], a["ZtR"], S_r, T1, lam_r, 1.0)
    cv_r = gen["crossed_condvar_rest"](S_r, lam_r, 1.0)
    dense_a = np.array([cov[j * q:(j + 1) * q, j * q:(j + 1) * q] for j in range(J)])
    np.testing.assert_allclose([cv_a, cv[0]], [dense_a, dense_a], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(cv_r, cov[J * q:, J * q:], rtol=1e-9, atol=1e-12)
    at = 0
    for k, c in enumerate(codes[1:], start=1):
        qk = Zs[k].shape[1]
        for level in range(c.max() + 1):
            block = slice(at + level * qk, at + (level + 1) * qk)
            np.testing.assert_allclose(cv[k][level], cv_r[block, block], rtol=1e-9, atol=1e-12)
        at += (c.max() + 1) * qk


def test_fill_in_two_levels_are_coupled_iff_they_share_a_level_of_the_first_factor(gen):
    """The downdate's pattern on a sparse crossed design (each level of a meets 1-3 levels
    of b): entry (k, l) is non-zero exactly where some level of a has rows in both."""
    rng = np.random.default_rng(11)
    Ja, Jb = 12, 9
    a = np.repeat(np.arange(Ja), 4)
    meets = [(j % Jb, (5 * j + 1) % Jb) for j in range(Ja)]  # the b-levels each level of a meets
    b = np.array([meets[j][k % 2] for k, j in enumerate(a)])
    ones = np.ones((a.size, 1))
    X = ones
    y = rng.normal(size=a.size)
    codes, Zs, Ts = [a, b], [ones, ones], [np.array([[0.8]]), np.array([[1.3]])]
    args, _, _, _, _, _ = pieces(codes, Zs, X, y, Ts)
    Dn = gen["crossed_downdate"](args["ZtZ"], args["ZtR"], Ts[0])
    incidence = np.zeros((Ja, Jb))
    np.add.at(incidence, (a, b), 1)
    shared = (incidence.T @ incidence) > 0
    assert not shared.all()  # the design is sparse enough for the claim to say something
    np.testing.assert_array_equal(np.abs(Dn) > 1e-12, shared)


def test_backfitting_reaches_the_blups(gen):
    """(1 | a) + (1 | b): the exported update, each factor in turn the first, from zero,
    converges to the blocked fit's BLUPs (the fixed point of the derivation's step)."""
    codes, Zs, X, y, Ts = design(21, 1, ((1,),))
    pr = blocked.prepare(codes, Zs, X, y)
    beta, bs, _, _ = blocked.solution(blocked.evaluate(np.array([Ts[0][0, 0], Ts[1][0, 0]]), pr), pr)
    fa, *_ = pieces(codes, Zs, X, y, Ts)
    fb, *_ = pieces(codes[::-1], Zs[::-1], X, y, Ts[::-1])
    b_a, b_b = np.zeros(codes[0].max() + 1), np.zeros(codes[1].max() + 1)
    for _ in range(500):
        b_a = gen["crossed_blup_first"](fa["ZtZ"], fa["ZtX"], fa["Zty"], fa["ZtR"], beta, b_b, Ts[0])[:, 0]
        b_b = gen["crossed_blup_first"](fb["ZtZ"], fb["ZtX"], fb["Zty"], fb["ZtR"], beta, b_a, Ts[1])[:, 0]
    np.testing.assert_allclose(b_a, bs[0][:, 0], rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(b_b, bs[1][:, 0], rtol=1e-9, atol=1e-11)


def effective_factor(a, b, s2a, s2b, s2, level):
    """d b_hat_a[level] / d delta when every response of that level moves by delta (beta
    known), from the dense BLUP (Z'Z/s2 + D^-1)^-1 Z'/s2: the level's effective shrinkage."""
    Z = np.hstack([dense_Z(a, np.ones((a.size, 1))), dense_Z(b, np.ones((b.size, 1)))])
    D_inv = np.diag(np.r_[np.full(a.max() + 1, 1 / s2a), np.full(b.max() + 1, 1 / s2b)])
    K = np.linalg.solve(Z.T @ Z / s2 + D_inv, Z.T / s2)
    return K[level, a == level].sum()


def test_a_level_is_shrunk_less_when_its_other_levels_are_well_known():
    """(1 | a) + (1 | b): level 0 of a (4 rows) meets b-levels 0 and 1.  Its effective factor
    is below the one-way lambda = s2a / (s2a + s2 / 4) (its own data also move the BLUPs of
    its b-levels) and rises to lambda as those b-levels are met by more levels of a (each of
    two rows, so that the b-levels' effects are told apart from the a-levels' mean)."""
    s2a, s2b, s2 = 1.0, 1.0, 1.0
    lam = s2a / (s2a + s2 / 4)
    gaps = []
    for others in (2, 10, 100, 1000):
        a = np.r_[np.zeros(4, int), np.repeat(np.arange(1, others + 1), 2)]
        b = np.r_[[0, 0, 1, 1], np.tile([0, 1], others)]
        gaps.append(lam - effective_factor(a, b, s2a, s2b, s2, 0))
    assert all(g > 0 for g in gaps)
    assert all(x > y for x, y in zip(gaps, gaps[1:]))
    assert gaps[-1] < 0.01 * gaps[0]  # about 1 / (levels of a): 0.155 at 2, 0.00096 at 1000


def test_a_balanced_design_shrinks_each_factor_by_its_one_way_factor(gen):
    """(1 | a) + (1 | b) balanced (every cell, r rows each), intercept at its GLS estimate (the
    grand mean): each b-level meets every a-level equally, so the other factor's BLUPs sum to
    zero over a's rows and the crossed BLUP is the one-way one, lambda = s2a / (s2a + s2 / (r J_b))
    times (ybar_a - ybar), whatever s2b."""
    rng = np.random.default_rng(5)
    Ja, Jb, r = 5, 4, 3
    a, b = np.repeat(np.arange(Ja), Jb * r), np.tile(np.repeat(np.arange(Jb), r), Ja)
    ones = np.ones((a.size, 1))
    y = rng.normal(size=Ja)[a] * 1.5 + rng.normal(size=Jb)[b] + rng.normal(size=a.size) + 3
    Ts = [np.array([[0.7]]), np.array([[1.9]])]  # s2a / s2 = 0.49, s2b / s2 = 3.61
    pr = blocked.prepare([a, b], [ones, ones], ones, y)
    beta, bs, _, _ = blocked.solution(blocked.evaluate(np.array([0.7, 1.9]), pr), pr)
    np.testing.assert_allclose(beta, [y.mean()], rtol=1e-12)
    fa, *_ = pieces([a, b], [ones, ones], ones, y, Ts)
    b_a = gen["crossed_blup_first"](fa["ZtZ"], fa["ZtX"], fa["Zty"], fa["ZtR"], beta, bs[1][:, 0], Ts[0])[:, 0]
    lam = 0.49 / (0.49 + 1 / (r * Jb))
    ybar_a = np.array([y[a == j].mean() for j in range(Ja)])
    np.testing.assert_allclose([b_a, bs[0][:, 0]], [lam * (ybar_a - y.mean())] * 2, rtol=1e-10)
