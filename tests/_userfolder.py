"""Small derivation files written the way a user writes them, for the build and CLI
tests: each checks in well under a second."""

from __future__ import annotations

from pathlib import Path

TINY = '''from shrinkage.derive import Derivation, Equals, Notation, Premise, Quantity, Statement

NOTATION = Notation([
    Quantity("n", r"n_j", "size of group j", "count"),
    Quantity("sigma2", r"\\sigma^2", "residual variance", "positive"),
    Quantity("sigma_b2", r"\\sigma_b^2", "variance of the group effects", "positive"),
], name={name!r})
n, sigma2, sigma_b2 = (NOTATION.symbol(code) for code in ("n", "sigma2", "sigma_b2"))
FACTOR = Statement("factor", sigma_b2 / (sigma_b2 + sigma2 / n), r"\\lambda_j", "the shrinkage factor")


def derivation():
    return Derivation({name!r}, "A tiny derivation", "The shrinkage factor, cleared of fractions.",
                      notation=NOTATION).then(
        Premise.of(FACTOR),
        Equals({rhs}, why="clear the fraction", label="cleared"),
    ).export({function!r}, "cleared", [n, sigma2, sigma_b2], "The shrinkage factor.")
'''
RIGHT = "n * sigma_b2 / (sigma2 + n * sigma_b2)"
WRONG = "sigma_b2 / (sigma_b2 + sigma2)"  # forgets n: the check must refuse it


def write_tiny(folder: Path, name: str = "tiny", rhs: str = RIGHT, function: str | None = None) -> Path:
    """A derivation file ``folder/name.py`` exporting ``function`` (default lam_<name>)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(TINY.format(name=name, rhs=rhs, function=function or f"lam_{name}"))
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` (hidden ones included) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def old_outputs(out: Path, names=("tiny",)) -> dict[str, bytes]:
    """A previous build's outputs (as bytes a build never writes), for "left as it was"."""
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        (out / f"{name}.tex").write_bytes(b"old tex of " + name.encode())
        (out / f"{name}.pdf").write_bytes(b"%PDF old pdf of " + name.encode())
    (out / "numeric.py").write_bytes(b"# old module\n")
    return snapshot(out)
