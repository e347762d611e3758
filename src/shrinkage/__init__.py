"""shrinkage: derive, prove, document and compute shrinkage in the random-intercept model.

Importing the package loads numpy only; SymPy is imported by the build and the
derivation engine when they are used.
"""

import sys

from . import numeric
from .errors import BuildError, DerivationError, InputError, ShrinkageError, StepError
from .stats import GroupStats
from .fit import FitResult, fit_stats  # noqa: E402
from .fit import fit as _fit_arrays
from . import datasets
from .metaanalysis import MetaResult, meta
from .render.notebook import register_in_running_shell as _show_derivations


def _out_of_core(data) -> bool:
    """A file path, DuckDB relation, Dask or Spark frame (not a frame in memory)."""
    from .sources._kinds import kind_of

    try:
        return data is not None and kind_of(data) in ("path", "duckdb", "dask", "spark")
    except InputError:
        return False


def fit(y=None, groups=None, method: str = "REML", *, data=None, na_action: str = "omit", family=None,
        **options):
    """fit(y, groups) (or stats=, or data= with response= and group=) fits
    y_ij = beta0 + b_j + eps_ij (shrinkage.fit.fit); fit("y ~ x + (x | g)", data=df) fits
    an lme4 formula (shrinkage.lmm: one grouping factor); with family="binomial" or
    "poisson" (and nagq=, weights=) a GLMM as glmer (shrinkage.glmm)."""
    if family is not None and str(family).lower() not in ("gaussian", "gaussian()"):
        if not isinstance(y, str):
            raise InputError("a GLMM (family=) is fitted from a formula: fit('y ~ x + (1 | g)', data, family=...)")
        from .glmm import glmer

        source = data if data is not None else groups
        if _out_of_core(source):  # reduced to counts where the data live (shrinkage.sources._glmm)
            from .sources._glmm import glmer_out_of_core

            return glmer_out_of_core(y, source, family, na_action=na_action, **options)
        return glmer(y, source, family, na_action=na_action, **options)
    if isinstance(y, str):
        from .lmm.fit import fit_formula

        if groups is not None and data is not None:
            raise InputError("give the data once: fit(formula, data) or fit(formula, data=...)")
        return fit_formula(y, data if data is not None else groups, method, na_action=na_action, **options)
    if data is not None:
        options["data"] = data
    return _fit_arrays(y, groups, method, **options)


__all__ = ["numeric", "ShrinkageError", "DerivationError", "StepError", "InputError", "BuildError",
           "GroupStats", "FitResult", "fit", "fit_stats", "datasets",
           "meta", "MetaResult"]
__version__ = "0.1.0"
_show_derivations(sys.modules.get("IPython"))  # in Jupyter a derivation shows its steps
