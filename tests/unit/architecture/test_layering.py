"""The architecture rules of STYLE.md, enforced: dependencies flow one way; engines stay contained.

Two views: the static imports of every module (catches imports inside functions too), and the
modules actually loaded by importing each subpackage in a fresh interpreter.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[3] / "src"
PACKAGE = SRC / "custodiet"

# Layers, lowest first. A module may import custodiet modules of its own layer or lower layers only.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("custodiet.errors", "custodiet.settings", "custodiet.progress"),
    ("custodiet.ledger", "custodiet.identity"),
    (
        "custodiet.workspace",
        "custodiet.runtime",
        "custodiet.entries",
        "custodiet.logkey",
        "custodiet.permissions",
    ),
    ("custodiet.catalog", "custodiet.principals", "custodiet.agreements"),
    ("custodiet.gateway",),
    ("custodiet.screens", "custodiet.reid", "custodiet.synth", "custodiet.cases"),
    ("custodiet.demo",),
    (
        "custodiet.api",
        "custodiet.web",
        "custodiet.console",
        "custodiet.client",
        "custodiet.cli",
        "custodiet.__main__",
    ),
)

# Third-party imports confined to a few places.
CONFINED = {
    "duckdb": ("custodiet.catalog", "custodiet.gateway"),
    "typer": ("custodiet.cli",),
    "fastapi": ("custodiet.api", "custodiet.web", "custodiet.console"),
}


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found.append((name, path))
    return found


def _imports(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: -node.level or None]
                if path.name == "__init__.py":
                    base = module.split(".")[: len(module.split(".")) - node.level + 1]
                names.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                names.add(node.module)
    return names


def _layer(name: str) -> int | None:
    if name == "custodiet":
        return 0
    for index, layer in enumerate(LAYERS):
        if any(name == top or name.startswith(top + ".") for top in layer):
            return index
    return None


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize(("module", "path"), _modules(), ids=lambda v: str(v))
def test_imports_flow_one_way(module: str, path: Path) -> None:
    own = _layer(module)
    assert own is not None, f"{module} is in no layer; add it to LAYERS"
    for imported in _imports(path, module):
        if imported.startswith("custodiet"):
            other = _layer(imported)
            assert other is not None, f"{module} imports unknown {imported}"
            assert other <= own, f"{module} (layer {own}) imports {imported} (layer {other})"
        top = imported.split(".")[0]
        if top in CONFINED:
            assert _within(module, CONFINED[top]), f"{module} imports {top}"


def test_verifier_imports_only_stdlib_and_cryptography() -> None:
    path = PACKAGE / "ledger" / "verify.py"
    allowed_third_party = {"cryptography"}
    for imported in _imports(path, "custodiet.ledger.verify"):
        top = imported.split(".")[0]
        assert top in sys.stdlib_module_names or top in allowed_third_party, imported


def test_replay_imports_only_stdlib_cryptography_and_the_verifier() -> None:
    """An inspector general copies replay.py and verify.py and audits a log with nothing else."""
    path = PACKAGE / "ledger" / "replay.py"
    allowed = {"cryptography", "custodiet.ledger", "custodiet.ledger.verify", "verify"}
    for imported in _imports(path, "custodiet.ledger.replay"):
        top = imported.split(".")[0]
        assert top in sys.stdlib_module_names or top == "cryptography" or imported in allowed, (
            imported
        )


LOADED_IN_FRESH_INTERPRETER = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(sys.modules)))
"""


def _loaded_by(module: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", LOADED_IN_FRESH_INTERPRETER, module],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return set(json.loads(out))


def test_verifier_runs_alone_in_a_fresh_interpreter() -> None:
    loaded = _loaded_by("custodiet.ledger.verify")
    ours = {m for m in loaded if m.startswith("custodiet")}
    assert ours <= {"custodiet", "custodiet.ledger", "custodiet.ledger.verify"}, ours
    assert not any(m.split(".")[0] in {"duckdb", "sqlglot", "pydantic", "typer"} for m in loaded)


def test_replay_runs_alone_in_a_fresh_interpreter() -> None:
    loaded = _loaded_by("custodiet.ledger.replay")
    ours = {m for m in loaded if m.startswith("custodiet")}
    allowed = {
        "custodiet",
        "custodiet.ledger",
        "custodiet.ledger.verify",
        "custodiet.ledger.replay",
    }
    assert ours <= allowed, ours
    assert not any(m.split(".")[0] in {"duckdb", "sqlglot", "pydantic", "typer"} for m in loaded)


COPIED_OUT = """
import runpy, sys
sys.modules["custodiet"] = None  # the package is not there: replay.py must use verify.py beside it
sys.path.insert(0, sys.argv[1])
sys.argv = ["replay.py", "--entries", sys.argv[2]]
runpy.run_path("replay.py", run_name="__main__")
"""


def test_replay_copied_beside_the_verifier_audits_a_ledger(tmp_path: Path) -> None:
    """Copied out of the package next to verify.py, replay.py audits a real ledger alone."""
    from tests.kit import Kit

    kit = Kit()
    ws = kit.init(tmp_path / "ws")
    kit.add_principal(ws, "rae", "reviewer")
    ledger = ws.ledger()
    try:
        lines = [data for _, data in ledger.entries()]
    finally:
        ledger.close()
    copied = tmp_path / "ig"
    copied.mkdir()
    for name in ("verify.py", "replay.py"):
        (copied / name).write_bytes((PACKAGE / "ledger" / name).read_bytes())
    (copied / "entries.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    done = subprocess.run(
        [sys.executable, "-c", COPIED_OUT, str(copied), "entries.jsonl"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=copied,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"authorized: {len(lines)} entries replayed"), done.stdout


@pytest.mark.parametrize("package", ["custodiet.ledger", "custodiet.agreements"])
def test_core_packages_load_no_engine_or_cli(package: str) -> None:
    tops = {m.split(".")[0] for m in _loaded_by(package)}
    assert not tops & {"duckdb", "typer", "fastapi"}, tops


REGISTERED_IN_FRESH_INTERPRETER = """
import json, sys
from custodiet.cli.app import app
from custodiet.cli.commands import register
register(app)
names = [c.name for c in app.registered_commands] + [g.name for g in app.registered_groups]
print(json.dumps({"commands": names, "modules": sorted(sys.modules)}))
"""


def test_registering_every_command_loads_no_engine_data_or_validation_library() -> None:
    out = subprocess.run(
        [sys.executable, "-c", REGISTERED_IN_FRESH_INTERPRETER],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    loaded = json.loads(out)
    assert {"query", "agreement", "synth", "ledger"} <= set(loaded["commands"])
    tops = {m.split(".")[0] for m in loaded["modules"]}
    assert not tops & {"numpy", "pyarrow", "duckdb", "sqlglot", "pydantic"}, tops
