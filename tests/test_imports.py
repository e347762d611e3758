"""The picture of the package's imports has no circle but the ones named here (issue 20 item 4).

The graph is built statically, as a reader counts imports: ast over every module of
src/shrinkage, module-level imports and imports inside functions alike (an import put
in a function to dodge a circle is still an edge of it).  ``from pkg import name`` is an
edge to the module pkg.name when there is one, else to pkg (its __init__); an import is
never an edge to the parent packages Python loads along the way.

KNOWN_CIRCLES names the strongly connected components that are still to be removed, each
with the edge whose removal would break it.  The test asserts the circles found are
exactly these: it fails when a new circle appears, and when one is removed without its
entry being deleted here (so the list stays a true picture of the work left).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "shrinkage"

# members of each circle (modules, dotted below shrinkage) -> (the edges to cut, each (importer, imported); why)
KNOWN_CIRCLES = {
    frozenset({"matrix.checking", "matrix.evaluate", "matrix.gaussian", "matrix.instances", "matrix.model",
               "matrix.mutate", "matrix.notation", "matrix.steps"}): (
        [("matrix.notation", "matrix.mutate")],
        "notation reads mutate.MUTATION (the mutation suite's switch) inside a function: pass it in"),
}


def modules() -> dict[str, Path]:
    """Dotted name (below shrinkage; the package itself is '') -> file."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _absolute(node: ast.ImportFrom, name: str, is_package: bool) -> str | None:
    """The dotted module ``from ... import`` names (below shrinkage), or None outside it."""
    if node.level == 0:
        if not (node.module or "").startswith("shrinkage"):
            return None
        return (node.module or "").removeprefix("shrinkage").lstrip(".")
    base = name.split(".") if name else []
    drop = node.level - 1 if is_package else node.level
    base = base[:len(base) - drop] if drop else base
    return ".".join(base + ([node.module] if node.module else []))


class _Imports(ast.NodeVisitor):
    """(target module, inside a function) for every import statement of one module."""

    def __init__(self, name: str, is_package: bool, known: dict):
        self.name, self.is_package, self.known = name, is_package, known
        self.depth, self.found = 0, []
        self.inside = {"package": 0, "other": 0}  # import statements inside functions, by what they import

    def visit_FunctionDef(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def _count(self, ours: bool) -> None:
        if self.depth:
            self.inside["package" if ours else "other"] += 1

    def visit_Import(self, node):
        self._count(any(a.name == "shrinkage" or a.name.startswith("shrinkage.") for a in node.names))
        for alias in node.names:
            if alias.name == "shrinkage" or alias.name.startswith("shrinkage."):
                self.found.append((alias.name.removeprefix("shrinkage").lstrip("."), self.depth > 0))
            else:
                self.found.append((None, self.depth > 0))

    def visit_ImportFrom(self, node):
        base = _absolute(node, self.name, self.is_package)
        self._count(base is not None)
        if base is None:
            self.found.append((None, self.depth > 0))
            return
        for alias in node.names:
            sub = f"{base}.{alias.name}" if base else alias.name
            self.found.append((sub if sub in self.known else base, self.depth > 0))


def _visitors() -> dict[str, _Imports]:
    known = modules()
    out = {}
    for name, path in known.items():
        out[name] = _Imports(name, path.name == "__init__.py", known)
        out[name].visit(ast.parse(path.read_text(), str(path)))
    return out


def imports() -> dict[str, list]:
    """Module -> [(imported module below shrinkage or None for another package, inside a function)]."""
    return {name: v.found for name, v in _visitors().items()}


def imports_inside_functions() -> dict[str, int]:
    """Import statements inside functions, of the package's own modules and of others (issue 20 counted 105)."""
    out = {"package": 0, "other": 0}
    for v in _visitors().values():
        for k in out:
            out[k] += v.inside[k]
    return out


def graph() -> dict[str, set]:
    return {m: {t for t, _ in found if t is not None and t != m} for m, found in imports().items()}


def circles(edges: dict[str, set]) -> list[frozenset]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = set()
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.add(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(frozenset(comp))
    return out


def test_circles_are_exactly_the_known_ones():
    found = set(circles(graph()))
    expected = set(KNOWN_CIRCLES)
    new = [sorted(c) for c in found - expected]
    gone = [sorted(c) for c in expected - found]
    assert not new, f"new import circle(s): {new}"
    assert not gone, f"circle(s) removed or changed: delete or update their KNOWN_CIRCLES entry: {gone}"


def test_each_named_cut_breaks_its_circle():
    """The edges named to cut are edges of their circle, cutting them leaves it without
    one, and each is needed (cutting the others alone leaves a circle)."""
    edges = graph()

    def inner(members, cuts):
        return {m: {t for t in edges[m] & members if (m, t) not in cuts} for m in members}

    for members, (cuts, _why) in KNOWN_CIRCLES.items():
        for importer, imported in cuts:
            assert importer in members and imported in members, (importer, imported)
            assert imported in edges[importer], f"{importer} does not import {imported}"
        assert circles(inner(members, cuts)) == [], f"cutting {cuts} leaves a circle in {sorted(members)}"
        for cut in cuts:
            rest = [c for c in cuts if c != cut]
            assert circles(inner(members, rest)), f"{cut} need not be cut: {rest} break {sorted(members)}"


def test_circles_finds_a_circle_and_only_circles():
    """The finder itself, on graphs whose answer is plain: a chain, a triangle, two circles joined one way."""
    assert circles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [frozenset("abc")]
    found = circles({"a": {"b"}, "b": {"a", "c"}, "c": {"d"}, "d": {"c"}, "e": {"a"}})
    assert sorted(map(sorted, found)) == [["a", "b"], ["c", "d"]]


def test_an_import_inside_a_function_is_an_edge(tmp_path, monkeypatch):
    """Relative imports resolved from a package and from a module, inside functions too."""
    pkg = tmp_path / "shrinkage"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..c import x\n")
    (pkg / "c.py").write_text("import numpy\nfrom shrinkage import sub\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", pkg)
    assert graph() == {"": {"sub.b"}, "c": {"sub"}, "sub": set(), "sub.b": {"c"}}
    assert [inside for _, inside in imports()["sub.b"]] == [True]
    assert imports_inside_functions() == {"package": 1, "other": 0}


if __name__ == "__main__":  # python3 tests/test_imports.py: the picture in words
    edges = graph()
    for c in circles(edges):
        print(f"circle of {len(c)}:", "; ".join(f"{m} -> {', '.join(sorted(edges[m] & c))}" for m in sorted(c)))
    print("import statements inside functions:", imports_inside_functions())
