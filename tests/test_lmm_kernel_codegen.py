"""The numba backend of the code generator (shrinkage.matrix.codegen_numba) and the kernel
formulas it writes from the derivations (shrinkage.lmm.derived): the generated lines
compute what dense numpy computes from the same definitions, every block names the step
it comes from, the backend refuses what it cannot write, and the kept source is used
without SymPy.  The compiled kernels against dense matrices: test_lmm_objective.py,
test_lmm_kernels.py (a corrupted derivation changes the kernel)."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp

from shrinkage.errors import DerivationError
from shrinkage.lmm import derived, pls_kernels
from shrinkage.matrix import codegen_numba as gen
from shrinkage.matrix.nodes import mtimes
from shrinkage.matrix.notation import Lambda_theta, ZtX, ZtZ, Zty, beta


def _run(lines, values: dict) -> dict:
    """Execute generated lines (straight-line Python) with ``values``; the locals after."""
    scope = {"math": math, **values}
    exec("\n".join(lines), {}, scope)
    return scope


def _group(rng, q: int, p: int):
    """One group's Z'Z, Z'X, Z'y from random data, and a lower-triangular Lambda."""
    n = q + 3
    Z, X, y = rng.normal(size=(n, q)), rng.normal(size=(n, p)), rng.normal(size=n)
    lam = np.tril(rng.normal(size=(q, q)))
    return Z.T @ Z, Z.T @ X, Z.T @ y, lam


def _values(q, ZtZ_, ZtX_, Zty_, lam, beta_):
    out = {f"z{a}_{c}": ZtZ_[a, c] for a in range(q) for c in range(q)}
    out.update({f"l{a}_{c}": lam[a, c] for a in range(q) for c in range(q)})
    out.update({f"ty{a}": Zty_[a] for a in range(q)})
    out.update({f"xb{a}": (ZtX_ @ beta_)[a] for a in range(q)})
    return out


def _factored(f, q, values):
    """M_j's lines, its Cholesky factor, N = L^-1 and C = M_j^-1, run."""
    lines = f.m + gen.cholesky_lines(q, "S", "raise ValueError") + gen.triangular_inverse_lines(q) + f.inverse
    return _run(lines, values)


@pytest.mark.parametrize("q", [1, 2, 3, 4])
def test_generated_lines_compute_the_dense_formulas(rng, q):
    """At random data: M_j, |M_j|, Y_j = F [Z'X | Z'y] (F'F = Lambda M_j^-1 Lambda'), the
    gradient's terms, W_j, the BLUP and condVar, the group's least squares, as numpy
    computes them from the formulas of lmm_profile, lmm_gradient, lmm_blup (written here
    by hand, independently of the generator)."""
    p = 3
    ZtZ_, ZtX_, Zty_, lam = _group(rng, q, p)
    beta_, sigma2_ = rng.normal(size=p), 0.7
    f = derived.formulas(q)
    s = _factored(f, q, _values(q, ZtZ_, ZtX_, Zty_, lam, beta_))
    M = lam.T @ ZtZ_ @ lam + np.eye(q)
    Minv = np.linalg.inv(M)
    np.testing.assert_allclose([[s[f"S{max(a, c)}_{min(a, c)}"] for c in range(q)] for a in range(q)], M, rtol=1e-12)
    np.testing.assert_allclose(_run(f.det, s)["det"], np.linalg.det(M), rtol=1e-10)
    F = np.array([[_run(f.factor, s)[f"F{a}_{c}"] for c in range(q)] for a in range(q)])
    np.testing.assert_allclose(F.T @ F, lam @ Minv @ lam.T, rtol=1e-9, atol=1e-12)
    r = Zty_ - ZtX_ @ beta_
    g = _run(f.gradient, {**s, **{f"d{a}_{c}": 0.0 for a in range(q) for c in range(q)},
                          **{f"e{a}_{c}": 0.0 for a in range(q) for c in range(q)}})
    u = Minv @ lam.T @ r
    Zte = r - ZtZ_ @ lam @ u
    np.testing.assert_allclose([g[f"u{a}"] for a in range(q)], u, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose([[f.scales[0] * g[f"d{a}_{c}"] for c in range(q)] for a in range(q)],
                               2 * ZtZ_ @ lam @ Minv, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose([[f.scales[1] * g[f"e{a}_{c}"] for c in range(q)] for a in range(q)],
                               -2 * np.outer(Zte, u), rtol=1e-9, atol=1e-12)
    assert f.scales[2] == -2.0
    B = np.array([[_run(f.w_operator, s)[f"B{a}_{c}"] for c in range(q)] for a in range(q)])
    np.testing.assert_allclose(B @ ZtX_, ZtX_ - ZtZ_ @ lam @ Minv @ lam.T @ ZtX_, rtol=1e-9, atol=1e-12)
    b = _run(f.blup, {**s, "sigma2": sigma2_})
    np.testing.assert_allclose([b[f"b{a}"] for a in range(q)], lam @ u, rtol=1e-9, atol=1e-12)
    cond = sigma2_ * lam @ Minv @ lam.T
    np.testing.assert_allclose([b[f"k{a}_{c}"] for a in range(q) for c in range(a + 1)],
                               [cond[a, c] for a in range(q) for c in range(a + 1)], rtol=1e-9, atol=1e-12)
    own = _run(gen.cholesky_lines(q, "z", "raise ValueError") + gen.triangular_inverse_lines(q) + f.inverse
               + f.least_squares, _values(q, ZtZ_, ZtX_, Zty_, lam, beta_))
    np.testing.assert_allclose([own[f"u{a}"] for a in range(q)], np.linalg.solve(ZtZ_, r), rtol=1e-9)


def test_every_block_names_the_step_it_comes_from():
    """Every formula block of the kernels' source starts with '# derivation NAME, step K
    (LABEL)', K the step's number in the derivation; every kernel holds such a comment."""
    source = pls_kernels.generated(2, None)
    found = re.findall(r"derivation (lmm_\w+), step (\d+) \(([^)]*)\)", source)
    assert {label for _, _, label in found} >= {
        "definition of M_j", "r2_theta", "logdet_L", "definition of u_hat_j", "d_logdet_L", "d_r2",
        "definition of W_j", "blup_theta", "condvar_theta", "definition of b_ls_j"}
    ds = derived.derivations()
    for name, number, label in found:
        step = ds[name].steps[int(number) - 1]
        assert label in (step.label, f"definition of {getattr(step, 'symbol', None)}")
    for kernel in source.split("@njit")[1:]:
        assert "# derivation lmm_" in kernel, kernel.splitlines()[1]


def test_the_backend_refuses_what_it_cannot_write():
    """An unbound symbol, an inverse of a matrix that is not factored, a formula that is
    not linear in the columns it is applied to, a step that is not a sum over groups: each
    a DerivationError, not wrong code."""
    q = 2
    z, l, x = gen.entries("z", q, symmetric=True), gen.entries("l", q, lower=True), gen.vector("x", q)
    ex = gen.Explicit({ZtZ: z, Lambda_theta: l}, sizes={})
    with pytest.raises(DerivationError, match="no value for Zty_j"):
        ex(mtimes(ZtZ, Zty))
    with pytest.raises(DerivationError, match="inverts only factored"):
        ex(sp.Inverse(ZtZ))
    square = gen.Explicit({ZtZ: z, ZtX: x})(mtimes(ZtZ, ZtX)).applyfunc(lambda e: e * e)
    with pytest.raises(DerivationError, match="not linear"):
        gen.operator(square, x)
    with pytest.raises(DerivationError, match="not a scalar times one sum"):
        gen.group_sum(mtimes(ZtZ, Lambda_theta))
    with pytest.raises(DerivationError, match="no value for beta"):  # Z'X beta: a loop over p, bound as a product
        gen.Explicit({ZtZ: z, ZtX: x})(mtimes(ZtX, beta))


def test_the_kept_source_is_used_without_sympy(tmp_path):
    """Once written for (q, p) (keyed by the files it comes from), the source is read back:
    a fresh process compiles the kernels without importing SymPy."""
    env = {**os.environ, "SHRINKAGE_CACHE_DIR": str(tmp_path)}
    code = ("import sys\nfrom shrinkage.lmm import pls_kernels\npls_kernels.pls_source(2, 3)\n"
            "print('sympy' in sys.modules)\n")
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    again = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert first.stdout.split() == ["True"] and again.stdout.split() == ["False"]
    assert len(list((tmp_path / "kernels").glob("plsgen_*_2_3.py"))) == 1


def test_the_criteria_and_the_gradients_combination_are_the_steps():
    """The generated scalar functions are lme4's formulas (Bates et al. 2015, eqs. 34, 41,
    written here by hand) and the gradients' combination of the gradient steps' values
    (d_logdet_L + d_logdet_RX + (N - p)/r^2 d_r2, N/r^2 for ML)."""
    scope = {"math": math}
    exec(derived.criteria_source(), scope)
    ld, la, r2, N, p = 3.5, 1.25, 42.0, 30, 4
    assert scope["ml_deviance"](ld, r2, N) == pytest.approx(ld + N * (1 + math.log(2 * math.pi * r2 / N)), rel=1e-15)
    assert scope["reml_criterion"](ld, la, r2, N, p) == pytest.approx(
        ld + la + (N - p) * (1 + math.log(2 * math.pi * r2 / (N - p))), rel=1e-15)
    assert scope["sigma2_reml"](r2, N, p) == r2 / (N - p) and scope["sigma2_ml"](r2, N) == r2 / N
    a, b, c = np.array([1.0, 2.0]), np.array([-3.0, 0.5]), np.array([0.25, 4.0])
    np.testing.assert_allclose(scope["ml_gradient"](a, b, r2, N, p), a + N / r2 * b, rtol=1e-15)
    np.testing.assert_allclose(scope["reml_gradient"](a, b, c, r2, N, p), a + c + (N - p) / r2 * b, rtol=1e-15)
