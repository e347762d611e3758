"""shrinkage: derive, prove, document and compute shrinkage in the random-intercept model.

Importing the package loads numpy only; SymPy is imported by the build and the
derivation engine when they are used.
"""

from . import numeric
from .errors import BuildError, DerivationError, InputError, ShrinkageError, StepError
from .stats import GroupStats
from .fit import FitResult, fit, fit_stats  # noqa: E402  (the function shadows the submodule name)
from . import datasets

__all__ = ["numeric", "ShrinkageError", "DerivationError", "StepError", "InputError", "BuildError",
           "GroupStats", "FitResult", "fit", "fit_stats", "datasets"]
__version__ = "0.1.0"
