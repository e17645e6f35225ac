"""`custodiet agreement apply | approve | revoke | build | list | show`: the agreement lifecycle.

The lifecycle and Rich tables load inside the commands, keeping every other command's start short.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from custodiet.api import documents
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

if TYPE_CHECKING:
    from custodiet.agreements.lifecycle import AgreementSummary

AgreementId = Annotated[
    str, typer.Argument(help="Agreement id, e.g. ssa-deceased-payees.", metavar="ID")
]


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Propose, approve, revoke and inspect data-use agreements.")
    app.add_typer(group, name="agreement")

    @group.command("apply")
    @reports_errors
    def apply(
        file: Annotated[
            Path, typer.Argument(help="The agreement YAML (docs/agreements.md).", metavar="FILE")
        ],
        as_: Actor,
        key: KeyPath = None,
        workspace: WorkspacePath = None,
    ) -> None:
        """Propose an agreement, or a new version of it (which needs approval again)."""
        from custodiet.agreements.lifecycle import apply_agreement

        with runtime(workspace) as rt:
            document = backend.agreement_file(rt, file)
            request = signed(rt, as_, key, "agreement.propose", {"document": document})
            result = call(rt, apply_agreement, request)
        where = f"{result.id} v{result.version} (sha256 {result.sha256})"
        if result.is_new:
            out_console().print(
                f"proposed {where}; custodians review it with `custodiet agreement show "
                f"{result.id}` and approve it with `--version {result.version} --sha256 "
                f"{result.sha256}`",
                markup=False,
            )
        else:
            out_console().print(f"unchanged: {where} is already the latest version", markup=False)

    @group.command("approve")
    @reports_errors
    def approve_(
        id_: AgreementId,
        version: Annotated[
            int, typer.Option("--version", metavar="N", help="The version you reviewed.")
        ],
        sha256: Annotated[
            str,
            typer.Option(
                "--sha256", metavar="HEX", help="Its sha256, as `agreement show` printed it."
            ),
        ],
        as_: Actor,
        key: KeyPath = None,
        workspace: WorkspacePath = None,
    ) -> None:
        """Approve exactly the version you reviewed (refused if the pending version differs).

        The approval that makes the version active also builds its protected projection."""
        from custodiet.gateway.activation import approve_and_activate

        with runtime(workspace) as rt:
            request = signed(
                rt,
                as_,
                key,
                "agreement.approve",
                {"agreement": id_, "version": version, "sha256": sha256.lower()},
            )
            with progress("building the projection", shown=local(rt)) as step:
                done = call(rt, partial(approve_and_activate, progress=step), request)
        status = done.status
        out_console().print(
            f"approved {status.id} v{status.version}: {status.approvals} of "
            f"{status.required} approvals; {'active' if status.active else 'not active yet'}",
            markup=False,
        )
        if done.projection is not None:
            out_console().print(f"protected projection ready: {done.projection.name}", markup=False)

    @group.command("revoke")
    @reports_errors
    def revoke_(id_: AgreementId, as_: Actor, key: KeyPath = None,
                workspace: WorkspacePath = None) -> None:  # fmt: skip
        """Revoke an agreement at once (custodians only): no version of it stays active."""
        from custodiet.agreements.lifecycle import revoke

        with runtime(workspace) as rt:
            result = call(rt, revoke, signed(rt, as_, key, "agreement.revoke", {"agreement": id_}))
        out_console().print(f"revoked {result.id} (through v{result.version})", markup=False)

    @group.command("build")
    @reports_errors
    def build(id_: AgreementId, as_: Actor, key: KeyPath = None,
              workspace: WorkspacePath = None) -> None:  # fmt: skip
        """Rebuild the active version's protected projection (a custodian), from re-hashed
        registered sources."""
        from custodiet.gateway.activation import rebuild

        with runtime(workspace) as rt:
            request = signed(rt, as_, key, "agreement.build", {"agreement": id_})
            with progress("building the projection", shown=local(rt)) as step:
                path = call(rt, partial(rebuild, progress=step), request)
        out_console().print(f"protected projection ready: {path.name}", markup=False)

    @group.command("list")
    @reports_errors
    def list_(
        format_: FormatOption = None,
        workspace: WorkspacePath = None,
    ) -> None:
        """List agreements: latest version, status and approvals."""
        from rich.markup import escape
        from rich.table import Table

        with runtime(workspace) as rt:
            summaries = backend.agreements(rt)
        if output_format(format_, TableOrJson) is TableOrJson.JSON:
            typer.echo(json.dumps([documents.agreement(a) for a in summaries]))
            return
        table = Table("id", "version", "status", "reviewer", "expires", "approvals")
        for a in summaries:
            cells = (a.id, str(a.version), a.status, a.reviewer, a.expires.isoformat(),
                     f"{len(a.approvals)} of {a.required}")  # fmt: skip
            table.add_row(*map(escape, cells))
        out_console().print(table)

    @group.command("show")
    @reports_errors
    def show(
        id_: AgreementId,
        format_: FormatOption = None,
        workspace: WorkspacePath = None,
    ) -> None:
        """Show exactly what a custodian approves: the latest version and its sha256, each
        column's treatment beside its class, and the difference from the active version."""
        with runtime(workspace) as rt:
            a = backend.agreement(rt, id_)
            classes = backend.classes(rt)
        if output_format(format_, TableOrJson) is TableOrJson.JSON:
            typer.echo(json.dumps(documents.agreement(a)))
            return
        _print_summary(a, classes)


def _print_summary(a: AgreementSummary, classes: dict[str, dict[str, str]]) -> None:
    print_ = out_console().print
    print_(f"{a.id} v{a.version} ({a.status}), proposed by {a.proposer}", markup=False)
    print_(f"sha256 {a.sha256}", markup=False)
    print_(
        f"reviewer {a.reviewer}; expires {a.expires.isoformat()}; mode "
        f"{a.document.get('mode', 'pseudonymous')}; approvals {len(a.approvals)} of {a.required}: "
        f"{', '.join(a.approvals) or 'none'}",
        markup=False,
    )
    print_(f"purpose: {a.document.get('purpose')}", markup=False)
    for name, grant in a.document.get("datasets", {}).items():
        rows = f" rows: {grant['rows']}" if grant.get("rows") else ""
        print_(f"dataset {name}{rows}", markup=False)
        for column, column_class in classes.get(name, {}).items():
            treatment = grant.get("columns", {}).get(column, "deny")
            print_(f"  {column:<24} {column_class:<18} {treatment}", markup=False)
    print_(f"limits: {json.dumps(a.document.get('limits') or 'the defaults')}", markup=False)
    if a.document.get("screens"):
        print_(f"screen thresholds: {json.dumps(a.document['screens'])}", markup=False)
    for custom in a.document.get("custom_screens", []):
        print_(f"custom screen {custom['name']}: {custom['rule']}\n  {custom['sql']}", markup=False)
    if a.active_version is not None and a.active_version != a.version:
        print_(f"changes from the active v{a.active_version}:", markup=False)
    elif a.active_version is None:
        print_("no version is active yet", markup=False)
    for line in a.changes:
        print_(f"  {line}", markup=False)
    if a.status == "pending":
        print_(
            f"approve exactly this: custodiet agreement approve {a.id} --version {a.version} "
            f"--sha256 {a.sha256} --as CUSTODIAN",
            markup=False,
        )
