"""`custodiet ledger ...`: checkpoints, keys, entries, proofs, full verification, witnessing."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from custodiet.cli.app import out_console, reports_errors
from custodiet.cli.options import (
    Actor,
    KeyPath,
    WorkspacePath,
    runtime,
    server_url,
    signed,
    workspace_from,
)
from custodiet.cli.progress import progress
from custodiet.errors import InputError, TamperedError

if TYPE_CHECKING:
    from custodiet.client import Remote
    from custodiet.ledger.verify import VerifierKey
    from custodiet.ledger.writer import Ledger
    from custodiet.progress import Progress

# Below this many entries, starting worker processes costs more than the audit itself.
PARALLEL_AUDIT_MIN = 1 << 16

VkeyOption = Annotated[
    str | None,
    typer.Option(
        "--key", help="The log's vkey to check against (default: this workspace's own key)."
    ),
]


def local_only() -> None:
    """This command works on the workspace itself: refused under ``--server``."""
    if server_url() is not None:
        raise InputError(
            "this ledger command reads the workspace itself and does not run against a server",
            hint="over a server, read the log with `ledger checkpoint | key | entries | proof | "
            "consistency | verify`, or as C2SP tlog-tiles (docs/deploy.md); run the rest on the "
            "workspace",
            code="CUST612",
        )


@contextmanager
def opened(workspace: Path | None) -> Iterator[Ledger]:
    local_only()
    ledger = workspace_from(workspace).ledger()
    try:
        yield ledger
    finally:
        ledger.close()


def echo_json(document: dict[str, object]) -> None:
    typer.echo(json.dumps(document))


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="The tamper-evident ledger: checkpoints, proofs, verification.")
    app.add_typer(group, name="ledger")
    register_audit(group)

    @group.command("checkpoint")
    @reports_errors
    def checkpoint(workspace: WorkspacePath = None) -> None:
        """Print the latest signed checkpoint (C2SP signed note) with every cosignature held."""
        if (remote := _remote()) is not None:
            with closing(remote):
                typer.echo(remote.text("/checkpoint"), nl=False)
            return
        with opened(workspace) as ledger:
            typer.echo(ledger.checkpoint(), nl=False)

    @group.command("key")
    @reports_errors
    def key(
        all_: Annotated[
            bool,
            typer.Option(
                "--all", help="Every key the log has had: FROM_SIZE VKEY per line, oldest first."
            ),
        ] = False,
        workspace: WorkspacePath = None,
    ) -> None:
        """Print the log's current verifier key (C2SP vkey: name+keyid+base64(0x01||pubkey))."""
        from custodiet.ledger.pin import LogPin

        if (remote := _remote()) is not None and not all_:
            with closing(remote):
                typer.echo(remote.state.vkey)
            return
        with opened(workspace) as ledger:
            current = ledger.vkey()
            history = LogPin(workspace_from(workspace).log_pin_path).read().history
        if not all_:
            typer.echo(current)
            return
        for vkey, from_size in history:
            typer.echo(f"{from_size} {vkey}")

    @group.command("rotate-key")
    @reports_errors
    def rotate_key_(as_: Actor, key: KeyPath = None, workspace: WorkspacePath = None) -> None:
        """Vote to move the log to its next signing key: K custodians each run this same
        command. The first run makes the next key (keys/log.ed25519.next); the entry that
        reaches K is signed with the old key, every later checkpoint with the new one."""
        from custodiet.logkey import next_vkey, rotate_key
        from custodiet.runtime import Runtime

        local_only()
        with runtime(workspace) as rt:
            assert isinstance(rt, Runtime)  # local_only: never a server here
            vkey = next_vkey(rt.ws)
            done = rotate_key(rt, signed(rt, as_, key, "key.rotate", {"vkey": vkey}))
        state = (
            f"rotated: checkpoints from size {done.from_size} are signed with it"
            if done.effective
            else "not rotated yet"
        )
        out_console().print(
            f"log key {done.vkey}: signed by {as_} ({done.votes} of {done.required}); {state};"
            f" ledger entry {done.ledger_index}",
            markup=False,
        )

    @group.command("entries")
    @reports_errors
    def entries(
        start: Annotated[int, typer.Option("--from", min=0, help="First index.")] = 0,
        end: Annotated[
            int | None, typer.Option("--to", min=0, help="Last index (inclusive).")
        ] = None,
        workspace: WorkspacePath = None,
    ) -> None:
        """Print entries as JSON lines, each exactly the canonical leaf data."""
        from custodiet.ledger.serving import checked_entries

        if end is not None and end < start:
            raise InputError(
                "--to comes before --from",
                hint="give --from FIRST --to LAST with FIRST <= LAST (both inclusive)",
                code="CUST291",
            )
        if (remote := _remote()) is not None:
            _remote_entries(remote, start, end)
            return
        with opened(workspace) as ledger:
            stop = ledger.size() if end is None else min(end + 1, ledger.size())
            for chunk in checked_entries(ledger, start, stop):
                sys.stdout.buffer.write(b"".join(data + b"\n" for data in chunk))
            sys.stdout.buffer.flush()

    @group.command("proof")
    @reports_errors
    def proof(
        index: Annotated[int, typer.Argument(help="Index of the entry.")],
        size: Annotated[
            int | None, typer.Option("--size", help="Tree size (default: current).")
        ] = None,
        workspace: WorkspacePath = None,
    ) -> None:
        """Print an inclusion proof (JSON, base64 hashes), checked against the signed root."""
        from custodiet.ledger.serving import checked_inclusion_proof

        if (remote := _remote()) is not None:
            with closing(remote):
                params = {} if size is None else {"size": size}
                echo_json(remote.get(f"/v1/proof/{index}", **params))
            return
        with opened(workspace) as ledger:
            echo_json(checked_inclusion_proof(ledger, index, size).to_json())

    @group.command("consistency")
    @reports_errors
    def consistency(
        old: Annotated[int, typer.Argument(help="Older tree size.")],
        new: Annotated[int, typer.Argument(help="Newer tree size.")],
        workspace: WorkspacePath = None,
    ) -> None:
        """Print a consistency proof between two tree sizes (JSON, base64 hashes)."""
        if (remote := _remote()) is not None:
            with closing(remote):
                echo_json(remote.get(f"/v1/consistency/{old}/{new}"))
            return
        with opened(workspace) as ledger:
            echo_json(ledger.consistency_proof(old, new).to_json())

    @group.command("verify")
    @reports_errors
    def verify(
        from_checkpoint: Annotated[
            Path | None,
            typer.Option("--from-checkpoint", help="An earlier checkpoint note you kept."),
        ] = None,
        vkey: VkeyOption = None,
        witness: Annotated[
            list[str] | None,
            typer.Option(
                "--witness",
                metavar="VKEY",
                help="A witness whose valid cosignature the latest checkpoint must carry "
                "(its vkey, or a file holding it; repeatable).",
            ),
        ] = None,
        witnesses_required: Annotated[
            int | None,
            typer.Option(
                "--witnesses-required",
                min=1,
                metavar="N",
                help="How many of the --witness keys must have cosigned (default: all).",
            ),
        ] = None,
        jobs: Annotated[
            int | None,
            typer.Option(
                "--jobs",
                min=1,
                help="Worker processes re-hashing the log (default: one per core for logs of "
                f"{PARALLEL_AUDIT_MIN:,} entries or more, else 1).",
                show_default=False,
            ),
        ] = None,
        workspace: WorkspacePath = None,
    ) -> None:
        """Re-hash every entry and stored node, check every checkpoint; exit 1 if tampered.

        With --server: the served checkpoint and every entry it covers, read over HTTP."""
        from custodiet.ledger.audit import audit, key_history, log_key
        from custodiet.ledger.pin import LogPin

        witnesses = [_witness_key(value) for value in witness or []]
        required = len(witnesses) if witnesses_required is None else witnesses_required
        if required > len(witnesses):
            raise InputError(
                f"--witnesses-required {required} is more than the {len(witnesses)} --witness "
                "keys given",
                hint="give at least N --witness keys",
                code="CUST294",
            )
        earlier = read_note(from_checkpoint) if from_checkpoint else None
        checkpoints = ""
        if (remote := _remote()) is not None:
            with closing(remote):
                size, note = _verify_remote(remote, vkey, earlier)
        else:
            with opened(workspace) as ledger:
                pinned = LogPin(workspace_from(workspace).log_pin_path).read()
                workers = jobs or (
                    os.cpu_count() or 1 if ledger.size() >= PARALLEL_AUDIT_MIN else 1
                )
                notes = [pinned.checkpoint, *([earlier] if earlier else [])]
                keys = log_key(vkey) if vkey else key_history(pinned.history)
                with progress("verifying entries") as step:
                    report = audit(ledger, keys, notes, workers, step)
                size, note = report.size, ledger.checkpoint()
                checkpoints = f", {report.checkpoints} signed checkpoints"
        cosigned = _check_cosigned(note, witnesses, required)
        out_console().print(
            f"verified: {size} entries"
            + checkpoints
            + (", consistent with the earlier checkpoint" if earlier else "")
            + (f", cosigned by {', '.join(cosigned)}" if cosigned else ""),
            markup=False,
        )

    @group.command("cosign")
    @reports_errors
    def cosign(workspace: WorkspacePath = None) -> None:
        """Ask every configured witness (`ledger witnesses`) to cosign the latest checkpoint
        (C2SP tlog-witness) and keep their cosignatures; `serve` does this by itself."""
        from custodiet.ledger.cosigning import Cosigner

        path = workspace_from(workspace).witnesses_path
        with opened(workspace) as ledger:
            outcomes = Cosigner(lambda: ledger, path).round()
        if not outcomes:
            out_console().print("no witnesses configured (`ledger witnesses add`)", markup=False)
        for name, outcome in outcomes.items():
            out_console().print(f"{name}: {outcome}", markup=False)

    register_witnesses(group)

    @group.command("witness")
    @reports_errors
    def witness(
        directory: Annotated[Path, typer.Option("--dir", help="The witness's own directory.")],
        name: Annotated[
            str | None, typer.Option("--name", help="Witness name (first run only).")
        ] = None,
        vkey: VkeyOption = None,
        workspace: WorkspacePath = None,
    ) -> None:
        """Cosign the latest checkpoint as a witness, after checking it extends the last one."""
        from custodiet.ledger.witness import Witness, check_witness_name

        if name is not None:
            check_witness_name(name)
        witness = Witness.open_or_create(directory, name)
        with opened(workspace) as ledger:
            note = ledger.checkpoint()
            size = int(note.split("\n")[1])
            witness.refuse_rollback(size)
            old = witness.state.size
            proof = ledger.consistency_proof(old, size).proof if old else []
            line = witness.cosign(note, vkey or witness.state.log_vkey or ledger.vkey(), proof)
            ledger.add_cosignature(size, witness.state.name, line)
        out_console().print(f"cosigned size {size} as {witness.vkey}", markup=False)


def _remote() -> Remote | None:
    """The server these reads go to (``--server``), else None."""
    url = server_url()
    if url is None:
        return None
    from custodiet.client import Remote

    return Remote(url)


def _remote_pages(remote: Remote, start: int, end: int | None) -> Iterator[bytes]:
    """The entries [start, end] from the server, page by page (it answers at most a page)."""
    while end is None or start <= end:
        bounds = {"from": start} if end is None else {"from": start, "to": end}
        lines = remote.text("/v1/entries", **bounds).encode().splitlines()
        if not lines:
            break
        yield from lines
        start += len(lines)


def _remote_entries(remote: Remote, start: int, end: int | None) -> None:
    try:
        for line in _remote_pages(remote, start, end):
            sys.stdout.buffer.write(line + b"\n")
        sys.stdout.buffer.flush()
    finally:
        remote.close()


def _verify_remote(remote: Remote, vkey: str | None, earlier: str | None) -> tuple[int, str]:
    """The served checkpoint verified under ``vkey`` (else the key the server names), the
    entries it covers re-hashed to its root, and consistency with ``earlier``."""
    from custodiet.ledger.audit import log_key
    from custodiet.ledger.verify import (
        VerificationError,
        parse_vkey,
        unb64,
        verify_checkpoint,
        verify_consistency,
        verify_entries,
    )

    key = log_key(vkey) if vkey else parse_vkey(remote.state.vkey)
    note = remote.text("/checkpoint")
    try:
        cp = verify_checkpoint(note, key)
    except VerificationError as exc:
        raise TamperedError(
            f"the served checkpoint does not verify: {exc}",
            hint="check --key is the log's key (`ledger key` on the log's side)",
            code="CUST114",
        ) from None
    try:
        verify_entries(_remote_pages(remote, 0, cp.size - 1) if cp.size else iter(()), cp)
    except VerificationError as exc:
        raise TamperedError(
            f"the served entries do not rebuild the signed root: {exc}",
            hint="keep the checkpoint and the entries as evidence and report it",
            code="CUST116",
        ) from None
    if earlier is not None:
        try:
            old = verify_checkpoint(earlier, key)
            proof = remote.get(f"/v1/consistency/{old.size}/{cp.size}")
            hashes = [unb64(str(h), "proof hash", 32) for h in proof["proof"]]
            verify_consistency(old.size, cp.size, hashes, old.root, cp.root)
        except VerificationError as exc:
            raise TamperedError(
                f"not consistent with the earlier checkpoint: {exc}",
                hint="keep both checkpoints as evidence and report it",
                code="CUST117",
            ) from None
    return cp.size, note


def _witness_key(value: str) -> VerifierKey:
    from custodiet.ledger.verify import key_argument

    try:
        return key_argument(value)
    except (OSError, ValueError) as exc:
        raise InputError(
            f"--witness: {exc}"
            if isinstance(exc, ValueError)
            else f"--witness: cannot read the file ({type(exc).__name__})",
            hint="give the witness's vkey (`custodiet witness key` on its side) or its file",
            code="CUST228",
        ) from None


def _check_cosigned(note: str, witnesses: list[VerifierKey], required: int) -> list[str]:
    """The required witnesses that cosigned ``note``; TamperedError CUST119 if too few did."""
    from custodiet.ledger.verify import cosigners, parse_checkpoint, split_note

    if not witnesses:
        return []
    cosigned = cosigners(note, witnesses)
    if len(cosigned) < required:
        size = parse_checkpoint(split_note(note)[0]).size
        missing = [w.name for w in witnesses if w.name not in cosigned]
        raise TamperedError(
            f"the latest checkpoint (size {size}) lacks valid cosignatures by "
            f"{', '.join(missing)} ({len(cosigned)} of {required} required)",
            hint="the witnesses may be down or may have refused a fork: see their logs, run "
            "`custodiet ledger cosign`, and verify again",
            code="CUST119",
        )
    return cosigned


def register_witnesses(group: typer.Typer) -> None:
    witnesses = typer.Typer(
        help="The witnesses the log asks to cosign its checkpoints (DIR/witnesses.json)."
    )
    group.add_typer(witnesses, name="witnesses")

    @witnesses.command("add")
    @reports_errors
    def add(
        vkey: Annotated[str, typer.Argument(help="The witness's vkey (`witness key`).")],
        url: Annotated[str, typer.Argument(help="Its URL prefix (POST URL/add-checkpoint).")],
        workspace: WorkspacePath = None,
    ) -> None:
        """Add a witness (or change its URL): the log asks it after every new checkpoint."""
        from custodiet.ledger.cosigning import add_witness

        local_only()
        ws = workspace_from(workspace)
        ws.manifest()
        added = add_witness(ws.witnesses_path, vkey, url)
        out_console().print(f"witness {added.name} at {added.url}", markup=False)

    @witnesses.command("list")
    @reports_errors
    def list_(workspace: WorkspacePath = None) -> None:
        """Print NAME URL VKEY for every configured witness."""
        from custodiet.ledger.cosigning import load_witnesses

        local_only()
        for w in load_witnesses(workspace_from(workspace).witnesses_path):
            typer.echo(f"{w.name} {w.url} {w.vkey}")

    @witnesses.command("remove")
    @reports_errors
    def remove(
        name: Annotated[str, typer.Argument(help="The witness's name.")],
        workspace: WorkspacePath = None,
    ) -> None:
        """Stop asking a witness (its cosignatures already held stay)."""
        from custodiet.ledger.cosigning import remove_witness

        local_only()
        remove_witness(workspace_from(workspace).witnesses_path, name)
        out_console().print(f"witness {name} removed", markup=False)


def read_note(path: Path) -> str:
    hint = "give --from-checkpoint a file saved from `custodiet ledger checkpoint`"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{path}: cannot read the checkpoint ({type(exc).__name__})", hint=hint, code="CUST228"
        ) from None
    if not text.strip():
        raise InputError(f"{path}: the checkpoint file is empty", hint=hint, code="CUST228")
    return text


def audit_workers(jobs: int | None, size: int) -> int:
    """``--jobs``, else one worker per core for a log of PARALLEL_AUDIT_MIN entries or more."""
    return jobs or ((os.cpu_count() or 1) if size >= PARALLEL_AUDIT_MIN else 1)


def register_audit(group: typer.Typer) -> None:
    @group.command("audit")
    @reports_errors
    def audit_(
        jobs: Annotated[
            int | None,
            typer.Option(
                "--jobs",
                min=1,
                help="Worker processes checking signatures ahead of the replay (default: one "
                f"per core for logs of {PARALLEL_AUDIT_MIN:,} entries or more, else 1).",
                show_default=False,
            ),
        ] = None,
        workspace: WorkspacePath = None,
    ) -> None:
        """Replay the ledger from its genesis: exit 0 when every signature checks and every
        access was authorized when it happened, else 1 naming the first entry and its rule.

        The same replay runs standalone: `python src/custodiet/ledger/replay.py --help`."""
        from custodiet.ledger.replay import audit_lines

        with opened(workspace) as ledger:
            size = ledger.size()
            workers = audit_workers(jobs, size)
            with progress("replaying entries") as step:
                counted = None if step is None else partial(_replayed, step, size)
                _, result = audit_lines((data for _, data in ledger.entries()), workers, counted)
        if result.violation is not None:
            index, code, rule = result.violation
            raise TamperedError(
                f"not authorized: ledger entry {index}: {rule} [{code}]",
                hint="the entry is kept; report it (docs/ledger.md, `ledger audit`)",
                code="CUST539",
            )
        for index in result.unfinished:
            out_console().print(
                f"unfinished: entry {index} is an intent without an outcome", markup=False
            )
        out_console().print(
            f"authorized: {result.entries} entries replayed; every access was authorized",
            markup=False,
        )


def _replayed(step: Progress, size: int, done: int) -> None:
    step(done, size)
