"""The reference a user's implementation is judged against: an exported (or any labelled)
result of a derivation, as a SymPy expression evaluated by mpmath at high precision.

The expression is the one the code generator prints (the step's right-hand side with
every definition substituted, group definitions inlined), but it is evaluated here with
mpmath from the exact float64 inputs, with the precision raised until two successive
precisions agree to 24 digits, so "expected" is right in every corner, whatever the
generated float64 code would lose.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Mapping

import mpmath
import numpy as np
import sympy as sp
from sympy.printing.pycode import MpmathPrinter

from ..codegen import code_names, inline_group_definitions, is_group_sum
from ..derive import CheckedDerivation, Derivation
from ..derive.walk import advance, walk
from ..errors import DerivationError

PRECISIONS = (30, 60, 120, 240)  # digits tried in turn until two agree
AGREEMENT = mpmath.mpf(10) ** -24  # relative agreement that makes a value the reference
_SOURCE = re.compile(r"From derivation `([A-Za-z_][A-Za-z0-9_]*)`")


class ReferencePrinter(MpmathPrinter):
    """mpmath code for an expression with sums over groups: ``Sum(f(x[j]), (j, 1, J))``
    prints as ``mpmath.fsum(f(x[j - 1]) for j in range(1, J + 1))``, each array over
    groups being a Python list of mpf and ``_groups`` its length (not ``J``, which may be
    an argument of its own)."""

    def _print_Sum(self, expr):
        if not is_group_sum(expr):
            raise DerivationError(f"the reference contains a sum that is not over groups: {expr}")
        index = self._print(expr.limits[0][0])
        return f"mpmath.fsum(({self._print(expr.function)}) for {index} in range(1, _groups + 1))"

    def _print_Indexed(self, expr):
        if len(expr.indices) != 1:
            raise DerivationError(f"the reference indexes {expr} by more than one index")
        return f"{self._print(expr.base.label)}[{self._print(expr.indices[0])} - 1]"


def _magnitude(expr: sp.Expr) -> sp.Expr | None:
    """Sum of the magnitudes of the terms, for a result that is a sum of terms (an Add,
    a sum over groups, a number times one of them); None for any other result."""
    if isinstance(expr, sp.Add):
        return sp.Add(*[_magnitude(a) or sp.Abs(a) for a in expr.args])
    if is_group_sum(expr):
        return sp.Sum(_magnitude(expr.function) or sp.Abs(expr.function), *expr.limits)
    if isinstance(expr, sp.Mul):
        coeff, rest = expr.as_coeff_Mul()
        if coeff != 1 and (inner := _magnitude(rest)) is not None:
            return abs(coeff) * inner
    return None


def _hoist(expr: sp.Expr) -> tuple[list[tuple[sp.Symbol, sp.Expr]], sp.Expr]:
    """Pull each group sum that does not depend on an enclosing sum's index (the GLS
    mean inside a sum of squared deviations) out into a local, so it is summed once,
    not once per group.  Innermost first, so a local may use earlier ones."""
    indices = {s.limits[0][0] for s in expr.atoms(sp.Sum)}
    locals_: list[tuple[sp.Symbol, sp.Expr]] = []
    while True:
        closed = [s for s in expr.atoms(sp.Sum) if is_group_sum(s) and not (s.free_symbols & indices)
                  and not any(isinstance(x, sp.Sum) for x in sp.preorder_traversal(s.function))]
        if not closed or closed == [expr]:
            return locals_, expr
        for s in sorted(closed, key=sp.default_sort_key):
            local = sp.Symbol(f"_sum{len(locals_)}")
            locals_.append((local, s))
            expr = expr.xreplace({s: local})


def _compile(expr: sp.Expr, args: tuple[str, ...]):
    locals_, expr = _hoist(expr)
    printer = ReferencePrinter()
    body = "".join(f"    {local} = {printer.doprint(e)}\n" for local, e in locals_)
    source = f"def reference({', '.join(args)}, _groups):\n{body}    return {printer.doprint(expr)}\n"
    namespace = {"mpmath": mpmath}
    exec(compile(source, "<shrinkage.testing reference>", "exec"), namespace)  # noqa: S102 (our printer's output)
    return namespace["reference"]


@dataclass(frozen=True)
class Reference:
    """A result as a function of named arguments, with each argument's domain.

    ``groups``: the arguments that are arrays over groups (one entry per group, summed
    over); every other argument is a scalar.  ``checked``: the expression comes from a
    :class:`CheckedDerivation` (else from the derivation as written; the build and
    ``shrinkage check`` check it, this module does not)."""

    name: str
    source: str
    expr: sp.Expr
    args: tuple[str, ...]
    domains: Mapping[str, str]
    groups: frozenset[str]
    checked: bool
    _value: object = field(repr=False, compare=False, default=None)
    _scale: object = field(repr=False, compare=False, default=None)

    @property
    def elementwise(self) -> bool:
        return not self.groups

    def evaluate(self, values: Mapping[str, object]) -> tuple[mpmath.mpf, mpmath.mpf, bool]:
        """(value, scale, limit) at exact float64 inputs.  ``scale`` is |value|, or the sum
        of the terms' magnitudes for a sum of terms; ``limit`` says a zero argument made
        the expression undefined, so its limit from above was taken instead."""
        try:
            return self._evaluate(values, tiny=None) + (False,)
        except ZeroDivisionError:
            zeros = [a for a in self.args if np.any(np.asarray(values[a]) == 0)]
            if not zeros:
                raise
            return self._evaluate(values, tiny=zeros) + (True,)

    def _evaluate(self, values, tiny):
        previous = None
        for dps in PRECISIONS:
            with mpmath.workdps(dps):
                nudge = mpmath.mpf(10) ** (-2 * dps)
                args = {a: _to_mpf(values[a], nudge if tiny and a in tiny else None) for a in self.args}
                size = {len(args[a]) for a in self.groups}
                if len(size) > 1:
                    raise ValueError(f"arrays over groups of different lengths: {sorted(size)}")
                J = size.pop() if size else 0
                value = self._value(**args, _groups=J)
                if isinstance(value, (int, float)):
                    value = mpmath.mpf(value)  # a constant branch of a piecewise result
                if not isinstance(value, mpmath.mpf):
                    raise ValueError(f"the reference {self.name} is not real at {dict(values)}: {value}")
                if previous is None:  # the scale needs no more than the first precision
                    scale = abs(self._scale(**args, _groups=J)) if self._scale is not None else abs(value)
            if previous is not None and abs(value - previous) <= AGREEMENT * max(scale, mpmath.mpf(10) ** -300):
                return value, scale
            previous = value
        raise ValueError(f"the reference {self.name} does not settle at {PRECISIONS[-1]} digits at {dict(values)}")


def _to_mpf(x, nudge):
    """Exact mpf of a float64 (a list of them for an array); zeros become ``nudge``."""
    fix = (lambda v: nudge if v == 0 else mpmath.mpf(v)) if nudge is not None else mpmath.mpf
    a = np.asarray(x, dtype=float)
    return fix(float(a)) if a.ndim == 0 else [fix(float(v)) for v in a.ravel()]


def make_reference(expr: sp.Expr, args, name: str, source: str, checked: bool, notation) -> Reference:
    """A Reference of ``expr`` as a function of the symbols ``args``."""
    from ..matrix.codegen import is_matrix_expr

    if is_matrix_expr(expr):
        raise DerivationError(f"{source} is a matrix result; assert_implements judges scalar results "
                              "(the matrix functions are tested against dense matrices in the suite)")
    names = tuple(a.name for a in args)
    extra = sorted(code_names(expr) - set(names))
    if extra:
        raise DerivationError(f"{source} uses {extra}, which are not among the arguments {list(names)}")
    groups = frozenset(x.base.label.name for x in expr.atoms(sp.Indexed))
    scalars = {s.name for s in expr.free_symbols if isinstance(s, sp.Symbol)} - {x.base.label.name for x in expr.atoms(sp.Indexed)}
    both = groups & scalars
    if both:
        raise DerivationError(f"{source}: {sorted(both)} appear both as scalars and as arrays over groups")
    domains = {a.name: _domain_of(a, notation) for a in args}
    magnitude = _magnitude(expr)
    return Reference(name, source, expr, names, domains, groups, checked,
                     _compile(expr, names), _compile(magnitude, names) if magnitude is not None else None)


def _domain_of(symbol: sp.Symbol, notation) -> str:
    """The domain a generated function accepts for this argument (sigma_b^2 = 0 too)."""
    try:
        return notation.quantity_of(symbol).accepted_domain
    except DerivationError:
        raise DerivationError(f"symbol {symbol} is not in the notation {notation.name!r}, so it has no "
                              "domain to draw test values from") from None


# ----------------------------------------------------------------------------------
# Finding the expression: a generated function's name, or (derivation, label)
# ----------------------------------------------------------------------------------
def definitions_of(derivation: Derivation) -> dict:
    """The definitions in force after the derivation's last step (the one walk of
    shrinkage.derive), without checking any step."""
    ctx = None
    for ctx in walk(derivation):
        pass
    return advance(ctx)[1] if ctx is not None else dict(derivation.resolved_notation().definitions)


def _expression(derivation, label: str, args) -> tuple[sp.Expr, bool]:
    """What the code generator prints for step ``label`` (as a function of ``args``)."""
    checked = isinstance(derivation, CheckedDerivation)
    cd = derivation if checked else CheckedDerivation(derivation, (), definitions_of(derivation))
    notation = cd.derivation.resolved_notation()
    return inline_group_definitions(cd.result(label), cd.definitions, tuple(args), notation), checked


def _load_file(path: Path) -> Derivation:
    spec = importlib.util.spec_from_file_location(f"shrinkage_derivations.{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        return module.derivation()
    except Exception as e:
        raise DerivationError(f"{path} failed to load: {type(e).__name__}: {e}") from None


@lru_cache(maxsize=64)
def _load_cached(path: str, mtime: float) -> Derivation:
    return _load_file(Path(path))


def load(path: Path) -> Derivation:
    """The derivation of one file (reloaded when the file changes)."""
    path = Path(path).resolve()
    if not path.is_file():
        raise DerivationError(f"no derivation file at {path}")
    return _load_cached(str(path), path.stat().st_mtime)


def _files(derivations) -> list[Path]:
    folder = Path(derivations)
    if folder.is_file():
        return [folder]
    if not folder.is_dir():
        raise DerivationError(f"no derivations folder at {folder}")
    return [p for p in sorted(folder.glob("*.py")) if not p.name.startswith("_")]


def _package_derivations() -> Path:
    from ..build import default_derivations_dir

    return default_derivations_dir()


def for_function(name: str, module: ModuleType | None = None, derivations=None) -> Reference:
    """The reference of an exported function: the export named ``name`` in the files of
    ``derivations`` (a folder or a file).  Without ``derivations``: the package's own, and
    ``name`` must be a function of ``shrinkage.numeric``.  With ``module`` (a generated
    module), ``name`` must be one of its functions, and its docstring ("From derivation
    `blup` ...") says which file to load; a module whose function takes other arguments
    than the export is stale (rebuild it).  ``module`` may be a path to a .py file."""
    if isinstance(module, (str, Path)):
        module = _import_path(Path(module))
    if module is None and derivations is None:
        from .. import numeric as module  # the package's own generated functions
    if derivations is None:
        if module.__name__ != "shrinkage.numeric":
            raise DerivationError(f"pass derivations=FOLDER: where are the derivations of {module.__name__}?")
        derivations = _package_derivations()
    files = _files(derivations)
    if module is not None:
        generated = getattr(module, name, None)
        if not callable(generated):
            public = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_")
                            and getattr(v, "__module__", "") == module.__name__)
            raise DerivationError(f"{module.__name__} has no function {name!r}; it has {public}")
        hint = _SOURCE.search(generated.__doc__ or "")
        if hint:
            files = [p for p in files if p.stem == hint.group(1)] or files
    for path in files:
        for e in load(path).exports:
            if e.function == name:
                ref = _exported(str(path.resolve()), path.stat().st_mtime, name)
                if module is not None:
                    _same_arguments(getattr(module, name), ref, module)
                return ref
    raise DerivationError(f"no derivation in {derivations} exports a function {name!r}")


def _same_arguments(generated, ref: Reference, module: ModuleType) -> None:
    try:
        params = tuple(inspect.signature(generated).parameters)
    except (TypeError, ValueError):
        return
    if params != ref.args:
        raise DerivationError(f"{module.__name__}.{ref.name} takes ({', '.join(params)}) but the derivation exports "
                              f"it with ({', '.join(ref.args)}): the module is stale, build it again")


def _import_path(path: Path) -> ModuleType:
    """A generated module imported from its file (it needs numpy alone)."""
    if not path.is_file():
        raise DerivationError(f"no generated module at {path}")
    spec = importlib.util.spec_from_file_location(f"shrinkage_generated_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@lru_cache(maxsize=256)
def _exported(path: str, mtime: float, name: str) -> Reference:
    """The reference of export ``name`` of one file, made once per version of the file
    (substituting the definitions runs SymPy's summation, seconds for a criterion)."""
    d = load(Path(path))
    e = next(e for e in d.exports if e.function == name)
    expr, checked = _expression(d, e.label, e.args)
    number = d.step_index(e.label) + 1
    return make_reference(expr, e.args, name, f"derivation `{d.name}`, step {number} ({e.label!r})", checked,
                          d.resolved_notation())


def for_step(derivation, label: str, derivations=None, args=None) -> Reference:
    """The reference of any labelled step: ``derivation`` is a (Checked)Derivation, a path
    to a derivation file, or the name of one in ``derivations``.  Its arguments are those
    of an export of the same step, else ``args``, else the expression's own symbols."""
    if isinstance(derivation, (str, Path)):
        path = Path(derivation)
        if not path.suffix:
            path = Path(derivations if derivations is not None else _package_derivations()) / f"{derivation}.py"
        derivation = load(path)
    d = derivation.derivation if isinstance(derivation, CheckedDerivation) else derivation
    exported = [e.args for e in d.exports if e.label == label]
    if args is None and exported:
        args = exported[0]
    expr, checked = _expression(derivation, label, args or ())
    if args is None:
        args = _symbols_by_name(expr)
    number = d.step_index(label) + 1
    return make_reference(expr, args, f"{d.name}:{label}", f"derivation `{d.name}`, step {number} ({label!r})", checked,
                          d.resolved_notation())


def _symbols_by_name(expr: sp.Expr) -> tuple[sp.Symbol, ...]:
    found = {s.name: s for s in expr.free_symbols if isinstance(s, sp.Symbol)}
    found.update({x.base.label.name: x.base.label for x in expr.atoms(sp.Indexed)})
    for x in expr.atoms(sp.Indexed):  # summation indices are not arguments
        for ix in x.indices:
            found.pop(getattr(ix, "name", None), None)
    for s in expr.atoms(sp.Sum):
        found.pop(s.limits[0][0].name, None)
        found.pop(s.limits[0][2].name, None)
    return tuple(found[k] for k in sorted(found))
