"""The compiled kernels of shrinkage.lmm (kernels.py, pls_kernels.py): the row pass
gives bit for bit the per-group sums np.bincount gives; a wrong generated kernel is
caught by the dense comparison; a bad group code is named with its row; and where the
cache folder cannot be written the kernels still compile (in memory) and write nothing.
The criterion kernels are checked against dense matrices for q = 1..4 in
test_lmm_objective.py."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest
import sympy as sp

from shrinkage.errors import InputError
from shrinkage.lmm import kernels, pls_kernels
from shrinkage.lmm.crossprod import cross_products
from shrinkage.lmm.objective import Layout, deviance

from test_lmm_objective import dense, random_data


def _frozen(a):
    a = a.view()
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("S", [(0,), (0, 1), (0, 2), (0, 1, 3), (1, 2)])
def test_row_pass_is_the_bincounts_bit_for_bit(rng, S):
    """out[j, b*|S| + s] = sum over the group's rows of v[S[s]] v[b], as np.bincount adds
    the same products (a product of two columns of S added once, its twin entry copied
    by the move kernel, which with delta = 0 changes nothing else, or here when the
    constant is not in S); the rest pairs against math.fsum."""
    N, J, k = 5000, 37, 5
    codes = rng.integers(0, J, size=N)
    cols = [rng.normal(size=N) * 4 + 100 for _ in range(k - 1)]
    means = np.array([0.0] + [c.mean() for c in cols])
    rest = tuple((a, b) for a in range(1, k) for b in range(a, k) if a not in S and b not in S)
    out, dots = np.zeros((J, k * len(S))), np.zeros(len(rest))
    kernel = kernels.row_kernel(k, S, rest)
    assert kernel(_frozen(codes), tuple(_frozen(c) for c in cols), means, 0, N, out, dots) == -1
    twins = {b * len(S) + s: kernels.twin(S, b, s) for b in range(k) for s in range(len(S))
             if kernels.twin(S, b, s) is not None}
    assert not out[:, list(twins)].any()  # left for the move kernel
    if 0 in S:  # (as cross_products has it)
        kernels.move_kernel(k, S)(out, np.zeros(k))
    else:
        for e, t in twins.items():
            out[:, e] = out[:, t]
    v = [np.ones(N)] + [c - m for c, m in zip(cols, means[1:])]
    for b in range(k):
        for s, a in enumerate(S):
            weights = None if a == b == 0 else v[b] if a == 0 else v[a] if b == 0 else v[a] * v[b]
            want = np.bincount(codes, weights=weights, minlength=J).astype(float)
            assert np.array_equal(out[:, b * len(S) + s], want), (a, b)
    for (a, b), got in zip(rest, dots):
        assert got == pytest.approx(math.fsum(v[a] * v[b]), rel=1e-13)


def test_sums_over_all_rows_are_blocked(rng):
    """The pairs no group needs are summed over the whole chunk in blocks of 256 rows:
    an order of magnitude closer to the exact sum than one running sum at 2^16 rows
    (6e-16 against 1e-14 here; the running sum is rejected)."""
    N = 1 << 16
    cols = tuple(_frozen(rng.normal(size=N) * 4 + 100) for _ in range(2))
    means = np.array([0.0] + [float(c.mean()) for c in cols])
    codes = _frozen(np.zeros(N, dtype=np.intp))
    v = [c - m for c, m in zip(cols, means[1:])]
    exact = [math.fsum(v[0] * v[0]), math.fsum(v[0] * v[1]), math.fsum(v[1] * v[1])]
    source = kernels.row_source(3, (0,), ((1, 1), (1, 2), (2, 2)))
    running = re.sub(r"        if \(i & 255\) == 255:\n(            .*\n)+", "", source) + "# one running sum\n"
    assert running != source
    errors = []
    for text in (source, running):
        out, dots = np.zeros((1, 3)), np.zeros(3)
        kernels.compiled(text, "rows").group_products(codes, cols, means, 0, N, out, dots)
        errors.append(max(abs(d - e) / abs(e) for d, e in zip(dots, exact)))
    assert errors[0] < 6e-15 < errors[1]


def test_a_wrong_row_kernel_is_caught():
    """The comparison above fails for a kernel that forgets the centring of one column."""
    source = kernels.row_source(3, (0, 1), ((2, 2),)).replace("v2 = c2[i] - m2", "v2 = c2[i]")
    kernel = kernels.compiled(source, "rows").group_products
    N = 200
    codes = np.arange(N) % 4
    cols = (np.linspace(1, 2, N), np.linspace(5, 9, N))
    out, dots = np.zeros((4, 6)), np.zeros(1)
    kernel(_frozen(codes), tuple(_frozen(c) for c in cols), np.array([0.0, 1.5, 7.0]), 0, N, out, dots)
    want = np.bincount(codes, weights=cols[1] - 7.0, minlength=4)
    assert not np.allclose(out[:, 4], want)


def _replaced(d, changes: dict):
    """The derivation d with the steps' right-hand sides changed by xreplace(changes)."""
    return dataclasses.replace(d, steps=tuple(dataclasses.replace(s, rhs=s.rhs.xreplace(changes)) for s in d.steps))


@pytest.fixture
def corrupted(monkeypatch):
    """Kernels generated from corrupted derivations: a function of {name: derivation}."""
    from shrinkage.lmm import derived

    def use(changed: dict):
        monkeypatch.setattr(derived, "derivations", lambda: {**right, **changed})
        monkeypatch.setattr(pls_kernels, "pls_source", pls_kernels.generated)  # not the cached source
        derived.formulas.cache_clear()
        pls_kernels._kernels.cache_clear()

    right = derived.derivations()
    yield right, use
    monkeypatch.undo()
    derived.formulas.cache_clear()
    pls_kernels._kernels.cache_clear()


def _M_j(d):
    return next(s for s in d.steps if getattr(s, "symbol", None) is not None and s.symbol.name == "M_j")


def test_a_wrong_criterion_kernel_is_rejected_by_the_dense_comparison(rng, corrupted):
    """Generate the kernels from derivations whose M_j is Lambda'Z'Z Lambda + 1.5 I (in
    lmm_profile and lmm_blup alike): the kernel follows the derivation, and the dense
    marginal likelihood disagrees with it."""
    from shrinkage.matrix.nodes import Eye, mplus, mtimes
    from shrinkage.matrix.notation import q as q_size

    right, use = corrupted
    y, X, Z, codes, names = random_data(rng, q=2)
    cp = cross_products(y, X, Z, codes, np.arange(codes.max() + 1), names, names[:2])
    theta = np.array([0.8, 0.1, 0.3])
    want = dense(theta, y, X, Z, codes, Layout.of((2,)), "REML")[0]
    assert deviance(theta, cp, "REML") == pytest.approx(want, rel=1e-11)
    M = _M_j(right["lmm_profile"]).rhs
    wrong = {M: mplus(M, mtimes(sp.Rational(1, 2), Eye(q_size)))}
    use({name: _replaced(right[name], wrong) for name in ("lmm_profile", "lmm_blup")})
    assert "+ 3/2" in pls_kernels.pls_source(2, 3)
    assert deviance(theta, cp, "REML") != pytest.approx(want, rel=1e-6)


def test_two_different_M_j_stop_the_generator(corrupted):
    """lmm_profile's M_j changed but not lmm_blup's: the BLUP's inverse is no longer of the
    factored M_j, and the generator refuses rather than invert something else."""
    from shrinkage.errors import DerivationError
    from shrinkage.matrix.nodes import Eye, mplus, mtimes
    from shrinkage.matrix.notation import q as q_size

    right, use = corrupted
    M = _M_j(right["lmm_profile"]).rhs
    use({"lmm_profile": _replaced(right["lmm_profile"], {M: mplus(M, mtimes(2, Eye(q_size)))})})
    with pytest.raises(DerivationError, match="inverts only factored matrices"):
        pls_kernels.pls_source(2, 3)


def test_a_wrong_gradient_step_gives_a_gradient_that_is_not_the_slope(rng, corrupted):
    """d_r2's number -2 made -3 in lmm_gradient: the generated kernel's gradient leaves the
    deviance's central differences (which the right one matches to 1e-6)."""
    from shrinkage.lmm.objective import gradient

    right, use = corrupted
    y, X, Z, codes, names = random_data(rng, q=2)
    cp = cross_products(y, X, Z, codes, np.arange(codes.max() + 1), names, names[:2])
    theta, h = np.array([0.8, 0.1, 0.3]), 1e-6

    def slope():
        return np.array([(deviance(theta + h * e, cp, "ML") - deviance(theta - h * e, cp, "ML")) / (2 * h)
                         for e in np.eye(3)])

    want = slope()
    np.testing.assert_allclose(gradient(theta, cp, "ML"), want, rtol=1e-5, atol=1e-6)
    grad = right["lmm_gradient"]
    k = grad.step_index("d_r2")
    steps = list(grad.steps)
    steps[k] = dataclasses.replace(steps[k], rhs=steps[k].rhs * sp.Rational(3, 2))
    use({"lmm_gradient": dataclasses.replace(grad, steps=tuple(steps))})
    assert not np.allclose(gradient(theta, cp, "ML"), want, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("bad", [-1, 9])
def test_a_group_code_outside_the_groups_is_named_with_its_row(bad):
    N = 300_000  # several chunks: the error comes from a worker thread
    codes = np.arange(N) % 9
    codes[200_001] = bad
    x, y = np.linspace(0, 1, N), np.linspace(2, 3, N) ** 2
    with pytest.raises(InputError, match=rf"group code {bad} at row 200001 is outside 0\.\.8"):
        cross_products(y, [None, x], [None, x], codes, np.arange(9), ["(Intercept)", "x"], ["(Intercept)", "x"])


def test_kernels_compile_where_the_cache_folder_cannot_be_written(tmp_path, monkeypatch):
    """A cache 'folder' that is a file: the kernel is compiled in memory, nothing is
    written, and it computes what the cached one does."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("SHRINKAGE_CACHE_DIR", str(blocker))
    source = kernels.row_source(2, (0,), ((1, 1),)) + "# compiled in memory\n"
    kernel = kernels.compiled(source, "rows").group_products
    codes, x = np.array([0, 1, 1, 0]), np.array([1.0, 2.0, 4.0, 8.0])
    out, dots = np.zeros((2, 2)), np.zeros(1)
    assert kernel(_frozen(codes), (_frozen(x),), np.array([0.0, 3.0]), 0, 4, out, dots) == -1
    np.testing.assert_array_equal(out, [[2.0, 3.0], [2.0, 0.0]])
    assert dots[0] == 4 + 1 + 1 + 25
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-folder"]


def test_group_least_squares_is_each_groups_own_solve(rng):
    """The moment start's kernel: b_j = (Z_j'Z_j)^-1 Z_j'(y_j - X_j beta) for the groups
    with n_j > q and a well-conditioned Z_j'Z_j, against numpy's solve group by group."""
    from shrinkage.lmm.objective import prepare

    codes = np.repeat(np.arange(30), rng.integers(2, 15, size=30))
    N = codes.size
    X = np.column_stack([np.ones(N), rng.normal(size=(N, 3))])
    X[codes == 4, 2] = 0.0  # a group whose Z_j'Z_j is singular: left out
    Z, y, names = X[:, :3], rng.normal(size=N) + X @ [1.0, 2.0, -1.0, 0.5], ["c0", "c1", "c2", "c3"]
    cp = cross_products(y, X, Z, codes, np.arange(30), names, names[:3], centre=False)
    pr = prepare(cp)
    beta = rng.normal(size=pr.p)
    ok, b, inv_sum, b_sum, bb_sum = (np.empty(30, dtype=np.bool_), np.empty((30, 3)), np.empty((3, 3)),
                                     np.empty(3), np.empty((3, 3)))
    fitted = pls_kernels.pls_kernels(3, pr.p)[2](pr.ZtZ_g, pr.ZtXy_g, beta, cp.n, ok, b, inv_sum, b_sum, bb_sum)
    def conditioned(j):  # the kernel's rule: n_j > q and |Z_j'Z_j| > 1e-10 max|Z_j'Z_j|^q
        Zj = Z[codes == j]
        return Zj.shape[0] > 3 and np.linalg.det(Zj.T @ Zj) > 1e-10 * np.abs(Zj.T @ Zj).max() ** 3

    want_ok = [conditioned(j) for j in range(30)]
    assert not want_ok[4] and sum(want_ok) >= 20
    np.testing.assert_array_equal(ok, want_ok)
    total_inv, total_fit = np.zeros((3, 3)), 0.0
    for j in np.flatnonzero(want_ok):
        Zj, rj = Z[codes == j], (y - X @ beta)[codes == j]
        np.testing.assert_allclose(b[j], np.linalg.solve(Zj.T @ Zj, Zj.T @ rj), rtol=1e-8, atol=1e-10)
        total_inv += np.linalg.inv(Zj.T @ Zj)
        total_fit += (Zj.T @ rj) @ np.linalg.solve(Zj.T @ Zj, Zj.T @ rj)
    np.testing.assert_allclose(inv_sum, total_inv, rtol=1e-8)
    assert fitted == pytest.approx(total_fit, rel=1e-9)
    np.testing.assert_allclose(b_sum, b[ok].sum(axis=0), rtol=1e-12)  # the covariance's sums
    np.testing.assert_allclose(bb_sum, b[ok].T @ b[ok], rtol=1e-12)


def test_the_starts_swept_together_are_the_criterion_at_each(rng):
    """objective.deviances (criterion_many: every theta in one sweep over the groups) gives
    deviance's number at each theta, bit for bit, and inf where it cannot be evaluated;
    a sweep that shares one theta's Cholesky factor between two thetas is caught."""
    from shrinkage.lmm.objective import deviances, prepare

    y, X, Z, codes, names = random_data(rng, J=9, q=2)
    cp = cross_products(y, X, Z, codes, np.arange(9), names, names[:2])
    pr = prepare(cp, Layout.of((2,)))
    thetas = [rng.normal(size=3) * [1, 1, 1] + [1, 0, 1] for _ in range(5)] + [np.zeros(3)]
    for method in ("REML", "ML"):
        assert deviances(thetas, pr, method) == [deviance(t, pr, method) for t in thetas]
    lost = np.array([1e200, 0.0, 1e200])  # S_j overflows: not evaluable
    assert deviances([thetas[0], lost], pr) == [deviance(thetas[0], pr), np.inf]
    q, p = 2, pr.p
    lams = np.array([np.tril(np.ones((2, 2))) * s for s in (1.0, 2.0, 3.0)])

    def swept(criterion_many):
        G, logdet, bad = np.empty((3, p + 1, p + 1)), np.empty(3), np.empty(3, dtype=np.bool_)
        criterion_many(lams, pr.ZtZ_g, pr.ZtXy_g, G, logdet, bad)
        return G, logdet

    def one_at_a_time():
        criterion_terms = pls_kernels.pls_kernels(q, p)[0]
        out = [(np.empty((p + 1, p + 1)), 0.0) for _ in lams]
        for k, lam in enumerate(lams):
            G = out[k][0]
            out[k] = (G, criterion_terms(lam, pr.ZtZ_g, pr.ZtXy_g, np.empty((1, 2, 2)),
                                         np.empty((1, 2, p + 1)), G, False))
        return np.array([G for G, _ in out]), np.array([v for _, v in out])

    want = one_at_a_time()
    got = swept(pls_kernels.pls_kernels(q, p)[4])
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    source = pls_kernels.pls_source(q, p)
    skipping = source.replace("            if bad[t]:\n                continue\n",
                              "            if bad[t] or t > 1:\n                continue\n")  # theta 3 never added
    assert skipping != source
    broken = swept(kernels.compiled(skipping, "pls").criterion_many)
    assert not np.array_equal(broken[1], want[1])


def test_the_wide_pass_is_the_written_out_one(rng, monkeypatch):
    """Past kernels.UNROLL_MAX columns the pass loops over the columns (one compile for
    every shape) and sums A'A by BLAS: the same cross-products to rounding (the totals,
    hence the overall means the sums are moved to, are added in another order), the
    group sizes exactly; a bad group code is named as before."""
    N, J = 3000, 23
    codes = rng.integers(0, J, size=N)
    x1, x2, x3 = (rng.normal(size=N) * 3 + 50 for _ in range(3))
    y = x1 + rng.normal(size=N)
    X, Z = [None, x1, x2, x3, x1 * x2], [None, x2]
    names, znames = ["(Intercept)", "x1", "x2", "x3", "x1:x2"], ["(Intercept)", "x2"]
    want = cross_products(y, X, Z, codes, np.arange(J), names, znames)
    assert len(X) + 1 <= kernels.UNROLL_MAX + 1  # (k = 6 distinct columns: written out)
    monkeypatch.setattr(kernels, "UNROLL_MAX", 2)
    got = cross_products(y, X, Z, codes, np.arange(J), names, znames)
    assert np.array_equal(got.n, want.n)
    for name in ("XtZ", "ZtZ", "Zty", "XtX", "Xty", "yty", "x_centre", "z_centre", "y_centre"):
        scale = np.max(np.abs(getattr(want, name)))
        np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=0, atol=1e-13 * scale, err_msg=name)
    codes[2001] = J
    with pytest.raises(InputError, match=rf"group code {J} at row 2001 is outside 0\.\.{J - 1}"):
        cross_products(y, X, Z, codes, np.arange(J), names, znames)


def test_equal_columns_are_found_among_many_that_agree_at_both_ends():
    """A factor's 0/1 columns agree at both ends: past _Distinct.CROWD of them they are
    compared by digest, and an equal copy (other memory) is still found, as it is among
    a few; the same memory is found without a comparison."""
    from shrinkage.lmm.crossprod import _Distinct

    N = 200
    dummies = [np.zeros(N) for _ in range(30)]
    for k, d in enumerate(dummies):
        d[5 + k] = 1.0
    distinct = _Distinct()
    assert [distinct.locate(d) for d in dummies] == list(range(1, 31))
    assert distinct.locate(dummies[20].copy()) == 21  # found by digest (crowded)
    assert distinct.locate(dummies[3]) == 4
    assert distinct.locate(None) == 0 and distinct.locate(np.ones(N)) == 0
    few = _Distinct()
    x = np.linspace(0, 1, N)
    assert (few.locate(x), few.locate(x.copy()), few.locate(x[::-1].copy())) == (1, 1, 2)
    assert len(distinct.cols) == 30 and distinct.by_digest
