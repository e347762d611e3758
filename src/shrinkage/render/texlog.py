"""What a TeX log says about the page: boxes that run past the margin.

TeX reports a line it could not fit as ``Overfull \\hbox (12.3pt too wide) ...``.  A
document of ours must have none wider than ``LIMIT_PT``; tests read the logs of every
document and of reports with :func:`overfull_boxes`.
"""

from __future__ import annotations

import re

LIMIT_PT = 1.0
_OVERFULL = re.compile(r"^Overfull \\hbox \(([\d.]+)pt too wide\) (.*)$", re.M)


def overfull_boxes(log: str, limit_pt: float = LIMIT_PT) -> list[str]:
    """One line per overfull box wider than ``limit_pt``: its excess and where TeX found it."""
    return [f"{float(pt):.1f}pt {where}" for pt, where in _OVERFULL.findall(log) if float(pt) > limit_pt]
