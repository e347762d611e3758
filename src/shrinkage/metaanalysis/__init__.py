"""Meta-analysis and Fay-Herriot estimation with known sampling variances (metafor's rma.uni).

`meta(yi, vi, method="REML", mods=None, test="z")`; the formulas are the exports of
derivations/meta_analysis.py and derivations/meta_estimators.py (docs/meta_*.pdf).
"""

from .fit import meta
from .result import MetaResult

__all__ = ["meta", "MetaResult"]
