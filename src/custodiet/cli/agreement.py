"""`custodiet agreement apply | approve | list | show | revoke`: the agreement lifecycle.

The lifecycle and Rich tables load inside the commands, keeping every other command's start short.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from custodiet.cli.app import out_console, reports_errors
from custodiet.cli.options import Actor, WorkspacePath, workspace_from

if TYPE_CHECKING:
    from custodiet.workspace import Workspace

AgreementId = Annotated[str, typer.Argument(help="Agreement id, e.g. ssa-deceased-payees.")]


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Propose, approve, revoke and inspect data-use agreements.")
    app.add_typer(group, name="agreement")

    @group.command("apply")
    @reports_errors
    def apply(
        file: Annotated[Path, typer.Argument(help="The agreement YAML (CONTRACT.md §3).")],
        as_: Actor,
        workspace: WorkspacePath = None,
    ) -> None:
        """Propose an agreement, or a new version of it (which needs approval again)."""
        from custodiet.agreements.lifecycle import apply_agreement

        result = apply_agreement(workspace_from(workspace), file, as_)
        where = f"{result.id} v{result.version} (sha256 {result.sha256})"
        if result.is_new:
            out_console().print(f"proposed {where}; it needs custodian approvals", markup=False)
        else:
            out_console().print(f"unchanged: {where} is already the latest version", markup=False)

    @group.command("approve")
    @reports_errors
    def approve_(id_: AgreementId, as_: Actor, workspace: WorkspacePath = None) -> None:
        """Approve the latest version as a custodian (never the agreement's reviewer)."""
        from custodiet.agreements.lifecycle import approve

        ws = workspace_from(workspace)
        status = approve(ws, id_, as_)
        out_console().print(
            f"approved {status.id} v{status.version}: {status.approvals} of "
            f"{status.required} approvals; {'active' if status.active else 'not active yet'}",
            markup=False,
        )
        if status.active:
            _activate(ws, id_)

    @group.command("revoke")
    @reports_errors
    def revoke_(id_: AgreementId, as_: Actor, workspace: WorkspacePath = None) -> None:
        """Revoke the latest version at once (custodians only)."""
        from custodiet.agreements.lifecycle import revoke

        result = revoke(workspace_from(workspace), id_, as_)
        out_console().print(f"revoked {result.id} v{result.version}", markup=False)

    @group.command("list")
    @reports_errors
    def list_(workspace: WorkspacePath = None) -> None:
        """List agreements: latest version, status and approvals."""
        from rich.markup import escape
        from rich.table import Table

        from custodiet.agreements.lifecycle import list_agreements

        table = Table("id", "version", "status", "reviewer", "expires", "approvals")
        for a in list_agreements(workspace_from(workspace)):
            cells = (a.id, str(a.version), a.status, a.reviewer, a.expires.isoformat(),
                     f"{len(a.approvals)} of {a.required}")  # fmt: skip
            table.add_row(*map(escape, cells))
        out_console().print(table)

    @group.command("show")
    @reports_errors
    def show(id_: AgreementId, workspace: WorkspacePath = None) -> None:
        """Show the latest version of an agreement, its status and who approved it."""
        from custodiet.agreements.lifecycle import show_agreement

        a = show_agreement(workspace_from(workspace), id_)
        out_console().print(
            f"{a.id} v{a.version} {a.status}; sha256 {a.sha256}\n"
            f"approvals {len(a.approvals)} of {a.required}: {', '.join(a.approvals) or 'none'}",
            markup=False,
        )
        out_console().print(json.dumps(a.document, indent=2), markup=False)


def _activate(ws: Workspace, agreement_id: str) -> None:
    """Build the protected projection of the agreement version that just became active."""
    from custodiet.agreements.lifecycle import active_agreement
    from custodiet.gateway.projection import ensure_projection

    path = ensure_projection(ws, active_agreement(ws, agreement_id))
    out_console().print(f"protected projection ready: {path.name}", markup=False)
