"""The fit in centred random-effect columns, reported in the user's own columns (lme4's).

Why: with a random slope on a covariate far from zero (Days + 1e4), the user's columns
z = (1, x) are nearly collinear, the intercept's variance is ~ c^2 times the slope's, and
the optimum in lme4's theta sits in a valley of width ~ 1/c: the optimiser stops short
and Lambda'Z_j'Z_j Lambda + I loses its digits.  Centred columns remove both.

The algebra.  Let i be Z's intercept column and c (q,) the centres, c_k = 0 for k = i and
for every column whose bar term does not contain i (centring those would change the
model: their covariance block would stop being separate).  The stored (centred) columns
are Z_c = Z - 1 c', and since Z's column i is 1,

    Z = Z_c T,   T = I + e_i c',   T^-1 = I - e_i c'   (c_i = 0, so (e_i c')^2 = 0),

T block-diagonal in the bar terms' blocks (unit upper-triangular when the intercept is
the block's first column).  Then Z b = Z_c (T b): the model in Z_c has random effects
b_c = T b ~ N(0, D_c), D_c = T D T' (the same block pattern), and the marginal
distribution of y, hence the likelihood, its maximum, sigma^2, beta (X is untouched) and
log-likelihood, is the same.  Back in the user's columns, exactly:

    D = T^-1 D_c T^-T,   Lambda Lambda' = T^-1 Lambda_c Lambda_c' T^-T,
    b_j = T^-1 b_c,j,    Var(b_j | y) = T^-1 Var(b_c,j | y) T^-T,   z'b = (T^-T z)'b_c,

and lme4's theta is the lower-triangular factor of T^-1 Lambda_c Lambda_c' T^-T with a
non-negative diagonal: from the QR factorisation of (T^-1 Lambda_c)' (exists at the
boundary too, where the product is singular), block by block.  A zero variance stays a
rank deficiency under T, so a boundary fit stays one.
numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .crossprod import CrossProducts

__all__ = ["Centring", "lower_factor"]


def lower_factor(B: np.ndarray, blocks) -> np.ndarray:
    """The lower-triangular L with a non-negative diagonal and L L' = B B', block by block
    (B block-diagonal): B' = Q R gives B B' = R'R."""
    q = B.shape[0]
    L = np.zeros((q, q))
    start = 0
    for size in blocks:
        s = slice(start, start + size)
        R = np.linalg.qr(B[s, s].T, mode="r")
        sign = np.where(np.diag(R) < 0, -1.0, 1.0)
        L[s, s] = (R * sign[:, None]).T
        start += size
    return L


@dataclass(frozen=True, eq=False)
class Centring:
    """Z = Z_c T for the centres ``c`` the fit uses (module docstring); identity when
    nothing is centred (then every map below returns its input unchanged)."""

    c: np.ndarray
    T: np.ndarray
    Tinv: np.ndarray
    blocks: tuple
    identity: bool

    @classmethod
    def of(cls, cp: CrossProducts, layout) -> "Centring":
        """The centres for the bar terms of ``layout``: the columns of the intercept's
        block about the statistics' own centres (their overall means; the mean computed
        from the statistics where they are raw), every other column at 0."""
        q, zi = cp.q, cp.z_intercept
        c = np.zeros(q)
        if zi is not None:
            start = 0
            for size in layout.blocks:
                if start <= zi < start + size:
                    for k in range(start, start + size):
                        if k != zi:
                            c[k] = cp.z_centre[k] if cp.z_centre[k] != 0 else cp.ZtZ[:, zi, k].sum() / cp.n_obs  # 1'Z_k / N
                start += size
        T, Tinv = np.eye(q), np.eye(q)
        if zi is not None:
            T[zi, :] += c
            Tinv[zi, :] -= c
        return cls(c, T, Tinv, tuple(layout.blocks), not np.any(c))

    def lam(self, lam_c: np.ndarray) -> np.ndarray:
        """lme4's Lambda for the user's columns from the centred fit's Lambda_c."""
        return lam_c if self.identity else lower_factor(self.Tinv @ lam_c, self.blocks)

    def lam_centred(self, lam: np.ndarray) -> np.ndarray:
        """Lambda_c (lower-triangular) for the centred columns from the user's Lambda."""
        return lam if self.identity else lower_factor(self.T @ lam, self.blocks)

    def rows(self, Z: np.ndarray) -> np.ndarray:
        """Rows z' of the user's Z as rows of Z_c: z_c' = z' T^-1."""
        return Z if self.identity else Z @ self.Tinv
