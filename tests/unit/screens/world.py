"""A real workspace over the hand-made tables: principals, datasets, agreements, ledger readback."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from custodiet.catalog.model import Dataset
from custodiet.principals import Role
from custodiet.screens import SCREENS
from custodiet.screens.grants import agreement_document
from custodiet.screens.model import Report, Screen
from custodiet.workspace import Workspace
from tests.kit import Kit
from tests.unit.screens.tinydata import scenario

CUSTODIANS = ("cust-a", "cust-b", "cust-c")  # the genesis's; K = 2
PRINCIPALS = {
    **dict.fromkeys(CUSTODIANS, Role.CUSTODIAN),
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
    kit: Kit

    def grant(
        self,
        agreement_id: str,
        *,
        reviewer: str = "rev",
        screens: Iterable[Screen] = SCREENS.values(),
        edit: Edit | None = None,
    ) -> None:
        """An agreement granting what ``screens`` read (then ``edit``ed), proposed by its reviewer
        and approved by cust-a and cust-b (K = 2), which builds its projection."""
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
        self.kit.apply(self.ws, path, by=reviewer)
        self.kit.approve_all(self.ws, agreement_id, by=("cust-a", "cust-b"))

    def run_screens(self, agreement_id: str, by: str = "rev", names: Iterable[str] = ()) -> Report:
        """``by``'s signed `screen run` under ``agreement_id`` (all screens when none named)."""
        report: Report = self.kit.screens(self.ws, agreement_id, by, list(names))
        return report

    def as_(self, name: str) -> list[str]:
        """CLI arguments acting as ``name`` (``--as NAME --key FILE``)."""
        return self.kit.as_(name)

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
    """Workspace with the scenario's five datasets registered and every principal added (the
    custodians by the genesis, the others by cust-a's signature)."""
    paths = scenario().write(root / "data")
    kit = Kit(root)
    ws = kit.init(root / "ws", custodians=CUSTODIANS, k=2)
    for name, role in PRINCIPALS.items():
        if role is not Role.CUSTODIAN:
            kit.add_principal(ws, name, role, by=("cust-a",))
    datasets = {
        name: kit.add_dataset(ws, name, path, {}, by=("cust-a",)).dataset
        for name, path in paths.items()
    }
    return World(root, ws, datasets, kit)
