"""`custodiet witness ...`: a witness of another party's log, served over HTTP (C2SP
tlog-witness). FastAPI and uvicorn load inside `witness serve` only."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from custodiet.cli.app import err_console, reports_errors

if TYPE_CHECKING:
    from custodiet.ledger.witness import Witness

WitnessDir = Annotated[Path, typer.Option("--dir", help="The witness's own directory.")]
LogVkey = Annotated[
    str | None,
    typer.Option(
        "--log-vkey",
        metavar="VKEY",
        help="The log's verifier key (`custodiet ledger key` on its side), pinned at first use.",
    ),
]


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="A witness cosigning a log's checkpoints over HTTP (C2SP).")
    app.add_typer(group, name="witness")

    @group.command("init")
    @reports_errors
    def init(
        directory: WitnessDir,
        log_vkey: LogVkey = None,
        name: Annotated[
            str | None, typer.Option("--name", help="Witness name (a C2SP key name).")
        ] = None,
    ) -> None:
        """Make a witness (its key and state) in --dir, or open it; print its vkey."""
        witness = _opened(directory, name, log_vkey)
        typer.echo(witness.vkey)

    @group.command("key")
    @reports_errors
    def key(directory: WitnessDir) -> None:
        """Print the witness's vkey (the log's operator adds it with `ledger witnesses add`)."""
        from custodiet.ledger.witness import Witness

        typer.echo(Witness(_existing(directory)).vkey)

    @group.command("serve")
    @reports_errors
    def serve(
        directory: WitnessDir,
        log_vkey: LogVkey = None,
        name: Annotated[
            str | None, typer.Option("--name", help="Witness name (first run only).")
        ] = None,
        host: Annotated[
            str, typer.Option("--host", metavar="ADDRESS", help="Address to listen on.")
        ] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = 8471,
    ) -> None:
        """Serve POST /add-checkpoint (C2SP tlog-witness) for the one log whose key it pins."""
        import os

        from custodiet.errors import InputError

        os.umask(0o077)
        witness = _opened(directory, name, log_vkey)
        if witness.state.log_vkey is None:
            raise InputError(
                "--log-vkey: the witness has no log key yet",
                hint="give the log's key (`custodiet ledger key` on its side) once",
                code="CUST293",
            )
        import uvicorn

        from custodiet.api.witness import create_witness_app

        err_console().print(f"witness {witness.vkey} serving at http://{host}:{port}", markup=False)
        uvicorn.run(
            create_witness_app(directory),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            server_header=False,
        )


def _existing(directory: Path) -> Path:
    from custodiet.ledger.witness import STATE_FILE, unusable_directory

    if not (directory / STATE_FILE).is_file():
        raise unusable_directory(directory, "holds no witness (make one with `witness init`)")
    return directory


def _opened(directory: Path, name: str | None, log_vkey: str | None) -> Witness:
    from custodiet.ledger.witness import Witness, check_witness_name

    if name is not None:
        check_witness_name(name)
    witness = Witness.open_or_create(directory, name)
    if log_vkey is not None:
        witness.pin_log(log_vkey)
    return witness
