"""Small derivation files written the way a user writes them, for the build and CLI
tests: each checks in well under a second."""

from __future__ import annotations

from pathlib import Path

TINY = '''from shrinkage.engine import Derivation, Equals, Given
from shrinkage.symbols import n, sigma2, sigma_b2


def derivation():
    return Derivation({name!r}, "A tiny derivation", "The shrinkage factor, cleared of fractions.").then(
        Given(sigma_b2 / (sigma_b2 + sigma2 / n), why="the shrinkage factor"),
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
