"""A real workspace over the hand-made tables: principals, datasets, agreements, ledger readback."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from custodiet.agreements.lifecycle import apply_agreement, approve
from custodiet.catalog.model import Dataset
from custodiet.catalog.registry import add_dataset
from custodiet.principals import Role, add_principal
from custodiet.screens import SCREENS
from custodiet.screens.grants import agreement_document
from custodiet.screens.model import Screen
from custodiet.workspace import Workspace, init_workspace
from tests.unit.screens.tinydata import scenario

PRINCIPALS = {
    "cust-a": Role.CUSTODIAN,
    "cust-b": Role.CUSTODIAN,
    "cust-c": Role.CUSTODIAN,
    "rev": Role.REVIEWER,
    "rev-2": Role.REVIEWER,
    "watcher": Role.OVERSEER,
}
EXPIRES = dt.date(2099, 12, 31)

Edit = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class World:
    root: Path
    ws: Workspace
    datasets: dict[str, Dataset]

    def grant(
        self,
        agreement_id: str,
        *,
        reviewer: str = "rev",
        screens: Iterable[Screen] = SCREENS.values(),
        edit: Edit | None = None,
    ) -> None:
        """Apply an agreement granting what ``screens`` read (then ``edit``ed), two approvals."""
        document = agreement_document(
            agreement_id=agreement_id,
            reviewer=reviewer,
            expires=EXPIRES,
            screens=screens,
            datasets=self.datasets,
        )
        if edit is not None:
            edit(document)
        path = self.root / f"{agreement_id}.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        apply_agreement(self.ws, path, "cust-a")
        approve(self.ws, agreement_id, "cust-a")
        approve(self.ws, agreement_id, "cust-b")

    def ledger_entries(self) -> list[dict[str, Any]]:
        ledger = self.ws.ledger()
        try:
            return [json.loads(data) for _, data in ledger.entries()]
        finally:
            ledger.close()

    def ledger_text(self) -> str:
        ledger = self.ws.ledger()
        try:
            return "\n".join(data.decode("utf-8") for _, data in ledger.entries())
        finally:
            ledger.close()


def build_world(root: Path) -> World:
    """Workspace with the scenario's five datasets registered and every principal added."""
    paths = scenario().write(root / "data")
    ws = init_workspace(root / "ws")
    for name, role in PRINCIPALS.items():
        add_principal(ws, name, role)
    datasets = {name: add_dataset(ws, name, path, {}, "cust-a") for name, path in paths.items()}
    return World(root, ws, datasets)
