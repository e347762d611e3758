"""Command line: ``shrinkage build`` (documents and generated code).

Errors of shrinkage are printed as one line and exit with status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import ShrinkageError


def _build(args: argparse.Namespace) -> None:
    from .build import NUMERIC_MODULE, build

    pdf = False if args.no_pdf else None
    numeric = args.numeric if args.numeric is not None else NUMERIC_MODULE
    build(derivations_dir=args.derivations, out=args.out, numeric_module=numeric, pdf=pdf)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="shrinkage", description="Checked derivations of shrinkage in mixed models.")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="check every derivation, write LaTeX/PDF documents and the numeric module")
    b.add_argument("--derivations", type=Path, default=None, help="folder of derivation files (default: derivations/)")
    b.add_argument("--out", type=Path, default=None, help="folder for the documents (default: docs/)")
    b.add_argument("--numeric", type=Path, default=None,
                   help="where to write the generated numeric module (default: the package's numeric.py)")
    b.add_argument("--no-pdf", action="store_true", help="write .tex only, do not run LaTeX")
    b.set_defaults(run=_build)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except ShrinkageError as e:
        print(f"shrinkage: error: {e}", file=sys.stderr)
        return 1
    return 0
