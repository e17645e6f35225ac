"""`custodiet serve`: the one process that opens the workspace; `custodiet doctor`: is the
workspace private to it?

FastAPI and uvicorn load inside `serve` only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from custodiet.cli.app import err_console, out_console, reports_errors
from custodiet.cli.options import WorkspacePath, workspace_from


def register(app: typer.Typer) -> None:
    @app.command("serve")
    @reports_errors
    def serve(
        workspace: WorkspacePath = None,
        host: Annotated[
            str, typer.Option("--host", metavar="ADDRESS", help="Address to listen on.")
        ] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = 8470,
        ssl_keyfile: Annotated[
            Path | None,
            typer.Option("--ssl-keyfile", metavar="FILE", help="TLS private key (PEM)."),
        ] = None,
        ssl_certfile: Annotated[
            Path | None,
            typer.Option("--ssl-certfile", metavar="FILE", help="TLS certificate chain (PEM)."),
        ] = None,
        max_in_flight: Annotated[
            int,
            typer.Option(
                "--max-in-flight",
                min=1,
                help="Requests one principal may have in flight at once (more are refused, 429).",
            ),
        ] = 4,
        rate: Annotated[
            float,
            typer.Option(
                "--rate",
                min=0.1,
                help="Requests per second one principal may "
                "send, sustained and as a burst (more are refused, 429).",
            ),
        ] = 20.0,
        max_body: Annotated[
            int,
            typer.Option(
                "--max-body",
                min=1024,
                help="Largest request body in bytes (larger are refused, 413).",
            ),
        ] = 1 << 20,
    ) -> None:
        """Serve the workspace over HTTP: signed actions under /v1, the log as C2SP tlog-tiles.

        Refuses to start on a workspace that group or others can read (see `custodiet doctor`).
        Run it as its own OS user (docs/deploy.md); clients use `custodiet --server URL`."""
        from custodiet.permissions import require_private

        ws = workspace_from(workspace)
        ws.manifest()
        require_private(ws.root)
        os.umask(0o077)  # everything the server creates stays the vault's alone

        import uvicorn

        from custodiet.api.app import create_app
        from custodiet.api.limits import Limits

        limits = Limits(body_bytes=max_body, concurrent=max_in_flight, rate=rate, burst=rate)

        scheme = "https" if ssl_certfile else "http"
        err_console().print(f"serving {ws.root} at {scheme}://{host}:{port}", markup=False)
        uvicorn.run(
            create_app(ws.root, limits),
            host=host,
            port=port,
            ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
            ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
            log_level="warning",
            access_log=False,
            server_header=False,
        )

    @app.command("doctor")
    @reports_errors
    def doctor(workspace: WorkspacePath = None) -> None:
        """Check that the workspace is private to its owner (dirs 0700, files 0600); exit 1
        listing every path group or others can use."""
        from custodiet.permissions import problems, require_private

        ws = workspace_from(workspace)
        ws.manifest()
        found = problems(ws.root)
        for line in found:
            err_console().print(f"problem: {line}", markup=False)
        require_private(ws.root)
        out_console().print(f"ok: {ws.root} is private to its owner", markup=False)
