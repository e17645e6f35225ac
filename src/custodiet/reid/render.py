"""Released records as a Rich table: one row per record, its identifying fields in words."""

from __future__ import annotations

from rich.table import Table

from custodiet.gateway.identities import IdentifiedRecord


def records_table(records: tuple[IdentifiedRecord, ...], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("token", no_wrap=True)
    table.add_column("dataset", no_wrap=True)
    table.add_column("identified fields")
    for r in records:
        fields = "\n".join(f"{k}: {v}" for k, v in r.fields.items() if v is not None)
        table.add_row(r.token, r.dataset, fields)
    return table
