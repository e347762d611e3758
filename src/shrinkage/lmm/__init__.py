"""Linear mixed models: with one grouping factor y_j = X_j beta + Z_j b_j + eps_j.

Four stages, each callable alone (as lme4's modular fit): :mod:`.formula` turns a
formula and a data frame into columns; :mod:`.crossprod` reduces them to per-group
cross-products in one pass (:class:`CrossProducts`, mergeable across chunks);
:mod:`.objective` (the profiled criterion in theta, its gradient, BLUPs, conditional
covariances, as small pure functions) and :mod:`.optimise` find theta_hat from those
alone; :mod:`.result` packages the estimates in lme4's terms (:class:`LmmResult`), with
:mod:`.summary` and :mod:`.inference` (profile intervals).  The fit runs in centred
random-effect columns and reports the user's (:mod:`.centring`: the same likelihood).

Several grouping factors (crossed ``(1 | a) + (1 | b)``, nested ``(1 | a/b)``, ``(1 | a:b)``)
take their own route from the parse's list of terms: :mod:`.terms` codes them,
:mod:`.blocked` is the profiled criterion by a blocked Cholesky (MixedModels.jl's layout),
:mod:`.blocked_optimise` its global minimum, :mod:`.blocked_fit` the fit and
:mod:`.several_result` the answer (:class:`~.several_result.SeveralResult`).

``shrinkage.fit("y ~ x + (x | g)", data=df)`` calls :func:`lmer`; statistics built
elsewhere (out of core) go to :func:`fit_cross_products`.  Imported lazily: loading
``shrinkage`` does not load pandas, formulaic or scipy.
"""

from .crossprod import CrossProducts, cross_products
from .fit import fit_cross_products, lmer
from .objective import (Layout, beta_hat, blup, conditional_cov, deviance, gradient, prepare, profiled_ml,
                        profiled_reml, sigma2_hat)
from .result import LmmResult

__all__ = ["CrossProducts", "cross_products", "lmer", "fit_cross_products", "LmmResult", "Layout", "prepare",
           "deviance", "gradient", "profiled_ml", "profiled_reml", "beta_hat", "sigma2_hat", "blup",
           "conditional_cov"]
