"""The checked steps the random-slope report quotes, rendered once, when they are checked.

``shrinkage report --formula`` must not load SymPy or check derivations to write a file,
yet its equations must be the checked steps of derivations/lmm_blup.py, never re-typed.
So the build renders those steps (exactly as the answer document quotes them: tagged
``(lmm_blup k)``, each with its check note) into the generated module
``shrinkage/_report_excerpts.py``, which the report reads.  Steps are named by label;
a freshness test (tests/test_report_lmm.py) compares the module with a fresh rendering.

Regenerate by hand: ``PYTHONPATH=src python -m shrinkage.report_excerpts`` (reads the
check cache, so it is quick after a build).
"""

from __future__ import annotations

from typing import Sequence

from .paths import PACKAGE_DIR

SOURCE = "lmm_blup"
MODULE = PACKAGE_DIR / "_report_excerpts.py"
# name in the report -> (first step, last step) of derivations/lmm_blup.py, by label
RUNS = {
    "blup": ("blup_stats", "blup_stats"),
    "condvar": ("condvar_stats", "condvar_stats"),
    "shrinkage": ("shrinkage_matrix-1", "shrinkage_matrix"),
    "form": ("shrinkage_form", "shrinkage_form"),
    "one_way": ("shrinkage_one_way", "shrinkage_one_way"),
}
CITED = ("blup_theta", "condvar_theta")  # cited by number, not quoted (the singular case)


def generate(checked: Sequence) -> str:
    """The text of ``_report_excerpts.py`` from the checked ``lmm_blup``."""
    from .render.excerpts import Excerpts, step_number

    by_name = {cd.derivation.name: cd for cd in checked}
    ex = Excerpts({SOURCE: by_name[SOURCE]})
    cd = by_name[SOURCE]
    lines = [
        '"""Steps of derivations/lmm_blup.py quoted by ``shrinkage report --formula``.',
        "",
        "GENERATED FILE by shrinkage.report_excerpts (run by `shrinkage build`): do not edit.",
        '"""',
        "",
        f"SOURCE = {SOURCE!r}",
        f"STEPS = {len(cd.steps)}",
        "NUMBERS = {  # label -> step number in docs/lmm_blup.pdf",
        *[f"    {label!r}: {step_number(cd, label)}," for label in sorted({r for run in RUNS.values() for r in run} | set(CITED))],
        "}",
        "EXCERPTS = {",
    ]
    for name, (first, last) in RUNS.items():
        lines.append(f"    {name!r}: {chr(10).join(ex.lines(SOURCE, first, last))!r},")
    lines += ["}", ""]
    return "\n".join(lines)


def regenerate() -> None:
    # the checker itself, not the build (which imports this module to write its output)
    from . import cache
    from .checking import check_sources, load_sources
    from .paths import package_derivations_dir

    sources = load_sources([package_derivations_dir() / f"{SOURCE}.py"])
    MODULE.write_text(generate(check_sources(sources, cache=cache.Cache())))
    print(f"wrote {MODULE}")


if __name__ == "__main__":
    regenerate()
