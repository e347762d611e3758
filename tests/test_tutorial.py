"""The tutorial (TUTORIAL.md) is true: its code is the example folder's code, the example
derivation checks, its pytest file passes, and both fail when they should (a wrong step,
a wrong implementation).  The failure message it shows is the one assert_implements gives."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import tex_installed

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "TUTORIAL.md"
EXAMPLE = ROOT / "examples" / "fay_herriot"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", TUTORIAL.read_text(), flags=re.S)


def load(path: Path):
    spec = importlib.util.spec_from_file_location(f"tutorial_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_pytest(folder: Path) -> subprocess.CompletedProcess:
    """A user's own pytest run (not a worker of this session's pytest -n: no PYTEST_ variables)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "pytest", str(folder), "-q", "-p", "no:cacheprovider",
                           "--rootdir", str(folder), "-c", os.devnull, "-W", "error"],
                          capture_output=True, text=True, env=env, timeout=900)


def shrinkage_cli(*args) -> subprocess.CompletedProcess:
    """`shrinkage ARGS` as the tutorial runs it (this tree's package)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "shrinkage", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=1800)


def copy_example(tmp_path: Path) -> Path:
    """The example folder as a user has it (sources only), in a scratch folder."""
    folder = tmp_path / "fay_herriot"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("build", "__pycache__"))
    return folder


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A copy of the example folder after the tutorial's `shrinkage build` (PDF with TeX)."""
    folder = copy_example(tmp_path_factory.mktemp("tutorial"))
    run = shrinkage_cli("build", folder, "--out", folder / "build", *([] if tex_installed() else ["--no-pdf"]))
    assert run.returncode == 0, run.stdout + run.stderr
    return folder


@pytest.fixture(scope="module")
def checked():
    """The tutorial's check snippet, run as shown (from the repository's root)."""
    snippet = next(b for b in blocks("python") if "checked = check(module.derivation())" in b)
    here = os.getcwd()
    os.chdir(ROOT)
    try:
        namespace: dict = {}
        exec(snippet, namespace)  # noqa: S102 (the tutorial's own code)
    finally:
        os.chdir(here)
    return namespace["checked"]


def test_the_code_shown_is_the_example_folders_code():
    shown = [b for b in blocks("python") if b.startswith("# examples/")]
    assert len(shown) >= 5
    for block in shown:
        first, _, body = block.partition("\n")
        source = (ROOT / first[2:].strip()).read_text()
        assert body.strip() and body in source, f"TUTORIAL.md shows code that is not in {first[2:]}:\n{body[:300]}"


@pytest.mark.slow  # checks or builds the example, runs the CLI or pytest
def test_the_example_derivation_checks(checked):
    from shrinkage.derive import Conditional

    claims = [s for s in checked.steps if s.step.claim]
    assert [s.step.label or s.step.kind for s in claims] == [
        "completed_square", "maximiser", "blup", "shrinkage_factor", "conditional_variance", "posterior"]
    assert all(s.verdict.symbolic is True for s in claims)  # "all six claims are proved by SymPy"
    assert "All six claims are proved by SymPy" in TUTORIAL.read_text()
    bayes = checked.steps[-1]  # Bayes' rule, from the model's joint density (the tutorial's Conditional step)
    assert type(bayes.step) is Conditional and bayes.current == checked.steps[0].step.rhs
    assert [e.function for e in checked.derivation.exports] == ["fh_shrinkage", "fh_blup", "fh_conditional_variance"]


@pytest.mark.slow  # checks or builds the example, runs the CLI or pytest
def test_the_check_snippet_gives_the_verdicts_it_describes(checked):
    verdicts = [s.verdict.symbolic for s in checked.steps]
    assert verdicts.count(True) == 6 and verdicts.count("n/a") == 4 and len(verdicts) == 10


@pytest.mark.slow  # checks or builds the example, runs the CLI or pytest
def test_shrinkage_check_prints_what_the_tutorial_shows(tmp_path):
    run = shrinkage_cli("check", copy_example(tmp_path), "--no-cache")
    assert run.returncode == 0, run.stderr
    shown = next(b for b in blocks("console") if b.startswith("$ shrinkage check examples/fay_herriot"))
    assert shown.splitlines()[1:] == run.stdout.splitlines()[:len(shown.splitlines()) - 1]


@pytest.mark.slow  # checks or builds the example, runs the CLI or pytest
def test_a_wrong_step_is_refused_as_the_tutorial_says(tmp_path):
    folder = copy_example(tmp_path)
    source = folder / "fay_herriot.py"
    wrong = source.read_text().replace("Derivative(tau2 / (tau2 + s2), var=y", "Derivative(tau2 / (tau2 + s2**2), var=y")
    assert "s2**2" in wrong
    source.write_text(wrong)
    run = shrinkage_cli("check", folder, "--no-cache")
    assert run.returncode == 1
    decimal = r"-?[0-9]+\.[0-9]+"  # the counterexample in decimals; the step by its label
    assert re.fullmatch(rf"shrinkage: error: derivation 'fay_herriot', step 6 \(shrinkage_factor\): check failed: "
                        rf"at mu={decimal}, s2={decimal}, tau2={decimal}, y={decimal}: numerical derivative {decimal}, "
                        rf"this step claims {decimal}\n", run.stderr), run.stderr
    message = run.stderr.removeprefix("shrinkage: error: ").strip()
    assert message in " ".join(TUTORIAL.read_text().split()), "TUTORIAL.md quotes another message"


@pytest.mark.slow  # checks or builds the example, runs the CLI or pytest
def test_shrinkage_build_writes_the_document_and_a_numpy_only_module(built):
    out = built / "build"
    assert (out / "fay_herriot.tex").is_file() and (out / "numeric.py").is_file()
    document = (out / "fay_herriot.tex").read_text()  # the user's file and module, not the package's
    assert r"from \texttt{fay\_herriot.py}" in document and r"into \texttt{numeric.py}" in document
    if tex_installed() or os.environ.get("CI"):
        assert (out / "fay_herriot.pdf").read_bytes().startswith(b"%PDF")
    snippet = next(b for b in blocks("python") if "import numeric" in b)
    blocked = "import sys\nsys.modules.update(shrinkage=None, sympy=None, mpmath=None)  # numpy alone\n"
    code = blocked + snippet.replace("examples/fay_herriot/build", str(out)) + (
        "\nimport numpy as np\n"
        "np.testing.assert_allclose(numeric.fh_blup(y=[1.0, 3.0], mu=2.0, tau2=1.0, s2=[0.5, 4.0]), [4 / 3, 2.2])\n"
        "assert numeric.fh_shrinkage(tau2=0.0, s2=1.0) == 0.0\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=built)
    assert run.returncode == 0, run.stderr

    assert "array([1.333..., 2.2])" in snippet  # what the tutorial says it returns


@pytest.mark.slow  # checks or builds the example, runs the CLI or pytest
def test_the_example_pytest_file_passes(built):
    run = run_pytest(built)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "9 passed" in run.stdout


@pytest.mark.slow  # checks or builds the example, runs the CLI or pytest
def test_the_example_pytest_file_needs_the_build_and_says_so(tmp_path):
    run = run_pytest(copy_example(tmp_path))
    assert run.returncode == 1 and "6 passed, 3 errors" in run.stdout
    assert "run `shrinkage build" in run.stdout


@pytest.mark.slow  # checks or builds the example, runs the CLI or pytest
def test_the_example_pytest_file_fails_for_a_wrong_implementation(built, tmp_path):
    folder = tmp_path / "fay_herriot"
    shutil.copytree(built, folder)
    test_file = folder / "tests" / "test_fay_herriot.py"
    text = test_file.read_text()
    slipped = text.replace("return mu + shrinkage(tau2, s2) * (y - mu)", "return mu + shrinkage(tau2, s2 * s2) * (y - mu)")
    assert slipped != text
    test_file.write_text(slipped)
    run = run_pytest(folder)
    assert run.returncode == 1
    assert "1 failed, 8 passed" in run.stdout and "does not implement fh_blup" in run.stdout


def test_the_failure_message_shown_is_the_real_one():
    from shrinkage.testing import assert_implements

    def my_shrinkage(tau2, s2):
        return 1 - s2 / (tau2 + s2)

    shown = next(b for b in blocks("text") if b.startswith("my_shrinkage does not implement"))
    with pytest.raises(AssertionError) as e:
        assert_implements(my_shrinkage, "fh_shrinkage", derivations=EXAMPLE)
    assert str(e.value) == shown.rstrip("\n")


def test_the_property_test_snippet_runs(monkeypatch):
    hypothesis = pytest.importorskip("hypothesis")
    snippet = next(b for b in blocks("python") if "@given(sst.arguments" in b)
    monkeypatch.chdir(ROOT)
    namespace = {"shrinkage": load(EXAMPLE / "tests" / "test_fay_herriot.py").shrinkage}
    exec(snippet, namespace)  # noqa: S102 (the tutorial's own code)
    settings = hypothesis.settings(database=None, derandomize=True)  # write no example database
    settings(namespace["test_shrinkage_is_a_weight"])()
