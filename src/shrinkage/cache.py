"""The cache of checked derivations (and of compiled PDFs), so that a rebuild with
nothing changed takes seconds instead of minutes.

A checked derivation is stored under a key that hashes everything its verdict depends
on: the derivation file, every file it imports from the shrinkage package or from its
own folder (followed transitively, which reaches the engine), the engine's modules
themselves, and the versions of Python, SymPy and mpmath.  Change any of these and the
key changes, so a stale verdict is never reused.

Storing: a :class:`~shrinkage.derive.CheckedDerivation` refers to the expressions of the
derivation it checked.  Pickling them by value would rebuild each SymPy expression
through its constructor, which evaluates it and so changes the author's unevaluated
forms (and the documents printed from them).  So :func:`dumps` stores every object that
belongs to the derivation as a reference (its position in a fixed walk of the
derivation), and :func:`loads` puts the freshly loaded derivation's own objects back in.
The same transport carries results from worker processes to the build.

Where: ``$SHRINKAGE_CACHE_DIR``, else ``$XDG_CACHE_HOME/shrinkage``, else
``~/.cache/shrinkage``.  Safe to delete at any time.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib.util
import io
import json
import os
import pickle
import sys
import types
from pathlib import Path
from typing import Iterator

import mpmath
import sympy as sp

from .paths import CACHE_ENV, cache_dir  # noqa: F401 - cache_dir is this module's public name too
from .texio import write_atomic

FORMAT = "shrinkage-check-cache-1"  # bump when what is stored changes shape
ENGINE_MODULES = ("shrinkage.derive",)  # always part of a key


# ----------------------------------------------------------------------------------
# The key: the sources a verdict depends on
# ----------------------------------------------------------------------------------
_SPECS: dict[str, Path | None] = {}  # module name -> its file, looked up once per process


def _spec_file(name: str) -> Path | None:
    """The source file of module ``name`` of the shrinkage package, or None (the
    package's modules do not come and go while a build runs)."""
    if name not in _SPECS:
        _SPECS[name] = _find_spec_file(name)
    return _SPECS[name]


def _find_spec_file(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, AttributeError, ValueError):  # a parent that is a module, not a package
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


_BLOCKS = (ast.stmt, ast.excepthandler, ast.match_case)  # what holds statements


def _statements(tree: ast.AST) -> Iterator[ast.AST]:
    """Every statement in ``tree``, at any depth (an import is always a statement, so
    expressions need not be visited: a few times faster than ast.walk)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            stack.extend(x for x in getattr(node, field, ()) if isinstance(x, _BLOCKS))


def _imported(tree: ast.AST, package: str | None) -> Iterator[tuple[str, tuple[str, ...]]]:
    """(module, names imported from it) for each import statement; relative imports are
    resolved against ``package`` (the package of the file, None for a script)."""
    for node in _statements(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if not package:
                    continue
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            yield module, tuple(a.name for a in node.names)


_IMPORTS: dict[tuple[bytes, str | None], tuple] = {}  # (sha256 of a file, its package) -> its imports


def _imports_of(file: Path, package: str | None) -> tuple:
    """The imports of ``file`` (see :func:`_imported`), parsed once per process for each
    content: a build computes many keys that share the engine's files."""
    try:
        data = file.read_bytes()
    except OSError:
        return ()
    memo = (hashlib.sha256(data).digest(), package)
    if memo not in _IMPORTS:
        try:
            _IMPORTS[memo] = tuple(_imported(ast.parse(data, filename=str(file)), package))
        except (SyntaxError, ValueError):
            _IMPORTS[memo] = ()  # loading reports it; the bytes are still hashed
    return _IMPORTS[memo]


def dependencies(path: Path) -> dict[str, Path]:
    """Every source file whose content can change the verdict on the derivation file
    ``path``: the file, what it imports from the shrinkage package or its own folder
    (transitively) and the engine.  Keyed by a name that does not depend on where the
    files are installed ("shrinkage.derive.checks", "./helpers.py")."""
    path = Path(path).resolve()
    folder = path.parent
    found: dict[str, Path] = {}
    todo: list[tuple[str, Path, str | None]] = [(f"./{path.name}", path, None)]
    for root in ENGINE_MODULES:
        file = _spec_file(root)
        if file is not None:
            todo.append((root, file, root))
    beside: dict[str, tuple | None] = {}  # top-level module name -> the file of that name in the folder

    def resolve(module: str) -> tuple[str, Path, str | None] | None:
        if module == "shrinkage" or module.startswith("shrinkage."):
            file = _spec_file(module)
            if file is None:
                return None
            package = module if file.name == "__init__.py" else module.rpartition(".")[0]
            return module, file, package
        top = module.split(".")[0]
        if top not in beside:
            beside[top] = next(((f"./{c.relative_to(folder)}", c, None)
                                for c in (folder / f"{top}.py", folder / top / "__init__.py") if c.is_file()), None)
        return beside[top]  # None: outside, covered by the versions in the key

    while todo:
        name, file, package = todo.pop()
        if name in found:
            continue
        found[name] = file
        for module, names in _imports_of(file, package):
            submodules = [r for r in (resolve(f"{module}.{n}") for n in names if n != "*") if r]
            todo.extend(submodules)
            if len(submodules) < len(names) or not names:  # attributes of the module itself
                hit = resolve(module)
                if hit and not (hit[0] == "shrinkage" and names):  # the package's __init__ only re-exports
                    todo.append(hit)
    return found


def check_key(path: Path, derivation=None) -> str:
    """The cache key of the checked derivation in file ``path``.  Given the loaded
    ``derivation``, the files of the derivations it cites count too (a citation loads
    its source by name, beside the file, which no import statement shows)."""
    h = hashlib.sha256()
    for part in (FORMAT, sys.version.split()[0], sp.__version__, mpmath.__version__):
        h.update(part.encode() + b"\0")
    files = dependencies(path)
    for other in cited(derivation) if derivation is not None else ():
        source = Path(path).resolve().parent / f"{other.name}.py"
        files.update(dependencies(source) if source.is_file() else {f"./{other.name}.py": source})
    for name, file in sorted(files.items()):
        try:
            data = file.read_bytes()
        except OSError:
            data = b"<unreadable>"
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


# ----------------------------------------------------------------------------------
# Pickling a checked derivation by reference to the derivation's own objects
# ----------------------------------------------------------------------------------
def _walk(roots) -> list:
    """Every SymPy object and every other object (dataclass or plain instance, such as
    a Notation) reachable from ``roots``, in an order fixed by the derivation's
    structure, so that two loads of it agree.  SymPy nodes are walked as a tree, every
    occurrence counted: which equal subexpressions are one object depends on SymPy's
    cache, which differs from process to process."""
    seen: set[int] = set()  # everything but SymPy nodes: made by the derivation's own code
    order: list = []
    stack = list(reversed(roots))
    while stack:
        obj = stack.pop()
        if isinstance(obj, sp.Basic):
            order.append(obj)
            stack.extend(reversed(obj.args))
            continue
        if id(obj) in seen or isinstance(obj, _ATOMS) or callable(obj) or isinstance(obj, types.ModuleType):
            continue
        seen.add(id(obj))
        if isinstance(obj, (tuple, list, frozenset, set)):
            items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
            stack.extend(reversed(list(items)))
        elif isinstance(obj, dict):
            stack.extend(reversed([x for kv in obj.items() for x in kv]))
        elif dataclasses.is_dataclass(obj):
            order.append(obj)
            stack.extend(reversed([getattr(obj, f.name) for f in dataclasses.fields(obj)]))
        elif hasattr(obj, "__dict__"):
            order.append(obj)
            stack.extend(reversed(list(vars(obj).values())))
    return order


_ATOMS = (str, bytes, int, float, complex, bool, type(None), type)


def _roots(derivation) -> list:
    roots = [derivation]
    resolve = getattr(derivation, "resolved_notation", None)
    if resolve is not None:
        roots.append(resolve())
    return roots


def cited(derivation) -> list:
    """The other derivations ``derivation`` cites (directly or through them), each once."""
    kind = type(derivation)
    found = {}
    for obj in _walk([derivation])[1:]:
        if isinstance(obj, kind) and obj is not derivation:
            found.setdefault(obj.name, obj)
    return list(found.values())


class CacheMismatch(Exception):
    """A stored result does not fit the derivation it is loaded against."""


class _Pickler(pickle.Pickler):
    def __init__(self, file, derivation):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._refs: dict[int, tuple[int, str]] = {}
        for k, o in enumerate(_walk(_roots(derivation))):
            self._refs.setdefault(id(o), (k, type(o).__qualname__))  # the first occurrence

    def persistent_id(self, obj):
        return self._refs.get(id(obj))


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, derivation):
        super().__init__(file)
        self._objects = _walk(_roots(derivation))

    def persistent_load(self, pid):
        k, kind = pid
        if k >= len(self._objects) or type(self._objects[k]).__qualname__ != kind:
            raise CacheMismatch(f"object {k} is not a {kind}")
        return self._objects[k]


def dumps(checked, derivation) -> bytes:
    """``checked`` (anything holding objects of ``derivation``) as bytes."""
    buffer = io.BytesIO()
    _Pickler(buffer, derivation).dump(checked)
    return buffer.getvalue()


def loads(data: bytes, derivation):
    """The inverse of :func:`dumps`, against a freshly loaded ``derivation``."""
    return _Unpickler(io.BytesIO(data), derivation).load()


# ----------------------------------------------------------------------------------
# The store
# ----------------------------------------------------------------------------------
class Cache:
    """Checked derivations by key, compiled PDFs by the hash of their source, and how
    long each derivation took to check (to start the slowest first)."""

    def __init__(self, folder: Path | None = None):
        self.folder = Path(folder) if folder is not None else cache_dir()

    def _file(self, kind: str, key: str, suffix: str) -> Path:
        return self.folder / kind / f"{key}{suffix}"

    def get_checked(self, key: str, derivation):
        """The stored result for ``key`` loaded against ``derivation``, or None."""
        file = self._file("checks", key, ".pickle")
        try:
            data = file.read_bytes()
        except OSError:
            return None
        try:
            return loads(data, derivation)
        except Exception:  # written by another version, truncated, or not this derivation
            file.unlink(missing_ok=True)
            return None

    def put_checked(self, key: str, data: bytes) -> None:
        self._put(self._file("checks", key, ".pickle"), data)

    def get_pdf(self, key: str) -> bytes | None:
        try:
            data = self._file("pdf", key, ".pdf").read_bytes()
        except OSError:
            return None
        return data if data.startswith(b"%PDF") else None

    def put_pdf(self, key: str, data: bytes) -> None:
        self._put(self._file("pdf", key, ".pdf"), data)

    def get_text(self, key: str) -> str | None:
        """A rendered document or generated module stored under ``key`` (see :func:`output_key`)."""
        try:
            return self._file("out", key, ".txt").read_bytes().decode()
        except (OSError, UnicodeDecodeError):
            return None

    def put_text(self, key: str, text: str) -> None:
        self._put(self._file("out", key, ".txt"), text.encode())

    def times(self) -> dict[str, float]:
        try:
            return {k: float(v) for k, v in json.loads((self.folder / "times.json").read_text()).items()}
        except (OSError, ValueError, AttributeError, TypeError):
            return {}

    def record_times(self, seconds: dict[str, float]) -> None:
        if seconds:
            merged = {**self.times(), **{k: round(v, 2) for k, v in seconds.items()}}
            self._put(self.folder / "times.json", json.dumps(merged, indent=1, sort_keys=True).encode())

    @staticmethod
    def _put(file: Path, data: bytes) -> None:
        """A cache that cannot be written is no error: the build goes on without it."""
        try:
            write_atomic(file, data)
        except Exception:
            pass


def pdf_key(name: str, tex: bytes, tex_version: str) -> str:
    return hashlib.sha256(b"\0".join([FORMAT.encode(), name.encode(), tex_version.encode(), tex])).hexdigest()


def package_fingerprint() -> str:
    """A hash of every file of the shrinkage package (its code and its data: the renderer,
    the code generator, the data sets the answer fits) and of the versions of Python,
    SymPy, mpmath and NumPy: with the check keys of the derivations, everything a
    rendered document or a generated module depends on.  Coarse on purpose: any edit
    of the package renders everything again, but nothing it reads is ever missed."""
    import numpy

    from .paths import PACKAGE_DIR

    h = hashlib.sha256()
    for part in (FORMAT, sys.version.split()[0], sp.__version__, mpmath.__version__, numpy.__version__):
        h.update(part.encode() + b"\0")
    for file in sorted(PACKAGE_DIR.rglob("*")):
        relative = file.relative_to(PACKAGE_DIR)
        if "__pycache__" in relative.parts or relative.parts[0] == "_docs" or not file.is_file():
            continue  # compiled bytecode, and the installed documents (outputs, not inputs)
        h.update(relative.as_posix().encode() + b"\0" + hashlib.sha256(file.read_bytes()).digest())
    return h.hexdigest()


def output_key(kind: str, fingerprint: str, check_keys: dict[str, str]) -> str:
    """The key of an output of kind ``kind`` ("tex:blup", "code:package", ...) made from
    the derivations whose check keys are ``check_keys`` (name -> key) by the package
    whose :func:`package_fingerprint` is ``fingerprint``."""
    h = hashlib.sha256(b"\0".join([FORMAT.encode(), b"output", kind.encode(), fingerprint.encode()]))
    for name, key in sorted(check_keys.items()):
        h.update(b"\0" + name.encode() + b"=" + key.encode())
    return h.hexdigest()
