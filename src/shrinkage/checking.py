"""Load derivation files and check them: from the cache when nothing they depend on
changed, otherwise in parallel worker processes, reporting each step as it goes.

Workers are fresh Python processes (``python -c "...worker_main()"``), not forks and
not multiprocessing's spawn, which re-runs the caller's main script and so fails in a
script without an ``if __name__ == "__main__"`` guard.  Each worker loads the
derivation file itself, checks it, and sends the result back through
:func:`shrinkage.cache.dumps`, which keeps the derivation's own objects as references.  The slowest derivations (by the times recorded in the cache) start first,
so that two cores finish together.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import pickle
import queue as queue_module
import signal
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from . import cache as cache_module
from .derive import CheckedDerivation, Derivation, check
from .errors import DerivationError, ShrinkageError
from .passes import cores


# ----------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """A derivation and the file it was loaded from (None: made in code, not cached)."""

    derivation: Derivation
    path: Path | None = None

    @property
    def name(self) -> str:
        return self.derivation.name


def derivation_files(paths: Iterable[Path]) -> list[Path]:
    """The derivation files named by ``paths``: files as given, folders as their *.py
    files (those starting with "_" are helpers, not derivations), sorted by name."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            inside = sorted(f for f in p.glob("*.py") if not f.name.startswith("_"))
            if not inside:
                raise DerivationError(f"no derivations in {p}")
            files += inside
        elif p.is_file():
            if p.suffix != ".py":
                raise DerivationError(f"{p} is not a Python file (a derivation file ends in .py)")
            files.append(p)
        elif p.suffix == ".py":
            raise DerivationError(f"no derivation file at {p}")
        else:
            raise DerivationError(f"no derivations folder at {p}")
    return files


def load_file(path: Path) -> Derivation:
    """Import ``path`` and call its ``derivation()``.  Every way this can fail is a
    one-line DerivationError naming the file.  Its folder is importable meanwhile, so a
    derivation can import a helper module (or another derivation) beside it."""
    path = Path(path)
    spec = importlib.util.spec_from_file_location(f"shrinkage_derivations.{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        raise DerivationError(f"{path}, line {e.lineno}: syntax error: {e.msg}") from None
    except DerivationError as e:
        raise DerivationError(f"{path}: {e}") from None
    except Exception as e:  # the file's own code failed: say where, not a traceback
        raise DerivationError(f"{path} failed to load: {type(e).__name__}: {e}") from None
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    make = getattr(module, "derivation", None)
    if make is None or not callable(make):
        raise DerivationError(f"{path} defines no derivation() function")
    try:
        d = make()
    except DerivationError as e:
        raise DerivationError(f"{path}: derivation() failed: {e}") from None
    except Exception as e:
        raise DerivationError(f"{path}: derivation() failed: {type(e).__name__}: {e}") from None
    if not isinstance(d, Derivation):
        raise DerivationError(f"{path}: derivation() returned {type(d).__name__}, not a Derivation "
                              "(end it with `return Derivation(...).then(...)`)")
    if d.name != path.stem:
        raise DerivationError(f"{path} builds a derivation named {d.name!r}; name it after its file")
    return d


def load_sources(paths: Iterable[Path]) -> list[Source]:
    """Every derivation named by ``paths`` (see :func:`derivation_files`), sorted by name."""
    sources = [Source(load_file(f), f) for f in derivation_files(paths)]
    seen: dict[str, Path] = {}
    for s in sources:
        if s.name in seen:
            raise DerivationError(f"two derivations named {s.name!r}: {seen[s.name]} and {s.path}")
        seen[s.name] = s.path
    return sorted(sources, key=lambda s: s.name)


# ----------------------------------------------------------------------------------
# Progress: what the terminal shows
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Event:
    """One thing that happened while checking.  kind: "start" (a derivation is being
    checked, or was found in the cache: ``cached``), "step" (step ``number`` of
    ``total`` is about to be checked, ``verdict`` None, or was, with its verdict),
    "done" (``checked``, after ``seconds``)."""

    kind: str
    name: str
    total: int = 0
    number: int = 0
    tag: str = ""
    verdict: object = None
    cached: bool = False
    seconds: float = 0.0
    checked: CheckedDerivation | None = None


Report = Callable[[Event], None]


def _quiet(event: Event) -> None:
    pass


def _check_one(d: Derivation, report: Report, timeout: float | None, sources: dict) -> CheckedDerivation:
    """check(d), reporting every step; ``sources`` (checked derivations by name) spares
    checking a cited derivation again, and receives those checked here."""
    total = len(d.steps)

    def on_step(name, number, tag, verdict):
        report(Event("step", name, total if name == d.name else 0, number, tag, verdict))

    return check(d, timeout=timeout, on_step=on_step, sources=sources).with_results()


def replay(cd: CheckedDerivation, report: Report) -> None:
    """Report the steps of a derivation found in the cache, as if checked now."""
    total = len(cd.steps)
    for cs in cd.steps:
        tag = getattr(cs.step, "label", "") or getattr(cs.step, "kind", "step")
        report(Event("step", cd.derivation.name, total, cs.number, tag, cs.verdict, cached=True))


# ----------------------------------------------------------------------------------
# Workers: plain subprocesses running worker_main(), talking in pickled frames
# ----------------------------------------------------------------------------------
def _exception_state(e: BaseException) -> tuple:
    return (type(e).__module__, type(e).__qualname__, e.args, dict(vars(e)))


def _rebuild_exception(state: tuple) -> BaseException:
    module, qualname, args, attributes = state
    try:
        cls = getattr(sys.modules.get(module) or importlib.import_module(module), qualname)
        e = cls.__new__(cls)  # no __init__: StepError's takes its parts, args hold the message
        e.args = args
        e.__dict__.update(attributes)
        return e
    except Exception:
        return DerivationError(str(args[0]) if args else qualname)


def _send(stream, message) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<Q", len(data)) + data)
    stream.flush()


def _receive(stream):
    """The next message, or None at the end of the stream."""
    head = stream.read(8)
    if len(head) < 8:
        return None
    (size,) = struct.unpack("<Q", head)
    data = stream.read(size)
    return pickle.loads(data) if len(data) == size else None


def _check_task(path: str, timeout, cited: dict, send) -> tuple:
    """("ok", result bytes, seconds) or ("error", exception state) or ("local", why).
    ``cited``: results the build already has for derivations this one cites."""
    start = time.perf_counter()
    try:
        d = load_file(Path(path))
        sources = {}
        for other in cache_module.cited(d):
            if other.name in cited:
                with contextlib.suppress(Exception):  # not the same derivation: checked here instead
                    sources[other.name] = cache_module.loads(cited[other.name], other)
        cd = _check_one(d, lambda e: send(("event", e)), timeout, sources)
    except Exception as e:
        return ("error", _exception_state(e))
    try:
        data = cache_module.dumps(cd, d)
    except Exception as e:  # e.g. a class defined in the derivation file: check it in the build
        return ("local", f"{type(e).__name__}: {e}")
    return ("ok", data, time.perf_counter() - start)


def worker_main() -> None:
    """A checking process: read (path, timeout) tasks from stdin until it closes; for
    each, send progress events, then the outcome.  Ctrl-C is the build's to handle: it
    stops the workers itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    inbox, outbox = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a print() in a derivation must not corrupt the frames
    while True:
        task = _receive(inbox)
        if task is None:
            return
        _send(outbox, ("result", _check_task(*task, send=lambda m: _send(outbox, m))))


def default_jobs() -> int:
    return cores()


class _Worker:
    """One checking subprocess and a thread that forwards its messages to ``inbox``."""

    def __init__(self, number: int, inbox: queue_module.Queue):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent.parent),
                                                            *filter(None, [os.environ.get("PYTHONPATH")])])}
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from shrinkage.checking import worker_main; worker_main()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self.task: Source | None = None
        self.reader = threading.Thread(target=self._forward, args=(number, inbox), daemon=True)
        self.reader.start()

    def _forward(self, number: int, inbox: queue_module.Queue) -> None:
        while True:
            message = _receive(self.process.stdout)
            inbox.put((number, message))
            if message is None:
                return

    def give(self, source: Source, timeout, cited: dict) -> None:
        self.task = source
        _send(self.process.stdin, (str(source.path.resolve()), timeout, cited))

    def stop(self, kill: bool) -> None:
        with contextlib.suppress(OSError):
            if kill:
                self.process.kill()
            else:
                self.process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=None if kill else 10)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.reader.join(timeout=10)  # it stops at the end of the stream
        for stream in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                stream.close()


def _check_parallel(todo: list[Source], jobs: int, report: Report, timeout, done: dict,
                    finished: Callable[[Source, CheckedDerivation, float | None], None]) -> None:
    """Check ``todo`` in ``jobs`` worker processes, each task as soon as a worker is free
    and the derivations it cites that are in ``todo`` are done (in ``done``, sent to the
    worker with the task); ``finished`` gets each result as it arrives.  The first
    failure stops every worker and is raised here."""
    inbox: queue_module.Queue = queue_module.Queue()
    names = {s.name for s in todo}
    needs = {s.name: {c.name for c in cache_module.cited(s.derivation)} & names for s in todo}
    waiting = list(todo)
    workers: list[_Worker] = []
    clean = False

    def next_task() -> Source | None:
        for s in waiting:
            if needs[s.name] <= done.keys():
                waiting.remove(s)
                return s
        return None

    def assign(w: _Worker) -> None:
        s = next_task()
        w.task = None
        if s is not None:
            cited = {c.name: cache_module.dumps(done[c.name], done[c.name].derivation)
                     for c in cache_module.cited(s.derivation) if c.name in done}
            w.give(s, timeout, cited)

    try:
        workers = [_Worker(k, inbox) for k in range(jobs)]
        for w in workers:
            assign(w)
        while any(w.task is not None for w in workers):
            try:
                number, message = inbox.get(timeout=0.5)  # a timeout keeps Ctrl-C and SIGTERM responsive
            except queue_module.Empty:
                continue
            w = workers[number]
            if message is None:
                raise ShrinkageError(f"the process checking {w.task.name!r} stopped unexpectedly "
                                     f"(exit status {w.process.wait()})")
            if message[0] == "event":
                report(message[1])
                continue
            outcome, source = message[1], w.task
            if outcome[0] == "error":
                raise _rebuild_exception(outcome[1])
            cd = None
            if outcome[0] == "ok":
                try:
                    cd = cache_module.loads(outcome[1], source.derivation)
                except Exception:  # the worker's derivation differs from ours: check it here
                    cd = None
            if cd is None:
                finished(source, _check_one(source.derivation, report, timeout, dict(done)), None)
            else:
                finished(source, cd, outcome[2])
            w.task = None
            for idle in workers:  # a result may unblock tasks that wait for it
                if idle.task is None:
                    assign(idle)
        if waiting:
            raise ShrinkageError(f"derivations cite each other in a circle: {', '.join(s.name for s in waiting)}")
        clean = True
    finally:
        for w in workers:  # on an error or interruption: stop the other checks now
            w.stop(kill=not clean)


def _in_citation_order(todo: list[Source]) -> list[Source]:
    """``todo`` in its order, except that a derivation comes after those it cites."""
    names = {s.name for s in todo}
    needs = {s.name: {c.name for c in cache_module.cited(s.derivation)} & names for s in todo}
    ordered: list[Source] = []
    waiting = list(todo)
    while waiting:
        ready = next((s for s in waiting if needs[s.name] <= {o.name for o in ordered}), waiting[0])
        waiting.remove(ready)
        ordered.append(ready)
    return ordered


def _critical_paths(todo: list[Source], cost: Callable[[Source], float]) -> dict[str, float]:
    """For each derivation, its expected cost plus that of the costliest chain of
    derivations waiting for it (they cite it, directly or not): checking the longest
    chains first keeps a cited derivation from holding back the end of the build.
    ``cost``: the seconds it took last time, or its number of steps."""
    by_name = {s.name: s for s in todo}
    citers: dict[str, list[str]] = {s.name: [] for s in todo}
    for s in todo:
        for c in cache_module.cited(s.derivation):
            if c.name in citers:
                citers[c.name].append(s.name)
    rank: dict[str, float] = {}

    def of(name: str, seen: frozenset = frozenset()) -> float:
        if name not in rank:
            later = [of(c, seen | {name}) for c in citers[name] if c not in seen]  # a circle is reported later
            rank[name] = cost(by_name[name]) + max(later, default=0.0)
        return rank[name]

    for s in todo:
        of(s.name)
    return rank


def check_sources(sources: list[Source], *, cache: cache_module.Cache | None = None, jobs: int = 1,
                  report: Report = _quiet, timeout: float | None = None,
                  keys: dict[str, str] | None = None) -> list[CheckedDerivation]:
    """Check every source (cached results reused, the rest checked ``jobs`` at a time,
    slowest first, after the derivations they cite; each stored in the cache as soon as
    it passes); raise the first failure (StepError, DerivationError).  Results in the
    order of ``sources``.  ``keys`` receives the cache key of each source from a file
    (with a cache), which the build reuses for its outputs."""
    done: dict[str, CheckedDerivation] = {}
    todo: list[Source] = []
    keys = {} if keys is None else keys
    seconds: dict[str, float] = {}
    for s in sources:
        if s.path is not None and cache is not None:
            keys[s.name] = cache_module.check_key(s.path, s.derivation)
            cd = cache.get_checked(keys[s.name], s.derivation)
            if cd is not None:
                report(Event("start", s.name, len(s.derivation.steps), cached=True))
                replay(cd, report)
                report(Event("done", s.name, len(cd.steps), cached=True, checked=cd))
                done[s.name] = cd
                continue
        todo.append(s)

    def finished(s: Source, cd: CheckedDerivation, took: float | None) -> None:
        done[s.name] = cd
        report(Event("done", s.name, len(cd.steps), seconds=took or 0.0, checked=cd))
        if took is not None:
            seconds[s.name] = took
        if cache is not None and s.name in keys:
            try:
                cache.put_checked(keys[s.name], cache_module.dumps(cd, s.derivation))
            except Exception:
                pass  # not storable (a class defined in the file): checked again next time

    expected = cache.times() if cache is not None else {}
    rank = _critical_paths(todo, lambda s: expected.get(s.name, len(s.derivation.steps)))
    todo.sort(key=lambda s: (-rank[s.name], s.name))
    try:
        parallel = [s for s in todo if s.path is not None]
        if jobs > 1 and len(parallel) > 1:
            for s in parallel:
                report(Event("start", s.name, len(s.derivation.steps)))
            _check_parallel(parallel, min(jobs, len(parallel)), report, timeout, done, finished)
            todo = [s for s in todo if s.path is None]
        for s in _in_citation_order(todo):
            report(Event("start", s.name, len(s.derivation.steps)))
            start = time.perf_counter()
            cd = _check_one(s.derivation, report, timeout, dict(done))
            finished(s, cd, time.perf_counter() - start)
    finally:
        if cache is not None:
            cache.record_times(seconds)
    return [done[s.name] for s in sources]
