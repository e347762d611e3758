"""The cache of checked derivations: where it lives, what its key depends on, that a
result read back renders to the same bytes as a fresh check, that a change anywhere a
verdict depends on invalidates it, and the worker processes that fill it."""

from __future__ import annotations

import pickle

import pytest
import sympy as sp

from _userfolder import WRONG, write_tiny
from conftest import DERIVATIONS
from shrinkage import cache as cache_module
from shrinkage.build import check_all, load_file, load_sources
from shrinkage.cache import Cache, CacheMismatch, cache_dir, check_key, dependencies, dumps, loads
from shrinkage.codegen import generate
from shrinkage.derive import check
from shrinkage.errors import StepError
from shrinkage.render.document import render


def test_where_the_cache_lives(monkeypatch, tmp_path):
    monkeypatch.setenv("SHRINKAGE_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("SHRINKAGE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "shrinkage"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "shrinkage"


def test_a_key_covers_the_file_what_it_imports_and_the_engine_not_more():
    deps = dependencies(DERIVATIONS / "blup.py")
    assert "./blup.py" in deps and "shrinkage.symbols" in deps
    assert any(name.startswith("shrinkage.derive") for name in deps)
    for unrelated in ("shrinkage", "shrinkage.numeric", "shrinkage.fit", "shrinkage.build", "./marginal.py"):
        assert unrelated not in deps, unrelated


def test_a_key_changes_with_the_file_its_helpers_and_the_versions(tmp_path, monkeypatch):
    folder = tmp_path / "d"
    path = write_tiny(folder)
    key = check_key(path)
    assert check_key(path) == key  # deterministic
    (folder / "unrelated.py").write_text("x = 1\n")
    assert check_key(path) == key, "a file the derivation does not import changed its key"
    path.write_text(path.read_text().replace("clear the fraction", "clear the fractions"))
    assert check_key(path) != key, "a changed derivation kept its key"
    key = check_key(path)
    (folder / "_helpers.py").write_text("FACTOR = 1\n")
    path.write_text("from _helpers import FACTOR\n" + path.read_text())
    key = check_key(path)
    assert "./_helpers.py" in dependencies(path)
    (folder / "_helpers.py").write_text("FACTOR = 2\n")
    assert check_key(path) != key, "a changed helper module kept the key"
    key = check_key(path)
    monkeypatch.setattr(sp, "__version__", "0.0-other")
    assert check_key(path) != key, "another SymPy kept the key"


def test_a_checked_derivation_read_back_renders_to_the_same_bytes(tmp_path):
    path = write_tiny(tmp_path / "d")
    fresh = check(load_file(path))
    again = loads(dumps(fresh, fresh.derivation), load_file(path))
    assert render(again) == render(fresh) and generate([again]) == generate([fresh])


def test_plain_pickling_would_not_do(checked):
    """Why cache.dumps keeps references: pickling by value re-evaluates SymPy's
    unevaluated forms, so a document rendered from the copy would differ."""
    cd = checked["blup"]
    assert render(pickle.loads(pickle.dumps(cd))) != render(cd)
    assert render(loads(dumps(cd, cd.derivation), load_file(DERIVATIONS / "blup.py"))) == render(cd)


def test_a_result_does_not_load_against_another_derivation(tmp_path):
    a = check(load_file(write_tiny(tmp_path / "a")))
    other = load_file(DERIVATIONS / "shrinkage_facts.py")
    with pytest.raises(CacheMismatch):
        loads(dumps(a, a.derivation), other)
    store = Cache(tmp_path / "cache")
    store.put_checked("k", dumps(a, a.derivation))
    assert store.get_checked("k", other) is None
    assert not (tmp_path / "cache" / "checks" / "k.pickle").exists(), "a result that does not fit was kept"


def done_events(sources, store, jobs=1):
    events = []
    checked = check_all(sources, cache=store, jobs=jobs, report=events.append)
    return checked, {e.name: e.cached for e in events if e.kind == "done"}


def test_checked_once_then_read_back_until_the_file_changes(tmp_path):
    folder = tmp_path / "d"
    write_tiny(folder, "tiny")
    write_tiny(folder, "other")
    store = Cache(tmp_path / "cache")
    first, cached = done_events(load_sources([folder]), store)
    assert cached == {"tiny": False, "other": False}
    second, cached = done_events(load_sources([folder]), store)
    assert cached == {"tiny": True, "other": True}
    assert [render(cd) for cd in first] == [render(cd) for cd in second]
    path = folder / "tiny.py"
    path.write_text(path.read_text().replace("A tiny derivation", "A small derivation"))
    third, cached = done_events(load_sources([folder]), store)
    assert cached == {"tiny": False, "other": True}
    assert "A small derivation" in render(third[1])
    assert set(store.times()) == {"tiny", "other"}


def test_a_wrong_step_is_never_cached(tmp_path):
    folder = tmp_path / "d"
    write_tiny(folder, "tiny", rhs=WRONG)
    store = Cache(tmp_path / "cache")
    for _ in range(2):  # refused the second time too: not read back from anywhere
        with pytest.raises(StepError):
            check_all(load_sources([folder]), cache=store, say=lambda _: None)
    assert not list((tmp_path / "cache").glob("checks/*"))


def test_worker_processes_give_what_this_process_gives(tmp_path):
    folder = tmp_path / "d"
    for name in ("tiny", "tiny2", "tiny3"):
        write_tiny(folder, name)
    here = check_all(load_sources([folder]), say=lambda _: None, jobs=1)
    events = []
    there = check_all(load_sources([folder]), report=events.append, jobs=2)
    assert [render(cd) for cd in there] == [render(cd) for cd in here]
    assert generate(there, standalone=True) == generate(here, standalone=True)
    assert {e.name for e in events if e.kind == "done"} == {"tiny", "tiny2", "tiny3"}


def test_a_failure_in_a_worker_arrives_whole(tmp_path):
    """StepError keeps its parts (derivation, step, detail) across the process boundary."""
    folder = tmp_path / "d"
    write_tiny(folder, "good")
    write_tiny(folder, "wrong", rhs=WRONG)
    with pytest.raises(StepError) as err:
        check_all(load_sources([folder]), say=lambda _: None, jobs=2)
    assert (err.value.derivation, err.value.step) == ("wrong", 2) and "at " in err.value.detail


def test_the_session_check_matches_a_fresh_check_in_this_process(checked):
    """The session's derivations came through workers and the cache; three of them,
    checked again here, render and generate to the same bytes."""
    for name in ("shrinkage_facts", "marginal", "lmm_henderson"):  # cheap ones, scalar and matrix
        fresh = check(load_file(DERIVATIONS / f"{name}.py"), sources=dict(checked))  # cited ones: not again
        assert render(fresh) == render(checked[name]), name
        if fresh.derivation.exports:
            assert generate([fresh]) == generate([checked[name]]), name


def test_pdfs_are_compiled_once_for_the_same_source(tmp_path, monkeypatch):
    from shrinkage import build as build_module

    folder = tmp_path / "d"
    write_tiny(folder)
    compiled = []

    def fake_compile(tex, name):
        compiled.append(name)
        return b"%PDF " + str(len(compiled)).encode()

    monkeypatch.setattr(build_module, "pdf_bytes", fake_compile)
    monkeypatch.setattr(build_module, "tex_version", lambda: "pdfTeX test")
    store = Cache(tmp_path / "cache")
    for out in ("out1", "out2"):
        build_module.build(paths=[folder], out=tmp_path / out, pdf=True, cache=store, say=lambda _: None)
    assert compiled == ["tiny"]
    assert (tmp_path / "out1" / "tiny.pdf").read_bytes() == (tmp_path / "out2" / "tiny.pdf").read_bytes()


def test_the_cache_is_optional_and_never_an_error(tmp_path):
    """A cache folder that cannot be written (a file in its place) costs speed, not the build."""
    blocker = tmp_path / "cache"
    blocker.write_text("a file, not a folder")
    folder = tmp_path / "d"
    write_tiny(folder)
    assert check_all(load_sources([folder]), cache=Cache(blocker), say=lambda _: None)
    assert cache_module.Cache(blocker).get_checked("anything", None) is None



def test_a_cached_output_is_not_reused_once_its_derivation_changes(tmp_path):
    """The output cache (rendered .tex, generated module) is keyed by what they are made
    from: an edit of the prose or of an export's docstring alone, which changes no
    verdict, shows in the next build from the same cache."""
    from shrinkage import build as build_module

    folder, out, store = tmp_path / "d", tmp_path / "out", Cache(tmp_path / "cache")
    path = write_tiny(folder)

    def run():
        build_module.build(paths=[folder], out=out, pdf=False, cache=store, say=lambda _: None)
        return (out / "tiny.tex").read_text(), (out / "numeric.py").read_text()

    tex, module = run()
    assert "cleared of fractions" in tex and "The shrinkage factor." in module
    assert run() == (tex, module)  # from the cache, the same bytes
    path.write_text(path.read_text().replace("cleared of fractions.", "cleared of its fractions.")
                    .replace('"The shrinkage factor.")', '"The shrinkage factor of group j.")'))
    tex2, module2 = run()
    assert "cleared of its fractions" in tex2 and "cleared of fractions" not in tex2
    assert "The shrinkage factor of group j." in module2
