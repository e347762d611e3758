"""Linear mixed models with one grouping factor: y_j = X_j beta + Z_j b_j + eps_j.

Four stages, each callable alone (as lme4's modular fit): :mod:`.formula` turns a
formula and a data frame into arrays; :mod:`.crossprod` reduces them to per-group
cross-products in one pass; :mod:`.objective` and :mod:`.optimise` find theta_hat from
those alone; :mod:`.result` packages estimates in lme4's terms.
"""

from .crossprod import CrossProducts, cross_products

__all__ = ["CrossProducts", "cross_products"]
