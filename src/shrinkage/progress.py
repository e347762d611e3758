"""An optional progress bar (tqdm) for passes over data that take more than a few seconds.

``progress`` arguments throughout shrinkage mean: None (default) -- a tqdm bar on stderr
that appears only once a pass has run for 3 s, and only if tqdm is installed (the
``progress`` extra); False -- never; True -- always (tqdm required); or a callable
``f(done, total)`` called as the pass advances (total may be None when unknown).
"""

from __future__ import annotations

from typing import Callable

from .errors import InputError

__all__ = ["Progress", "progress_bar"]

DELAY_SECONDS = 3.0


class Progress:
    """update(k) adds k units of work done; close() ends the bar (idempotent)."""

    def __init__(self, total: float | None, desc: str, progress) -> None:
        self.done, self.total = 0, total
        self._bar = None
        self._call: Callable | None = None
        if callable(progress) and not isinstance(progress, bool):
            self._call = progress
        elif progress is None or progress is True:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                if progress is True:
                    raise InputError("progress=True needs tqdm (pip install 'shrinkage[progress]')") from None
                return
            self._bar = tqdm(total=total, desc=desc, unit_scale=True, leave=False,
                             delay=0.0 if progress is True else DELAY_SECONDS)
        elif progress is not False:
            raise InputError(f"progress must be None, True, False or a callable f(done, total), got {progress!r}")

    def update(self, k: float) -> None:
        self.done += k
        if self._bar is not None:
            self._bar.update(k)
        if self._call is not None:
            self._call(self.done, self.total)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress_bar(total: float | None, desc: str, progress=None) -> Progress:
    return Progress(total, desc, progress)
