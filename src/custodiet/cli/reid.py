"""`custodiet reid request | list | approve | deny | show`: break-glass re-identification."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from custodiet.api import documents
from custodiet.cli import backend
from custodiet.cli.app import out_console, reports_errors
from custodiet.cli.backend import call
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

RequestId = Annotated[
    int,
    typer.Argument(help="The request id (`reid list` shows them).", metavar="REQUEST_ID",
                   min=0, max=2**53 - 1),
]  # fmt: skip


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Re-identify named cases, each request approved by K custodians, all on the ledger.",
        no_args_is_help=True,
    )
    app.add_typer(group, name="reid")

    @group.command("request")
    @reports_errors
    def request(
        agreement: Annotated[
            str,
            typer.Option("--agreement", metavar="ID", help="The agreement the cases came from."),
        ],
        as_: Actor,
        cases: Annotated[
            list[str],
            typer.Option(
                "--case", metavar="TOKEN", help="A payee token to re-identify (repeat; at most 20)."
            ),
        ],
        reason: Annotated[
            str, typer.Option("--reason", metavar="TEXT", help="Why these cases need a human.")
        ],
        fields: Annotated[
            str,
            typer.Option(
                "--fields",
                metavar="LIST",
                help="What the release discloses, comma-separated: name, tin, bank "
                "(bank numbers only when asked).",
            ),
        ] = "name,tin",
        key: KeyPath = None,
        workspace: WorkspacePath = None,
    ) -> None:
        """Ask to re-identify case tokens (as the agreement's reviewer)."""
        from custodiet.reid import request_reid

        wanted = [f.strip() for f in fields.split(",") if f.strip()]
        with runtime(workspace) as rt:
            filed = call(rt, request_reid, signed(rt, as_, key, "reid.request", {
                "agreement": agreement, "tokens": [c.strip() for c in cases],
                "fields": wanted, "reason": reason.strip(),
            }))  # fmt: skip
            k = rt.state.min_approvals
        out_console().print(
            f"request {filed.id}: {len(filed.tokens)} case token(s) under agreement "
            f"'{filed.agreement}' (v{filed.version}); fields {', '.join(filed.fields)}; expires "
            f"{filed.expires.isoformat(timespec='seconds')}\n"
            f"next: {k} custodians review it with `custodiet reid list` and run "
            f"`custodiet reid approve {filed.id} --sha256 {filed.sha256} --as CUSTODIAN`",
            markup=False,
        )

    @group.command("list")
    @reports_errors
    def list_(format_: FormatOption = None, workspace: WorkspacePath = None) -> None:
        """The pending requests, each exactly as a custodian approves it."""
        with runtime(workspace) as rt:
            requests, k = backend.pending_reid(rt), rt.state.min_approvals
        if output_format(format_, TableOrJson) is TableOrJson.JSON:
            typer.echo(json.dumps([documents.reid_request(r) for r in requests]))
            return
        if not requests:
            out_console().print("no pending re-identification requests", markup=False)
        for r in requests:
            out_console().print(
                f"request {r.id} by {r.requester} under '{r.agreement}' v{r.version}; "
                f"{len(r.approvals)} of {k} approvals ({', '.join(r.approvals) or 'none'}); "
                f"expires {r.expires.isoformat(timespec='seconds')}\n"
                f"  reason: {r.reason}\n  tokens: {', '.join(r.tokens)}\n"
                f"  fields: {', '.join(r.fields)}\n  sha256: {r.sha256}",
                markup=False,
            )

    @group.command("approve")
    @reports_errors
    def approve(
        request_id: RequestId,
        sha256: Annotated[
            str,
            typer.Option(
                "--sha256", metavar="HEX", help="The request's sha256, as `reid list` shows it."
            ),
        ],
        as_: Actor,
        key: KeyPath = None,
        workspace: WorkspacePath = None,
    ) -> None:
        """Approve exactly the request you reviewed (a custodian; not its requester)."""
        from custodiet.reid import approve_reid

        with runtime(workspace) as rt:
            approved = call(
                rt,
                approve_reid,
                signed(
                    rt, as_, key, "reid.approve", {"request": request_id, "sha256": sha256.lower()}
                ),
            )
            k = rt.state.min_approvals  # fmt: skip
        done = len(approved.approvals) >= k
        out_console().print(
            f"request {approved.id} approved by {as_}: {len(approved.approvals)} of {k} approvals"
            + (f"; {approved.requester} can now run `custodiet reid show {approved.id}`"
               if done else ""),
            markup=False,
        )  # fmt: skip

    @group.command("deny")
    @reports_errors
    def deny(
        request_id: RequestId,
        reason: Annotated[str, typer.Option("--reason", metavar="TEXT", help="Why it is denied.")],
        as_: Actor,
        key: KeyPath = None,
        workspace: WorkspacePath = None,
    ) -> None:
        """Deny a request (a custodian), with a reason; it can no longer be released."""
        from custodiet.reid import deny_reid

        with runtime(workspace) as rt:
            denied = call(
                rt,
                deny_reid,
                signed(rt, as_, key, "reid.deny", {"request": request_id, "reason": reason}),
            )
        out_console().print(f"request {denied.id} denied by {as_}", markup=False)  # fmt: skip

    @group.command("show")
    @reports_errors
    def show(
        request_id: RequestId,
        as_: Actor,
        format_: FormatOption = None,
        key: KeyPath = None,
        workspace: WorkspacePath = None,
    ) -> None:
        """Reveal the identified records of an approved request (its requester only)."""
        from custodiet.reid import show_reid
        from custodiet.reid.render import records_table

        with runtime(workspace) as rt:
            release = call(
                rt, show_reid, signed(rt, as_, key, "reid.show", {"request": request_id})
            )
        if output_format(format_, TableOrJson) is TableOrJson.JSON:
            document = documents.release(request_id, release)
            typer.echo(json.dumps(document))
            return
        out_console().print(
            records_table(release.records, f"Re-identified records of request {request_id}")
        )
        out_console().print(
            f"released {len(release.records)} record(s); ledger entry {release.ledger_index} "
            f"holds the tokens and the digest {release.records_sha256}, not the identities",
            markup=False,
        )
