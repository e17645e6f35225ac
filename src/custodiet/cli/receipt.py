"""`custodiet verify-result FILE`: FILE is exactly what the gateway released, and the release is
on the log. Also the writing side: ``write_with_receipt`` puts FILE and FILE.receipt.json beside
each other for `query --out` and `screen run --out`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from custodiet.cli.app import err_console, out_console, reports_errors
from custodiet.cli.options import WorkspacePath, server_url
from custodiet.errors import CustodietError, InputError, SystemFailure, TamperedError

if TYPE_CHECKING:
    from custodiet.cli.options import Session
    from custodiet.ledger.receipts import Receipt, Verified
    from custodiet.ledger.verify import VerifierKey


def write_with_receipt(
    rt: Session, out: Path, kind: str, data: bytes | None, link: dict[str, Any]
) -> None:
    """``data`` (the file the gateway rendered and recorded) in ``out``, and its receipt in
    ``out.receipt.json``, once the receipt verifies under the log's key; else nothing."""
    from custodiet.cli.backend import log_proof
    from custodiet.ledger import receipts
    from custodiet.ledger.verify import VerificationError, parse_vkey

    sidecar = out.with_name(out.name + receipts.SUFFIX)
    try:
        if data is None:
            raise VerificationError("the gateway's answer holds no rendered file")
        log = log_proof(rt, int(link["ledger_index"]))
        document = receipts.document(log, name=out.name, kind=kind, data=data, link=link)
        text = json.dumps(document, ensure_ascii=False, indent=1) + "\n"
        receipts.verify(receipts.parse(text, sidecar.name), data, parse_vkey(log.vkey), out.name)
    except (VerificationError, InputError, TamperedError) as exc:
        raise SystemFailure(
            f"the receipt for {out.name} does not verify ({exc}); nothing was written",
            hint="the release is on the ledger; check the log (`custodiet ledger verify`) and "
            "ask again",
            code="CUST154",
        ) from None
    out.write_bytes(data)
    sidecar.write_text(text, encoding="utf-8")
    err_console().print(f"wrote {out} and {sidecar.name}", markup=False)


def register(app: typer.Typer) -> None:
    @app.command("verify-result")
    @reports_errors
    def verify_result(
        file: Annotated[
            Path,
            typer.Argument(
                help="A file written with --out by query, screen run, monitor or case list."
            ),
        ],
        receipt: Annotated[
            Path | None,
            typer.Option(
                "--receipt",
                metavar="R",
                help="Its receipt (default: FILE.receipt.json).",
                show_default=False,
            ),
        ] = None,
        vkey: Annotated[
            str | None,
            typer.Option(
                "--vkey",
                metavar="KEY",
                help="The log key to trust: the vkey, or a file holding it (`custodiet ledger "
                "key`). Default: the server's (--server), else the workspace's pinned key.",
                show_default=False,
            ),
        ] = None,
        witness: Annotated[
            list[str] | None,
            typer.Option(
                "--witness",
                metavar="KEY",
                help="A witness whose cosignature the checkpoint must carry: its vkey, or a file "
                "holding it (repeatable).",
                show_default=False,
            ),
        ] = None,
        workspace: WorkspacePath = None,
    ) -> None:
        """Check that FILE is exactly what the gateway released and that the release is on the log.

        FILE's sha256 must be the one its ledger entry recorded, the entry must be included in
        the receipt's checkpoint, and the checkpoint signed by the trusted log key (never the
        key the receipt names). With --server, the checkpoint must also be consistent with the
        server's current one. Needs no workspace: the file, the receipt and --vkey suffice.
        Exit 0 VERIFIED, 1 NOT VERIFIED naming the check that failed, 2 unreadable or
        malformed input (naming the field).
        """
        from custodiet.ledger import receipts

        sidecar = receipt or file.with_name(file.name + receipts.SUFFIX)
        data = _read(file, "the file").read_bytes()
        parsed = receipts.parse(_read(sidecar, "the receipt").read_bytes(), str(sidecar))
        key, trusted = _trusted_key(vkey, workspace, parsed)
        witnesses = [_key(w, "--witness") for w in witness or ()]
        verified = receipts.verify(parsed, data, key, str(file), witnesses)
        consistent = _consistent_with_server(verified, key, str(file))
        entry = verified.entry
        what = f"{entry['action']} by {entry.get('actor')} under {entry.get('agreement')}"
        version = entry.get("agreement_version")
        out_console().print(
            f"VERIFIED {file}: sha256 {verified.sha256}\n"
            f"  is the {entry.get('output_format')} file ledger entry {verified.index} released "
            f"({what}{f' v{version}' if version is not None else ''}, {entry.get('time')})\n"
            f"  included in checkpoint {verified.checkpoint.origin} size "
            f"{verified.checkpoint.size}{consistent}\n"
            f"  trusted log key: {trusted}",
            markup=False,
            soft_wrap=True,
        )


def _read(path: Path, what: str) -> Path:
    if not path.is_file():
        raise InputError(
            f"{path}: {what} cannot be read (missing or not a file)",
            hint="name the file `--out` wrote; its receipt is FILE.receipt.json (or --receipt R)",
            code="CUST296",
        )
    return path


def _trusted_key(vkey: str | None, workspace: Path | None, receipt: Receipt) -> tuple[Any, str]:
    """The log key to trust and where it came from: --vkey, else the server's, else the
    workspace's pinned key in force at the receipt's checkpoint. Never the receipt's own."""
    from custodiet.ledger.verify import VerificationError, parse_vkey

    if vkey is not None:
        key = _key(vkey, "--vkey")
        return key, f"{_vkey_text(key)} (from --vkey)"
    url = server_url()
    if url is not None:
        from custodiet.client import Remote

        remote = Remote(url)
        try:
            served = remote.state.vkey
        finally:
            remote.close()
        return parse_vkey(served), f"{served} (the server's, {url})"
    from custodiet.ledger.pin import LogPin, key_at
    from custodiet.ledger.receipts import checkpoint_size
    from custodiet.settings import resolve_workspace
    from custodiet.workspace import PIN_FILE

    root = resolve_workspace(workspace)
    if not (root / PIN_FILE).is_file():
        raise _no_key("no log key to trust")
    pinned = LogPin(root / PIN_FILE).read()
    try:
        found = key_at(pinned.history, checkpoint_size(receipt.checkpoint))
    except VerificationError:
        found = pinned.vkey  # the checkpoint's own check names what is wrong with it
    return parse_vkey(found), f"{found} (pinned in workspace {root})"


def _key(value: str, option: str) -> VerifierKey:
    from custodiet.ledger.verify import key_argument

    try:
        return key_argument(value)
    except (ValueError, OSError):
        raise _no_key(f"{option} is not a verifier key (nor a file holding one)") from None


def _vkey_text(key: VerifierKey) -> str:
    import base64

    raw = bytes([key.key_type]) + key.public_key
    return f"{key.name}+{key.key_id.hex()}+{base64.b64encode(raw).decode()}"


def _no_key(message: str) -> InputError:
    return InputError(
        message,
        hint="give --vkey KEY (the log's key: `custodiet ledger key > log.vkey`), --server URL "
        "or --workspace DIR",
        code="CUST297",
    )


def _consistent_with_server(verified: Verified, key: Any, name: str) -> str:
    """With --server: the receipt's checkpoint is a prefix of the server's current log."""
    url = server_url()
    if url is None:
        return ""
    from custodiet.client import Remote
    from custodiet.ledger.verify import (
        VerificationError,
        unb64,
        verify_checkpoint,
        verify_consistency,
    )

    old = verified.checkpoint
    remote = Remote(url)
    try:
        current = verify_checkpoint(remote.text("/checkpoint"), key)
        proof = remote.get(f"/v1/consistency/{old.size}/{current.size}")["proof"]
        hashes = [unb64(str(h), "consistency proof hash", 32) for h in proof]
        verify_consistency(old.size, current.size, hashes, old.root, current.root)
    except (VerificationError, CustodietError, KeyError, TypeError) as exc:
        message = exc.message if isinstance(exc, CustodietError) else str(exc)
        raise TamperedError(
            f"NOT VERIFIED {name}: the receipt's checkpoint is not consistent with the "
            f"server's current log ({message})",
            hint="a log that forked or shrank after the release: keep both checkpoints as "
            "evidence and tell the overseers",
            code="CUST153",
        ) from None
    finally:
        remote.close()
    return f", consistent with the server's checkpoint of size {current.size}"
