"""The exceptions of shrinkage, one per kind of problem a user can meet."""

from __future__ import annotations


class ShrinkageError(Exception):
    """Base class: every error shrinkage raises on purpose."""


class DerivationError(ShrinkageError):
    """A derivation is malformed (unknown symbol, missing label, bad file)."""


class StepError(DerivationError):
    """A step of a derivation failed its symbolic or numeric check.  Raised before
    anything is written, so no document ever states a wrong step.  The message names the
    step by ``tag`` (its label, else its kind: what the progress lines print), not by its
    LaTeX justification ``why``, which is kept as an attribute."""

    def __init__(self, derivation: str, step: int, why: str, detail: str, tag: str = ""):
        self.derivation, self.step, self.why, self.detail, self.tag = derivation, step, why, detail, tag
        super().__init__(f"derivation {derivation!r}, step {step} ({tag or why}): check failed: {detail}")


class StepTimeoutError(StepError):
    """A step's check took longer than its time limit (``check(..., timeout=)`` or the
    environment variable SHRINKAGE_STEP_TIMEOUT): the claim is not verified, so the
    build stops, naming the derivation and the step."""


class InputError(ShrinkageError, ValueError):
    """Data or arguments that cannot be used (NaN, mismatched lengths, too few groups ...)."""


class BuildError(ShrinkageError):
    """The build could not write or compile its outputs."""
