"""Command line: ``shrinkage build`` (documents and generated code) and ``shrinkage report``
(a fit of the user's CSV, as a LaTeX/PDF report).

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


def _report(args: argparse.Namespace) -> None:
    from .report import write_report

    pdf = False if args.no_pdf else None
    write_report(args.data, args.response, args.group, method=args.method, out=args.out, pdf=pdf)


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
    r = sub.add_parser("report", help="fit a CSV's data and write a LaTeX/PDF shrinkage report")
    r.add_argument("data", type=Path, help="CSV file with a header line")
    r.add_argument("--response", required=True, help="name of the numeric response column")
    r.add_argument("--group", required=True, help="name of the grouping column")
    r.add_argument("--method", type=str.upper, choices=["REML", "ML"], default="REML", help="REML (default) or ML")
    r.add_argument("--out", type=Path, default=None, help="folder for the report (default: the current folder)")
    r.add_argument("--no-pdf", action="store_true", help="write .tex only, do not run LaTeX")
    r.set_defaults(run=_report)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except ShrinkageError as e:
        print(f"shrinkage: error: {e}", file=sys.stderr)
        return 1
    return 0
