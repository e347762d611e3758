"""Compose docs/answer.tex: the document that answers the question claim by claim.

The answer reads checked derivations only (it decides nothing): each claim of the
question (``../shared/question.md``) gets our restatement, a verdict, prose
(:mod:`.claims`), and excerpts of the checked steps that settle it, tagged as in the
standalone documents (``(blup k)`` is equation (k) of ``docs/blup.pdf``).  The figures
(:mod:`.figures`) show numbers computed at build time (:mod:`.example`).

Entry point: :func:`render_answer`, used by ``shrinkage build`` as an extra document.
"""

from .claims import CLAIMS, VERDICTS, Claim
from .compose import REQUIRED, render_answer
from .example import Example, dyestuff_example, generated_functions
from .figures import SIZES, VARIANCE_RATIOS

__all__ = ["CLAIMS", "VERDICTS", "Claim", "REQUIRED", "render_answer", "Example", "dyestuff_example",
           "generated_functions", "SIZES", "VARIANCE_RATIOS"]
