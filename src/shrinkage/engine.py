"""Transition alias: the engine is now the public package :mod:`shrinkage.derive`.

Import from ``shrinkage.derive``; this module only re-exports it so that code written
against ``shrinkage.engine`` keeps working while it is converted.
"""

from .derive import *  # noqa: F401,F403
from .derive import __all__  # noqa: F401
