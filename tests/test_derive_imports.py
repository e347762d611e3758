"""derive/ stands alone (issue 20 item 4): it imports nothing of the package but its own
files and errors.py; the notation, the mutation suite's swaps and the notebook display
are passed in by the application (shrinkage.symbols, shrinkage.render.notebook)."""

from __future__ import annotations

import subprocess
import sys

from test_imports import imports


def test_derive_imports_only_itself_and_errors():
    found = {(module, target) for module, targets in imports().items() if module.split(".")[0] == "derive"
             for target, _inside in targets
             if target is not None and target.split(".")[0] != "derive" and target != "errors"}
    assert not found, f"derive reaches into the package: {sorted(found)}"


def test_render_and_the_project_depend_on_derive_not_back():
    edges = {module: {t for t, _ in targets if t is not None} for module, targets in imports().items()}
    assert "derive" in {t.split(".")[0] for t in edges["render.md"]}
    assert any(t.startswith("derive") for t in edges["symbols"])


def _run(script: str) -> str:
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


def test_a_derivation_without_a_notation_takes_the_installed_default():
    """Alone, derive has no table: a derivation that names none is refused, naming the fix;
    once shrinkage.symbols is imported its NOTATION is the default, as before."""
    out = _run(
        "import sys\n"
        "from shrinkage import DerivationError\nfrom shrinkage.derive import Derivation\n"
        "d = Derivation('bare', 'b', 'b')\n"
        "try:\n"
        "    d.resolved_notation()\n"
        "except DerivationError as e:\n"
        "    print('refused:', e)\n"
        "assert 'shrinkage.symbols' not in sys.modules\n"
        "from shrinkage.symbols import NOTATION\n"
        "print(d.resolved_notation() is NOTATION)\n")
    refused, installed = out.splitlines()
    assert refused.startswith("refused: a derivation without a notation") and "notation=" in refused
    assert installed == "True"


def test_swaps_come_from_the_notation():
    """The mutation suite's confusable pairs are the notation's: a notation declaring none
    gets no swap mutants; the project's table declares sigma2 <-> sigma_b2 and ybar <-> beta0."""
    from shrinkage.derive import Derivation, Equals, Given, Notation
    from shrinkage.derive.mutate import step_mutants
    from shrinkage.symbols import NOTATION, sigma2, sigma_b2

    def swap_mutants(notation):
        d = Derivation("s", "s", "s", notation=notation).then(Given(sigma2 / sigma_b2, why="x"),
                                                             Equals(sigma2 / sigma_b2, why="same"))
        return sorted(m.description for m in step_mutants(d, 2) if m.operator == "swap")

    assert swap_mutants(NOTATION) == ["swap sigma2 and sigma_b2"]
    assert swap_mutants(Notation(NOTATION.quantities, NOTATION.definitions)) == []
    assert NOTATION.extend().swaps == NOTATION.swaps


def test_no_derivation_imports_the_code_generator():
    """A derivation declares what its exports need (over_groups); it never probes the generator."""
    import ast

    from conftest import DERIVATIONS

    for path in sorted(DERIVATIONS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [f"{node.module or ''}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            assert not any(name.startswith(("shrinkage.codegen", "shrinkage.matrix.codegen")) or
                           (name.startswith("shrinkage.") and name.endswith(".codegen")) for name in names), \
                (path.name, names)


def test_an_export_over_the_groups_is_declared_and_held_to_it():
    """gls_beta0 sums over the groups and says so; the generator refuses the sum undeclared,
    and the declaration without a sum (gls_weight is elementwise)."""
    from dataclasses import replace

    import pytest

    from conftest import DERIVATIONS
    from shrinkage import DerivationError, codegen
    from shrinkage.checking import load_file
    from shrinkage.derive import check

    cd = check(load_file(DERIVATIONS / "gls.py"))
    declared = {e.function: e.over_groups for e in cd.derivation.exports}
    assert declared == {"gls_weight": False, "gls_beta0": True}
    assert "def gls_beta0(" in codegen.generate([cd])
    for name, message in (("gls_beta0", "sums over the groups: declare it"), ("gls_weight", "declared over_groups")):
        flipped = tuple(replace(e, over_groups=not e.over_groups) if e.function == name else e
                        for e in cd.derivation.exports)
        wrong = replace(cd, derivation=replace(cd.derivation, exports=flipped))
        with pytest.raises(DerivationError, match=message):
            codegen.generate([wrong])
