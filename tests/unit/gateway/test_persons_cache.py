"""The rows-per-person bound kept beside a projection is used only for the projection it was
computed on: once an extension appended rows, it is computed again (a stale, smaller bound would
settle groups as large enough that are not)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from custodiet.agreements.model import Mode
from custodiet.gateway.execute import Executed
from custodiet.gateway.suppress import rows_per_person
from custodiet.workspace import Workspace
from tests.unit.gateway.checker_policy import sample_policy


class Engine:
    """Answers the two queries rows_per_person asks, for a table of ``rows`` rows."""

    def __init__(self, rows: int, most: int) -> None:
        self.rows, self.most, self.computed = rows, most, 0

    def run(self, sql: str) -> Executed:
        if sql.startswith("SELECT (SELECT count(*)"):
            return Executed(("n",), [(self.rows,)])
        self.computed += 1
        return Executed(("most", "nulls", "rows"), [(self.most, 0, self.rows)])


def test_the_bound_is_computed_again_after_the_projection_grew(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    ws.projections_dir.mkdir(parents=True, exist_ok=True)
    active: Any = SimpleNamespace(agreement=SimpleNamespace(id="a"), version=1, sha256="0" * 64)
    policy = sample_policy(Mode.AGGREGATE)
    engine = Engine(rows=100, most=3)
    assert rows_per_person(ws, active, policy, ["payments"], engine.run)["payments"] == 3
    assert rows_per_person(ws, active, policy, ["payments"], engine.run)["payments"] == 3
    assert engine.computed == 1  # the kept bound, for the same rows
    engine.rows, engine.most = 150, 5  # an extension appended rows
    assert rows_per_person(ws, active, policy, ["payments"], engine.run)["payments"] == 5
    assert engine.computed == 2
