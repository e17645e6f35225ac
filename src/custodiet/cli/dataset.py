"""`custodiet dataset add | list | show`: register files and see how their columns are classed.

The registry (and the classifier it brings) loads inside the commands.
"""

from __future__ import annotations

import json
from functools import partial
from typing import TYPE_CHECKING, Annotated

import typer

from custodiet.catalog.classes import ColumnClass
from custodiet.cli import backend
from custodiet.cli.app import out_console, reports_errors
from custodiet.cli.backend import call, local
from custodiet.cli.options import (
    Actor,
    FormatOption,
    KeyPath,
    TableOrJson,
    WorkspacePath,
    output_format,
    runtime,
    signed,
)
from custodiet.cli.progress import progress
from custodiet.errors import InputError

if TYPE_CHECKING:
    from rich.table import Table

    from custodiet.catalog.model import Dataset

CLASSES = ", ".join(c.value for c in ColumnClass)


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Register datasets and show their column classes.")
    app.add_typer(group, name="dataset")

    @group.command("add")
    @reports_errors
    def add(
        name: Annotated[str, typer.Argument(help="Dataset name, e.g. payments.", metavar="NAME")],
        path: Annotated[
            str,
            typer.Argument(
                help="A .parquet or .csv file, a directory or a glob of them, or "
                "PATH.duckdb::TABLE."
            ),
        ],
        as_: Actor,
        classify: Annotated[
            list[str] | None,
            typer.Option(
                "--classify", metavar="COL=CLASS", help=f"Override a class: COL=CLASS ({CLASSES})."
            ),
        ] = None,
        key: KeyPath = None,
        workspace: WorkspacePath = None,
    ) -> None:
        """Register a file as a dataset (signed by a custodian), classify its columns and print
        the classes. An override may raise protection; lowering a class needs K custodians,
        each running this same command, and a column whose values are SSNs, EINs or bank
        numbers stays an identifier whatever --classify says."""
        from custodiet.catalog.registry import add_dataset

        overrides = parse_overrides(classify or [])
        location = _location_argument(path)
        with runtime(workspace) as rt:
            request = signed(rt, as_, key, "dataset.add", {
                "name": name, "path": location,
                "classify": {c: k.value for c, k in overrides.items()},
            })  # fmt: skip
            done = call(rt, add_dataset, request)
        dataset = done.dataset
        state = "registered" if done.effective else "not registered yet"
        out_console().print(
            f"{dataset.name}: {dataset.rows} rows, {dataset.format}; signed by {as_} "
            f"({done.votes} of {done.required}); {state}",
            markup=False,
        )
        if done.lowered:
            out_console().print(
                f"lowered classes ({', '.join(done.lowered)}) need {done.required} custodians",
                markup=False,
            )
        out_console().print(classes_table(dataset))

    @group.command("update")
    @reports_errors
    def update(
        name: Annotated[str, typer.Argument(help="Dataset name, e.g. payments.", metavar="NAME")],
        path: Annotated[
            str,
            typer.Argument(
                help="The new files: a .parquet or .csv file, a directory or a glob (files the "
                "dataset already holds are checked unchanged and skipped)."
            ),
        ],
        as_: Actor,
        key: KeyPath = None,
        workspace: WorkspacePath = None,
    ) -> None:
        """Add the new files of PATH as the dataset's next version (signed by a custodian),
        then extend the projections of the active agreements that follow the dataset. A file
        the dataset already holds whose bytes changed is refused. The new files may add
        columns (denied until an approved agreement version grants them); dropping or
        retyping a column an active agreement grants is refused."""
        from custodiet.gateway.growth import update_and_extend

        location = _location_argument(path)
        with runtime(workspace) as rt:
            request = signed(rt, as_, key, "dataset.update", {"name": name, "path": location})
            with progress("extending projections", shown=local(rt)) as step:
                done = call(rt, partial(update_and_extend, progress=step), request)
        dataset = done.registration.dataset
        out_console().print(
            f"{dataset.name}: version {dataset.version}, {len(dataset.file_digests)} files, "
            f"{dataset.rows} rows; signed by {as_}",
            markup=False,
        )
        extended = ", ".join(done.extended) or "none"
        out_console().print(f"projections extended: {extended}", markup=False)

    @group.command("list")
    @reports_errors
    def list_(format_: FormatOption = None, workspace: WorkspacePath = None) -> None:
        """List the registered datasets.

        JSON: a list of {"name", "path", "table", "format", "rows", "sha256", "version",
        "files", "columns"} (columns: how many; `dataset show` lists them)."""
        from rich.markup import escape
        from rich.table import Table

        with runtime(workspace) as rt:
            datasets = backend.datasets(rt)
        if output_format(format_, TableOrJson) is TableOrJson.JSON:
            from custodiet.api.documents import dataset_summary

            echo_json([dataset_summary(d) for d in datasets])
            return
        table = Table("name", "format", "rows", "columns", "path")
        table.columns[2].justify = table.columns[3].justify = "right"
        for d in datasets:
            table.add_row(
                *map(escape, (d.name, d.format, f"{d.rows:,}", str(len(d.columns)))),
                escape(_location(d)),
            )
        out_console().print(table)

    @group.command("show")
    @reports_errors
    def show(
        name: Annotated[str, typer.Argument(help="Dataset name.", metavar="NAME")],
        format_: FormatOption = None,
        workspace: WorkspacePath = None,
    ) -> None:
        """Show a dataset's file, digest and column classes.

        JSON: {"name", "path", "table", "format", "rows", "sha256", "version", "files":
        [{"path", "sha256"}], "columns": [{"name", "type", "class", "identifier_kind"}]}
        (table: the DuckDB table, else null; rows and sha256: of the latest version)."""
        with runtime(workspace) as rt:
            dataset = backend.get_dataset(rt, name)
        if output_format(format_, TableOrJson) is TableOrJson.JSON:
            from custodiet.api.documents import dataset as document

            echo_json(document(dataset))
            return
        out_console().print(f"{dataset.name}: {_location(dataset)}", markup=False)
        out_console().print(
            f"{dataset.format}, {dataset.rows:,} rows, sha256 {dataset.sha256}", markup=False
        )
        if dataset.version > 1 or len(dataset.file_digests) > 1:
            out_console().print(
                f"version {dataset.version}, {len(dataset.file_digests)} files", markup=False
            )
        out_console().print(classes_table(dataset))


def _location_argument(path: str) -> str:
    """PATH made absolute (a glob keeps its pattern; PATH.duckdb::TABLE is kept as given)."""
    from pathlib import Path

    if "::" in path:
        return path
    return str(Path(path).expanduser().absolute())


def parse_overrides(items: list[str]) -> dict[str, ColumnClass]:
    """``COL=CLASS`` options as a mapping; ``InputError`` naming the bad option."""
    overrides: dict[str, ColumnClass] = {}
    for item in items:
        column, sep, value = item.partition("=")
        try:
            cls = ColumnClass(value.strip())
        except ValueError:
            cls = None
        if not sep or not column.strip() or cls is None:
            raise InputError(
                f"--classify {item!r}: expected COL=CLASS",
                hint=f"CLASS is one of: {CLASSES}",
                code="CUST251",
            )
        overrides[column.strip()] = cls
    return overrides


def classes_table(dataset: Dataset) -> Table:
    from rich.markup import escape
    from rich.table import Table

    table = Table("column", "type", "class", "identifier kind")
    for c in dataset.columns.values():
        cells = (c.name, c.sql_type, c.column_class.value, c.identifier_kind or "")
        table.add_row(*map(escape, cells))
    return table


def echo_json(document: object) -> None:
    typer.echo(json.dumps(document, ensure_ascii=False))


def _location(dataset: Dataset) -> str:
    return f"{dataset.path}::{dataset.table}" if dataset.table else dataset.path
