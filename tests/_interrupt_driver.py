"""Run `shrinkage ...` (cli.main) stopped at a chosen moment, for tests/test_clean_failures.py.

    python _interrupt_driver.py POINT READY_FILE ARGS...

At POINT the driver writes READY_FILE and waits (in a way a signal interrupts), so the
test can send SIGTERM or SIGINT exactly there.  Points: checking (a step check runs),
compiling (LaTeX runs), staged (every file is staged, none moved), renaming (inside
the first rename: the signal must wait for the last), write_atomic (a file written,
not yet renamed).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from shrinkage import build, checking, cli, texio

point, ready = sys.argv[1], Path(sys.argv[2])
args = sys.argv[3:]


def stall(seconds: float = 120.0) -> None:
    ready.write_text(point)
    time.sleep(seconds)


if point == "checking":
    real_check = checking.check

    def check(d, **kwargs):
        stall()
        return real_check(d, **kwargs)

    checking.check = check
elif point == "compiling":
    build.tex_available = lambda: True
    build.pdf_bytes = lambda tex, name: stall() or b"%PDF never"
elif point == "staged":
    real_commit = texio.Staging.commit

    def commit(self):
        stall()
        return real_commit(self)

    texio.Staging.commit = commit
    args.append("--no-pdf")
elif point == "renaming":
    real_replace = os.replace
    state = {"first": True}

    def replace(src, dst):
        if Path(dst).name.startswith(".old-") and state.pop("first", False):  # the commit's first move
            stall(1.5)  # signals are held here: the sleep finishes, then the other renames
        return real_replace(src, dst)

    os.replace = replace
    args.append("--no-pdf")
elif point == "write_atomic":
    real_replace = os.replace
    target = Path(args[args.index("--out") + 1]) / "report.tex"

    def replace(src, dst):
        if Path(dst) == target:
            stall()
        return real_replace(src, dst)

    os.replace = replace
    try:
        with texio.signals_raise():
            texio.write_atomic(target, b"new")
    except texio.Interrupted as e:
        sys.exit(128 + e.signum)
    sys.exit(0)
else:
    sys.exit(f"unknown point {point}")

sys.exit(cli.main(args))
