"""Transition alias: mutation testing now lives in :mod:`shrinkage.derive.mutate`."""

from .derive.mutate import *  # noqa: F401,F403
from .derive.mutate import (DEFINE_HORIZON, HORIZON, Mutant, Outcome, StepReport, contexts, equivalent,  # noqa: F401
                            expression_mutants, judge, mutant_file_source, mutate_step, select, step_mutants)
