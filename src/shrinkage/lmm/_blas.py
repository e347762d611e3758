"""One BLAS thread for the fit: its matrix products are tiny (p, q < 10) or a single pass
over the rows, where waking BLAS threads costs more than it gains (x2 to x6 on a busy
2-core machine).  threadpoolctl's controller is built once (about 7 ms), a limit then
costs microseconds; without threadpoolctl nothing is limited."""

from __future__ import annotations

from contextlib import nullcontext

_CONTROLLER = []


def one_thread():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - optional
        return nullcontext()
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=1, user_api="blas")
