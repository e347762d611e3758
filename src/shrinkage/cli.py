"""Command line: ``shrinkage check`` (verify derivation files, write nothing),
``shrinkage build`` (documents and generated code), ``shrinkage docs`` (where the
package's documents are) and ``shrinkage report`` (a fit of the user's CSV, as a
LaTeX/PDF report).

Errors of shrinkage are printed as one line and exit with status 1, never a traceback;
an interruption (Ctrl-C, SIGTERM) exits with 128 + the signal's number and leaves every
earlier output as it was.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from .errors import ShrinkageError


def verdict_text(verdict) -> str:
    """How a step was checked, in words (the same facts the documents print)."""
    symbolic = getattr(verdict, "symbolic", None)
    method = getattr(verdict, "method", "")
    if symbolic is True:
        return f"proved by SymPy; numeric check passed ({method})"
    if symbolic is None:
        return f"numeric check passed ({method}); SymPy could not settle it"
    return plain_text(method) or "not a claim"


def plain_text(latex: str) -> str:
    """A verdict's LaTeX as the console shows it: "restates eq.~(3) of \\emph{blup}" reads
    "restates eq. (3) of blup"."""
    return re.sub(r"\\emph\{([^}]*)\}", r"\1", latex).replace("~", " ").replace(r"\_", "_")


class Progress:
    """Turns checking events into lines.  ``steps``: every step's verdict as it comes
    (``shrinkage check``); otherwise one line per derivation, with a live status line of
    the steps being checked when the output is a terminal (``shrinkage build``)."""

    def __init__(self, steps: bool, stream=None):
        self.steps, self.stream = steps, stream or sys.stdout
        self.live = not steps and self.stream.isatty()
        self.running: dict[str, str] = {}
        self.status = False

    def say(self, line: str) -> None:
        self._clear()
        print(line, file=self.stream, flush=True)
        self._show()

    def _clear(self) -> None:
        if self.status:
            self.stream.write("\r\x1b[K")
            self.status = False

    def _show(self) -> None:
        if self.live and self.running:
            line = "checking " + " | ".join(f"{n} {s}" for n, s in sorted(self.running.items()))
            self.stream.write(line[: max(20, _columns() - 1)])
            self.stream.flush()
            self.status = True

    def __call__(self, e) -> None:
        from .build import summary

        if e.kind == "start" and self.steps:
            self.say(f"{e.name}: {e.total} steps" + (", checked before with the same sources (cache)" if e.cached else ""))
        elif e.kind == "step" and e.verdict is None:
            total = f"/{e.total}" if e.total else ""
            self.running[e.name] = f"step {e.number}{total} ({e.tag})"
            self._clear()
            self._show()
        elif e.kind == "step" and self.steps:
            total = f"/{e.total}" if e.total else ""
            self.say(f"  {e.name} step {e.number}{total} {e.tag}: {verdict_text(e.verdict)}")
        elif e.kind == "done":
            self.running.pop(e.name, None)
            how = " (from the cache)" if e.cached else f" (in {e.seconds:.1f} s)" if e.seconds else ""
            self.say(f"checked {e.name}: {summary(e.checked)}{how}")

    def close(self) -> None:
        self._clear()


def _columns() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 80


def _cache(args):
    if args.no_cache:
        return None
    from .cache import Cache

    return Cache()


def _check(args: argparse.Namespace) -> None:
    from .build import check_as_built, default_jobs

    progress = Progress(steps=True)
    try:
        checked = check_as_built(args.paths or None, cache=_cache(args), jobs=args.jobs or default_jobs(),
                                 report=progress, timeout=args.timeout, pdf=False if args.no_pdf else None)
    finally:
        progress.close()
    steps = sum(len(cd.steps) for cd in checked)
    print(f"all {len(checked)} derivation(s), {steps} steps, checked: nothing was written")


def _build(args: argparse.Namespace) -> None:
    from .build import DEFAULT, build, default_jobs

    progress = Progress(steps=False)
    paths = list(args.paths) + ([args.derivations] if args.derivations else [])
    try:
        build(paths=paths or None, out=args.out, numeric_module=args.numeric if args.numeric else DEFAULT,
              pdf=False if args.no_pdf else None, say=progress.say, cache=_cache(args),
              jobs=args.jobs or default_jobs(), report=progress, timeout=args.timeout,
              formats=["tex", *args.format])
    finally:
        progress.close()


def _docs(args: argparse.Namespace) -> None:
    from .paths import document, documents_dir

    if args.name is None:
        folder = documents_dir()
        names = sorted(p.stem for p in folder.glob("*.pdf")) if folder and folder.is_dir() else []
        if not names:
            raise ShrinkageError("no documents are installed; build them with `shrinkage build --out DIR`")
        print(f"documents in {folder}:")
        for name in names:
            print(f"  {name}")
        return
    pdf = document(args.name)
    print(pdf)
    if args.open:
        opener = "open" if sys.platform == "darwin" else "xdg-open"
        if sys.platform.startswith("win"):
            os.startfile(pdf)  # type: ignore[attr-defined]
        else:
            try:
                subprocess.Popen([opener, str(pdf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            except OSError:
                raise ShrinkageError(f"cannot open {pdf}: no {opener} on this system") from None


def _report(args: argparse.Namespace) -> None:
    pdf = False if args.no_pdf else None
    if args.yi is not None or args.vi is not None:
        if args.yi is None or args.vi is None or args.formula or args.response or args.group:
            raise ShrinkageError("a meta-analysis needs --yi and --vi (and neither --formula nor --response/--group)")
        from .report_meta import write_meta_report

        return write_meta_report(args.data, args.yi, args.vi, method=args.method, out=args.out, pdf=pdf)
    if args.formula is not None:
        if args.response is not None or args.group is not None:
            raise ShrinkageError("give --formula, or --response and --group, not both")
        from .report_lmm import write_lmm_report

        return write_lmm_report(args.data, args.formula, method=args.method, out=args.out, pdf=pdf)
    if args.response is None or args.group is None:
        raise ShrinkageError("say which model: --response and --group (y ~ 1 + (1 | g)), or --formula")
    from .report import write_report

    write_report(args.data, args.response, args.group, method=args.method, out=args.out, pdf=pdf)


def _checking_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-cache", action="store_true",
                   help="check every derivation again (the cache is $SHRINKAGE_CACHE_DIR or ~/.cache/shrinkage)")
    p.add_argument("--jobs", "-j", type=int, default=None, help="worker processes (default: one per core)")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds allowed per step check (default: $SHRINKAGE_STEP_TIMEOUT or the engine's)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="shrinkage", description="Checked derivations of shrinkage in mixed models.")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="check derivation files or folders, print each step's verdict, write nothing")
    c.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                   help="derivation files or folders (default: the package's own derivations)")
    c.add_argument("--no-pdf", action="store_true",
                   help="do not run LaTeX (by default check compiles the documents, as build does, when TeX is "
                        "installed, and writes nothing)")
    _checking_options(c)
    c.set_defaults(run=_check)
    b = sub.add_parser("build", help="check derivations, then write LaTeX/PDF documents and a numeric module")
    b.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                   help="derivation files or folders (default: the package's own derivations)")
    b.add_argument("--out", type=Path, default=None,
                   help="folder for the documents and the module (default, in a source tree: docs/)")
    b.add_argument("--numeric", type=Path, default=None,
                   help="where to write the generated module (default: DIR/numeric.py; the package's own "
                        "numeric.py only for its own derivations built into its docs/)")
    b.add_argument("--format", action="append", choices=["md", "html"], default=[],
                   help="also write DIR/NAME.md (Markdown with MathJax equations, references resolved) or "
                        "DIR/NAME.html beside each .tex (repeat for both)")
    b.add_argument("--no-pdf", action="store_true", help="write .tex only, do not run LaTeX")
    b.add_argument("--derivations", type=Path, default=None, help=argparse.SUPPRESS)  # older spelling of PATH
    _checking_options(b)
    b.set_defaults(run=_build)
    d = sub.add_parser("docs", help="print where the package's document NAME (a PDF) is, or list them")
    d.add_argument("name", nargs="?", default=None, metavar="NAME", help="a document, e.g. blup")
    d.add_argument("--open", action="store_true", help="also open it in the PDF viewer")
    d.set_defaults(run=_docs)
    r = sub.add_parser("report", help="fit a CSV's data and write a LaTeX/PDF shrinkage report")
    r.add_argument("data", type=Path, help="CSV file with a header line")
    r.add_argument("--response", help="name of the numeric response column (the model y ~ 1 + (1 | g))")
    r.add_argument("--group", help="name of the grouping column")
    r.add_argument("--formula", help='an lme4 formula instead, e.g. "Reaction ~ Days + (Days | Subject)"')
    r.add_argument("--yi", help="a meta-analysis: the column of the studies' estimates (with --vi)")
    r.add_argument("--vi", help="the column of their known sampling variances")
    r.add_argument("--method", type=str.upper, choices=["REML", "ML", "DL", "PM", "EB", "HE", "SJ", "HS"],
                   default="REML", help="REML (default) or ML; for --yi/--vi also DL, PM, EB, HE, SJ, HS")
    r.add_argument("--out", type=Path, default=None, help="folder for the report (default: the current folder)")
    r.add_argument("--no-pdf", action="store_true", help="write .tex only, do not run LaTeX")
    r.set_defaults(run=_report)
    return p


def main(argv: list[str] | None = None) -> int:
    from .texio import Interrupted, signals_raise

    args = parser().parse_args(argv)
    try:
        with signals_raise():
            args.run(args)
    except ShrinkageError as e:
        print(f"shrinkage: error: {e}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Interrupted) as e:
        signum = e.signum if isinstance(e, Interrupted) else signal.SIGINT
        outcome = "after every output was in place" if getattr(e, "committed", False) else \
            "nothing was written; earlier outputs are as they were"
        print(f"shrinkage: interrupted ({signal.Signals(signum).name}): {outcome}", file=sys.stderr)
        return 128 + signum
    return 0
