"""`custodiet reid request | approve | show`: break-glass re-identification of named cases."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from custodiet.cli.app import out_console, reports_errors
from custodiet.cli.options import Actor, TableOrJson, WorkspacePath, workspace_from

RequestId = Annotated[int, typer.Argument(help="The request id printed by `reid request`.")]


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Re-identify named cases, each request approved by two custodians, all on the ledger.",
        no_args_is_help=True,
    )
    app.add_typer(group, name="reid")

    @group.command("request")
    @reports_errors
    def request(
        agreement: Annotated[
            str, typer.Option("--agreement", help="The agreement the cases came from.")
        ],
        as_: Actor,
        cases: Annotated[
            list[str],
            typer.Option("--case", help="A payee token to re-identify (repeat; at most 20)."),
        ],
        reason: Annotated[str, typer.Option("--reason", help="Why these cases need a human.")],
        workspace: WorkspacePath = None,
    ) -> None:
        """Ask to re-identify case tokens (as the agreement's reviewer)."""
        from custodiet.reid import APPROVALS_REQUIRED, request_reid

        filed = request_reid(workspace_from(workspace), agreement, as_, cases, reason)
        out_console().print(
            f"request {filed.id}: {len(filed.tokens)} case token(s) under agreement "
            f"'{filed.agreement_id}' (v{filed.agreement_version}); expires "
            f"{filed.expires.isoformat(timespec='seconds')}\n"
            f"next: {APPROVALS_REQUIRED} custodians run `custodiet reid approve {filed.id} "
            "--as CUSTODIAN`",
            markup=False,
        )

    @group.command("approve")
    @reports_errors
    def approve(request_id: RequestId, as_: Actor, workspace: WorkspacePath = None) -> None:
        """Approve a request as a custodian (not its requester; each custodian once)."""
        from custodiet.reid import APPROVALS_REQUIRED, approve_reid

        approved = approve_reid(workspace_from(workspace), request_id, as_)
        done = len(approved.approvals) >= APPROVALS_REQUIRED
        out_console().print(
            f"request {approved.id} approved by {as_}: {len(approved.approvals)} of "
            f"{APPROVALS_REQUIRED} approvals"
            + (
                f"; {approved.requester} can now run `custodiet reid show {approved.id}`"
                if done
                else ""
            ),
            markup=False,
        )

    @group.command("show")
    @reports_errors
    def show(
        request_id: RequestId,
        as_: Actor,
        format_: Annotated[
            TableOrJson, typer.Option("--format", help="table or json.")
        ] = TableOrJson.TABLE,
        workspace: WorkspacePath = None,
    ) -> None:
        """Reveal the identified records of an approved request (its requester only)."""
        from custodiet.reid import show_reid
        from custodiet.reid.render import records_table

        release = show_reid(workspace_from(workspace), request_id, as_)
        if format_ is TableOrJson.JSON:
            document = {
                "request": request_id,
                "records": [
                    {"token": r.token, "dataset": r.dataset, **dict(r.fields)}
                    for r in release.records
                ],
                "records_sha256": release.records_sha256,
                "ledger_index": release.ledger_index,
            }
            out_console().print(json.dumps(document), markup=False)
            return
        out_console().print(
            records_table(release.records, f"Re-identified records of request {request_id}")
        )
        out_console().print(
            f"released {len(release.records)} record(s); ledger entry {release.ledger_index} "
            f"holds the tokens and the digest {release.records_sha256}, not the identities",
            markup=False,
        )
