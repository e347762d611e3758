"""Time `shrinkage build` as a user meets it: the first build (empty cache, no TeX) and a
rebuild with nothing changed (everything from the cache), each in a fresh process.

    PYTHONPATH=src python bench/bench_build.py [--jobs N]

Prints wall-clock seconds; the targets (issue 11) are <= 60 s and <= 5 s on a 2-core
machine.  Say how loaded the machine was (the load average is printed too).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(args: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--jobs", type=int, default=None)
    jobs = p.parse_args().jobs
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "SHRINKAGE_CACHE_DIR": str(Path(scratch) / "cache")}
        args = [sys.executable, "-m", "shrinkage", "build", "--out", str(Path(scratch) / "out"), "--no-pdf"]
        if jobs:
            args += ["--jobs", str(jobs)]
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        first = timed(args, env)
        again = timed(args, env)
        print(f"load average before: {load:.1f} on {os.cpu_count()} cores")
        print(f"first build (empty cache, no TeX): {first:.1f} s")
        print(f"rebuild, nothing changed:          {again:.1f} s")


if __name__ == "__main__":
    main()
