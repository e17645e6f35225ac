"""Mutation testing of the security-critical modules listed in ``tools/mutate/modules.toml``.

For each module: parse it, enumerate mutants (AST operators below), sample at most ``max_mutants``
of them with a fixed seed, and run the module's own test subset against each mutant with
``pytest -x -q -p no:cacheprovider``. A mutant is *killed* when the tests fail or time out,
*survives* when they pass, and is *equivalent* when its id is listed in the equivalents file
(each with a reason); the score is killed / (killed + survived), equivalents excluded.

Each mutant runs in its own temporary directory holding a copy of ``src/`` with the mutated
module written in; the copy comes first on ``sys.path`` and ``PYTHONPATH``, so the working tree
is never written. The runner imports the heavy libraries once (``preload``) and forks a child per
run (at most ``--jobs`` at a time, each in its own session, killed at its timeout).

Operators: comparison flips (negation and boundary), negated conditions (``not`` added or
dropped), dropped set/tuple/list/dict members, statements replaced by ``pass``, changed
constants (int + 1, True/False swapped, strings and bytes altered), ``and``/``or`` swapped,
``raise`` removed.

Mutant ids are a hash of (module, operator, the stripped source line, the mutation, occurrence),
so they survive edits elsewhere in the file. Exit 0 when every module scores at least the
threshold, 1 when one does not, 2 on a usage or baseline error.

    python tools/mutate/mutate.py [--modules gateway/release.py ...] [--jobs 2] [--list]

MUTATE_LOG=<file> appends every run's pytest output to <file> (to see why a run failed).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import importlib
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import tomllib
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PACKAGE = "custodiet"

FLIPS: dict[type[ast.cmpop], tuple[type[ast.cmpop], ...]] = {
    ast.Eq: (ast.NotEq,),
    ast.NotEq: (ast.Eq,),
    ast.Lt: (ast.GtE, ast.LtE),
    ast.LtE: (ast.Gt, ast.Lt),
    ast.Gt: (ast.LtE, ast.GtE),
    ast.GtE: (ast.Lt, ast.Gt),
    ast.In: (ast.NotIn,),
    ast.NotIn: (ast.In,),
    ast.Is: (ast.IsNot,),
    ast.IsNot: (ast.Is,),
}
SYMBOLS = {
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
    ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not",
}  # fmt: skip
Apply = Callable[[ast.AST], None]
# (operator, description, how to apply it to the node, the statement it is reported at or None)
Mutation = tuple[str, str, Apply, ast.AST | None]
SKIPPED_KEYWORDS = frozenset({"help", "description", "prog", "metavar"})


@dataclass(frozen=True)
class Mutant:
    """One mutation of a module: where (line), what (operator, description), and how to apply."""

    module: str
    line: int
    operator: str
    description: str
    node_index: int  # position of the mutated node in ast.walk order
    apply: Callable[[ast.AST], None] = field(compare=False, repr=False)
    id: str = ""


@dataclass
class Outcome:
    mutant: Mutant
    status: str  # killed | survived | timeout | equivalent


# ---- enumerating mutants -----------------------------------------------------------------------


def _skipped_nodes(tree: ast.Module) -> set[int]:
    """ids of nodes never mutated: docstrings, annotations, decorators, imports, ``__all__``,
    ``if __name__ == "__main__"``, asserts (type narrowing) and help texts."""
    skipped: set[int] = set()

    def skip(node: ast.AST | None) -> None:
        if node is not None:
            skipped.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                skip(body[0])
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            skip(node.returns)
            for decorator in node.decorator_list:
                skip(decorator)
        if isinstance(node, ast.ClassDef):
            for decorator in node.decorator_list:
                skip(decorator)
        if isinstance(node, ast.arg):
            skip(node.annotation)
        if isinstance(node, ast.AnnAssign):
            skip(node.annotation)
        if isinstance(node, ast.Import | ast.ImportFrom | ast.Assert | ast.JoinedStr):
            skip(node)
        if isinstance(node, ast.keyword) and node.arg in SKIPPED_KEYWORDS:
            skip(node)
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            skip(node)
        if isinstance(node, ast.If) and "__name__" in ast.unparse(node.test):
            skip(node)
    return skipped


def _collection_contexts(tree: ast.Module) -> set[int]:
    """ids of tuples and lists that are collections of members (not packed values): module-level
    constants, ``isinstance`` type tuples, iterables of ``for`` and ``in``, set/frozenset args."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign) and node in tree.body:
            found.add(id(node.value))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in ("isinstance", "issubclass") and len(node.args) == 2:
                found.add(id(node.args[1]))
            elif node.func.id in ("frozenset", "set", "tuple", "list") and node.args:
                found.add(id(node.args[0]))
        elif isinstance(node, ast.For | ast.comprehension):
            found.add(id(node.iter))
        elif isinstance(node, ast.Compare):
            for op, right in zip(node.ops, node.comparators, strict=True):
                if isinstance(op, ast.In | ast.NotIn):
                    found.add(id(right))
    return found


def enumerate_mutants(module: str, source: str) -> list[Mutant]:
    """Every mutant of ``source`` in a deterministic order, each with its stable id."""
    tree = ast.parse(source)
    skipped = _skipped_nodes(tree)
    collections = _collection_contexts(tree)
    top_level = {id(stmt) for stmt in tree.body}
    lines = source.splitlines()
    mutants: list[Mutant] = []

    def add(index: int, node: ast.AST, operator: str, description: str, apply: Apply) -> None:
        line = getattr(node, "lineno", 0)
        mutants.append(Mutant(module, line, operator, description, index, apply))

    for index, node in enumerate(ast.walk(tree)):
        if id(node) in skipped:
            continue
        for operator, description, apply, at in _node_mutations(
            node, collections, top_level, skipped
        ):
            add(index, at or node, operator, description, apply)

    seen: dict[tuple[str, ...], int] = {}
    result = []
    for mutant in mutants:
        text = lines[mutant.line - 1].strip() if mutant.line else ""
        key = (module, mutant.operator, text, mutant.description)
        occurrence = seen.get(key, 0)
        seen[key] = occurrence + 1
        digest = hashlib.sha256("\x1f".join((*key, str(occurrence))).encode()).hexdigest()[:10]
        result.append(
            Mutant(
                module,
                mutant.line,
                mutant.operator,
                mutant.description,
                mutant.node_index,
                mutant.apply,
                digest,
            )
        )
    return result


def _replace_in(field_name: str, index: int | None, new: Callable[[ast.AST], ast.AST]):
    """An ``apply`` that replaces ``node.<field>[index]`` (or ``node.<field>``) by ``new(old)``."""

    def apply(node: ast.AST) -> None:
        if index is None:
            setattr(node, field_name, new(getattr(node, field_name)))
        else:
            getattr(node, field_name)[index] = new(getattr(node, field_name)[index])

    return apply


def _drop_from(field_name: str, index: int, also: str | None = None):
    def apply(node: ast.AST) -> None:
        del getattr(node, field_name)[index]
        if also is not None:
            del getattr(node, also)[index]

    return apply


def _node_mutations(
    node: ast.AST, collections: set[int], top_level: set[int], skipped: set[int]
) -> Iterator[Mutation]:
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            for new in FLIPS.get(type(op), ()):
                desc = f"{SYMBOLS[type(op)]} -> {SYMBOLS[new]}"
                yield "compare", desc, _replace_in("ops", i, lambda _, n=new: n()), None
    if isinstance(node, ast.If | ast.While | ast.IfExp):
        yield "negate", "condition negated", _replace_in("test", None, _negated), None
    if isinstance(node, ast.comprehension):
        for i in range(len(node.ifs)):
            yield "negate", "filter negated", _replace_in("ifs", i, _negated), node.ifs[i]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield "negate", "not dropped", _replace_in("operand", None, _negated), None  # not not x
    if isinstance(node, ast.BoolOp):
        swapped = "or" if isinstance(node.op, ast.And) else "and"
        yield "boolop", f"-> {swapped}", _swap_boolop, None
    members = _members(node, collections)
    for i, member in enumerate(members):
        desc = f"drop member {_short(member)}"
        if isinstance(node, ast.Dict):
            yield "drop-member", desc, _drop_from("keys", i, also="values"), None
        else:
            yield "drop-member", desc, _drop_from("elts", i), None
    if isinstance(node, ast.Constant) and id(node) not in skipped:
        yield from _constant_mutations(node)
    for field_name, value in ast.iter_fields(node):
        if not isinstance(value, list) or isinstance(node, ast.Module):
            continue
        for i, stmt in enumerate(value):
            if not isinstance(stmt, ast.stmt) or id(stmt) in skipped or id(stmt) in top_level:
                continue
            if isinstance(stmt, ast.Raise):
                yield "raise", "raise removed", _replace_in(field_name, i, _to_pass), stmt
            elif not isinstance(
                stmt, ast.Pass | ast.FunctionDef | ast.ClassDef | ast.Global
            ) and not (
                isinstance(stmt, ast.AnnAssign) and stmt.value is None  # a declaration
            ):
                desc = f"`{_short(stmt)}` -> pass"
                yield "pass", desc, _replace_in(field_name, i, _to_pass), stmt


def _members(node: ast.AST, collections: set[int]) -> list[ast.AST]:
    if isinstance(node, ast.Set) and len(node.elts) >= 2:
        return list(node.elts)
    listed = isinstance(node, ast.Tuple | ast.List) and id(node) in collections
    if listed and len(node.elts) >= 2 and not any(isinstance(e, ast.Starred) for e in node.elts):
        return list(node.elts)
    if isinstance(node, ast.Dict) and len(node.keys) >= 2 and None not in node.keys:
        return [k for k in node.keys if k is not None]
    return []


def _constant_mutations(node: ast.Constant) -> Iterator[Mutation]:
    value = node.value
    if isinstance(value, bool):
        yield "constant", f"{value} -> {not value}", _set_value(not value), None
    elif isinstance(value, int):
        yield "constant", f"{value} -> {value + 1}", _set_value(value + 1), None
    elif isinstance(value, str):
        new = f"XX{value}XX"
        yield "constant", f"{_clip(repr(value))} -> {_clip(repr(new))}", _set_value(new), None
    elif isinstance(value, bytes):
        new_bytes = value + b"X"
        yield "constant", f"{value!r} -> {new_bytes!r}", _set_value(new_bytes), None


def _to_pass(_: ast.AST) -> ast.AST:
    return ast.Pass()


def _set_value(value: object) -> Apply:
    return lambda n: setattr(n, "value", value)


def _negated(test: ast.AST) -> ast.AST:
    assert isinstance(test, ast.expr)
    return ast.UnaryOp(op=ast.Not(), operand=test)


def _swap_boolop(node: ast.AST) -> None:
    assert isinstance(node, ast.BoolOp)
    node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()


def _clip(text: str, size: int = 40) -> str:
    return text if len(text) <= size else text[: size - 3] + "..."


def _short(node: ast.AST) -> str:
    return _clip(ast.unparse(node).split("\n")[0])


def mutated_source(source: str, mutant: Mutant | None) -> str:
    """The module's source with ``mutant`` applied (round-tripped through ast.unparse)."""
    tree = ast.parse(source)
    if mutant is not None:
        node = list(ast.walk(tree))[mutant.node_index]
        mutant.apply(node)
        ast.fix_missing_locations(tree)
    return ast.unparse(tree) + "\n"


# ---- running -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    module: str
    tests: tuple[str, ...]
    timeout: float


def run_all(template: Path, job: Job, sources: list[str], jobs: int) -> Iterator[tuple[int, str]]:
    """Run the job's tests once per source (the module replaced by it), ``jobs`` at a time.

    Yields (position in ``sources``, passed|failed|timeout) as each run ends. Each run is a child
    forked from this process (which has imported the heavy libraries, never custodiet), in its own
    session and temporary directory holding a copy of src/ with the module replaced.
    """
    pending = list(enumerate(sources))
    running: dict[int, tuple[int, Path, float]] = {}  # pid -> (position, work dir, start)
    timed_out: set[int] = set()
    try:
        while pending or running:
            while pending and len(running) < jobs:
                position, source = pending.pop(0)
                work = _work_dir(template, job.module, source)
                running[_fork_pytest(work, job.tests)] = (position, work, time.monotonic())
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                for child, (_, _, started) in running.items():
                    if child not in timed_out and time.monotonic() - started > job.timeout:
                        timed_out.add(child)
                        os.killpg(child, signal.SIGKILL)
                time.sleep(0.05)
                continue
            if pid not in running:
                continue
            position, work, _ = running.pop(pid)
            shutil.rmtree(work, ignore_errors=True)
            if pid in timed_out:
                yield position, "timeout"
            else:
                yield position, "passed" if os.waitstatus_to_exitcode(status) == 0 else "failed"
    finally:
        for child, (_, work, _) in running.items():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(child, 0)
            shutil.rmtree(work, ignore_errors=True)


def _work_dir(template: Path, module: str, source: str) -> Path:
    """A new temporary directory holding src/ with ``module`` replaced by ``source``."""
    work = Path(tempfile.mkdtemp(prefix="custodiet-mutant-"))
    src = work / "src"
    shutil.copytree(template, src)
    target = src / PACKAGE / module
    for cached in (target.parent / "__pycache__").glob(f"{target.stem}.*.pyc"):
        cached.unlink()
    target.write_text(source, encoding="utf-8")
    return work


def _fork_pytest(work: Path, tests: tuple[str, ...]) -> int:
    """Fork a child that runs pytest on ``tests`` with ``work``/src first on the path."""
    pid = os.fork()
    if pid:
        return pid
    code = 3
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.setsid()
        os.chdir(work)
        devnull = os.open(
            os.environ.get("MUTATE_LOG", os.devnull), os.O_RDWR | os.O_CREAT | os.O_APPEND
        )
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        src = str(work / "src")
        sys.path.insert(0, src)
        sys.dont_write_bytecode = True
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"  # and for any interpreter a test starts
        os.environ["PYTHONPATH"] = os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])
        import pytest  # preloaded by the parent

        options = ["-x", "-q", "-p", "no:cacheprovider", "--hypothesis-seed=0"]
        options += ["-W", "ignore::pytest.PytestAssertRewriteWarning"]  # preloaded plugins
        config = ["--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml")]
        code = int(pytest.main([*options, *config, *(str(ROOT / t) for t in tests)]))
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def load_config(path: Path) -> dict[str, object]:
    with path.open("rb") as handle:
        return tomllib.load(handle)


def load_equivalents(path: Path) -> dict[str, str]:
    """Mutant id -> reason, from lines ``<id> <where> <what> -- <reason>`` (# comments)."""
    found: dict[str, str] = {}
    if not path.exists():
        return found
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        mutant_id, _, rest = line.partition(" ")
        reason = rest.partition(" -- ")[2].strip()
        if not reason:
            raise SystemExit(f"{path}:{number}: an equivalent mutant needs ' -- <why>'")
        found[mutant_id] = reason
    return found


def select(mutants: list[Mutant], limit: int, seed: int) -> list[Mutant]:
    """At most ``limit`` mutants: the first of all ids shuffled with ``seed`` (a smaller limit
    picks a subset of a larger one), in source order."""
    if len(mutants) <= limit:
        return mutants
    ordered = sorted(m.id for m in mutants)
    random.Random(seed).shuffle(ordered)  # noqa: S311 -- sampling, not security
    chosen = set(ordered[:limit])
    return [m for m in mutants if m.id in chosen]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Mutation testing of the listed modules.")
    parser.add_argument("--config", type=Path, default=HERE / "modules.toml")
    parser.add_argument("--modules", nargs="*", help="only these (paths under src/custodiet)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--list", action="store_true", help="list the selected mutants only")
    parser.add_argument("--max-mutants", type=int, help="override the sample size")
    parser.add_argument(
        "--ids", nargs="*", help="only these mutant ids (e.g. to re-check survivors)"
    )
    args = parser.parse_args(argv)

    config = load_config(args.config)
    settings = config["settings"]
    modules = config["modules"]
    assert isinstance(settings, dict) and isinstance(modules, dict)
    names = args.modules or list(modules)
    unknown = [n for n in names if n not in modules]
    if unknown:
        print(f"not in {args.config}: {', '.join(unknown)}", file=sys.stderr)
        return 2
    equivalents = load_equivalents(ROOT / str(settings["equivalents"]))
    threshold = float(settings["threshold"])
    started = time.monotonic()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up children and temp dirs
    for library in [] if args.list else settings.get("preload", []):  # shared by every fork
        importlib.import_module(str(library))
    template = Path(tempfile.mkdtemp(prefix="custodiet-mutate-src-"))
    try:
        shutil.copytree(ROOT / "src", template / "src")
        rows = []
        for name in names:
            entry = modules[name]
            rows.append(_run_module(name, entry, settings, args, template / "src", equivalents))
    finally:
        shutil.rmtree(template, ignore_errors=True)
    if args.list:
        return 0

    print("\nmodule                         killed  survived  equivalent  score")
    failed = False
    for name, killed, survived, equivalent in rows:
        total = killed + survived
        score = 100.0 * killed / total if total else 100.0
        failed |= score < threshold
        print(f"{name:30} {killed:6} {survived:9} {equivalent:11}  {score:5.1f}%")
    print(f"wall time {time.monotonic() - started:.0f} s; threshold {threshold:.0f}%")
    return 1 if failed else 0


def _run_module(
    name: str,
    entry: dict[str, object],
    settings: dict[str, object],
    args: argparse.Namespace,
    template: Path,
    equivalents: dict[str, str],
) -> tuple[str, int, int, int]:
    source = (ROOT / "src" / PACKAGE / name).read_text(encoding="utf-8")
    limit = args.max_mutants or int(str(entry.get("max_mutants", settings["max_mutants"])))
    everything = enumerate_mutants(name, source)
    mutants = select(everything, limit, int(str(settings["seed"])))
    if args.ids:
        mutants = [m for m in everything if m.id in args.ids]
    print(f"== {name}: {len(mutants)} of {len(everything)} mutants", flush=True)
    if args.list:
        for m in mutants:
            print(f"  {m.id} {name}:{m.line} [{m.operator}] {m.description}")
        return name, 0, 0, 0
    tests = tuple(str(t) for t in entry["tests"])  # type: ignore[attr-defined]
    # The unmutated module (round-tripped through ast) must pass, and a module that cannot even be
    # imported must fail: proof that the tests run against the copy, not the working tree.
    probe = Job(name, tests, timeout=600)
    canary = 'raise RuntimeError("mutate canary")\n'
    began = time.monotonic()
    baseline = dict(run_all(template, probe, [mutated_source(source, None), canary], 1))
    seconds = (time.monotonic() - began) / 2
    if baseline != {0: "passed", 1: "failed"}:
        raise SystemExit(f"{name}: unmutated / canary runs gave {baseline}, not passed / failed")
    factor = float(str(settings["timeout_factor"]))
    job = Job(name, tests, max(float(str(settings["timeout_min"])), factor * seconds))
    print(f"   baseline {seconds:.1f} s, timeout {job.timeout:.0f} s", flush=True)

    outcomes: list[Outcome] = []
    to_run = [m for m in mutants if m.id not in equivalents]
    outcomes += [Outcome(m, "equivalent") for m in mutants if m.id in equivalents]
    started = time.monotonic()
    sources = [mutated_source(source, m) for m in to_run]
    for done, (position, status) in enumerate(run_all(template, job, sources, args.jobs), 1):
        status = {"passed": "survived", "failed": "killed"}.get(status, status)
        outcomes.append(Outcome(to_run[position], status))
        if done % 25 == 0 or done == len(to_run):
            elapsed = time.monotonic() - started
            print(f"   {done}/{len(to_run)} run in {elapsed:.0f} s", flush=True)
    survivors = sorted(
        (o.mutant for o in outcomes if o.status == "survived"), key=lambda m: (m.line, m.id)
    )
    for m in survivors:
        print(f"   survived {m.id} src/{PACKAGE}/{name}:{m.line} [{m.operator}] {m.description}")
    killed = sum(o.status in ("killed", "timeout") for o in outcomes)
    timeouts = sum(o.status == "timeout" for o in outcomes)
    equivalent = sum(o.status == "equivalent" for o in outcomes)
    if timeouts:
        print(f"   ({timeouts} of the killed timed out)")
    return name, killed, len(survivors), equivalent


if __name__ == "__main__":
    sys.exit(main())
