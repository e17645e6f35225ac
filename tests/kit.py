"""Keys and signed actions for tests: every principal is a name whose Ed25519 key is derived
from it (reproducible, made on first use), and each helper signs and runs one action the way
the CLI does (one runtime per call).

    kit = Kit(tmp_path)                             # Kit() signs in memory, writes no key files
    ws = kit.init(tmp_path / "ws")                  # custodians ana, ben; K = 2
    kit.add_principal(ws, "rae", Role.REVIEWER)     # signed by ana
    kit.call(ws, run_query, "rae", "query", agreement="a", sql="SELECT 1")  # any service, signer
    kit.as_("rae")                                  # CLI: ["--as", "rae", "--key", FILE]
    set_clock(monkeypatch, moment)                  # checks, signatures and ledger stamps at once
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custodiet.identity import SignedRequest, sign_request
from custodiet.runtime import Runtime, opened
from custodiet.workspace import Workspace, init_workspace

T = TypeVar("T")
CUSTODIANS = ("ana", "ben")


def private_key(name: str) -> Ed25519PrivateKey:
    """The test key of ``name`` (derived from the name: the same in every test run)."""
    return Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(b"test-key/" + name.encode()).digest()
    )


def public_key(name: str) -> str:
    raw = (
        private_key(name)
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    )
    return raw.decode("ascii")


class Kit:
    def __init__(self, directory: Path | None = None) -> None:
        """Key files go to ``directory/keys``; ``Kit()`` only signs in memory (no files)."""
        self._directory = None if directory is None else directory / "keys"
        if self._directory is not None:
            self._directory.mkdir(parents=True, exist_ok=True)

    @property
    def directory(self) -> Path:
        if self._directory is None:
            raise ValueError("Kit() writes no key files: give it a directory")
        return self._directory

    # --- files, for CLI tests ------------------------------------------------------------------

    def key_file(self, name: str) -> Path:
        """``name``'s private key as an OpenSSH file (mode 0600), and FILE.pub beside it."""
        path = self.directory / name
        if not path.exists():
            pem = private_key(name).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.OpenSSH,
                serialization.NoEncryption(),
            )
            path.write_bytes(pem)
            path.chmod(0o600)
            path.with_name(name + ".pub").write_text(public_key(name) + " " + name + "\n")
        return path

    def pub_file(self, name: str) -> Path:
        return self.key_file(name).with_name(name + ".pub")

    def as_(self, name: str) -> list[str]:
        """CLI arguments acting as ``name``: ``--as NAME --key FILE``."""
        return ["--as", name, "--key", str(self.key_file(name))]

    # --- the workspace -------------------------------------------------------------------------

    def init(
        self,
        root: Path,
        custodians: Sequence[str] = CUSTODIANS,
        k: int = 2,
        ledger_store: str | None = None,
    ) -> Workspace:
        return init_workspace(
            root,
            ledger_store,
            custodians={name: public_key(name) for name in custodians},
            min_approvals=k,
        )

    # --- signing and running -------------------------------------------------------------------

    def sign(
        self,
        rt: Runtime,
        name: str,
        action: str,
        args: Mapping[str, Any],
        *,
        key_of: str | None = None,
        now: dt.datetime | None = None,
        origin: str | None = None,
    ) -> SignedRequest:
        """``name``'s request signed with ``key_of``'s key (default: their own), at ``now``
        (default: the runtime's clock)."""
        return sign_request(
            private_key(key_of or name), name, origin or rt.state.origin, action, args,
            now=now if now is not None else rt.now(),
        )  # fmt: skip

    def call(
        self,
        ws: Workspace,
        service: Callable[[Runtime, SignedRequest], T],
        signer: str,
        action: str,
        /,
        **args: Any,
    ) -> T:
        """Run ``service`` on ``signer``'s signed request (one runtime, as one CLI command)."""
        with opened(ws) as rt:
            return service(rt, self.sign(rt, signer, action, args))

    def add_principal(
        self, ws: Workspace, name: str, role: str, by: Iterable[str] = ("ana",)
    ) -> None:
        from custodiet.principals import add_principal

        for signer in by:
            self.call(ws, add_principal, signer, "principal.add",
                      name=name, role=str(role), pubkey=public_key(name))  # fmt: skip

    def add_dataset(
        self,
        ws: Workspace,
        name: str,
        path: Path | str,
        classify: Mapping[str, str] | None = None,
        by: Iterable[str] = ("ana",),
    ) -> Any:
        from custodiet.catalog.registry import add_dataset

        done = None
        for signer in by:
            done = self.call(ws, add_dataset, signer, "dataset.add", name=name,
                             path=str(Path(path).resolve()) if "::" not in str(path) else str(path),
                             classify={k: str(v) for k, v in (classify or {}).items()})  # fmt: skip
        return done

    def apply(self, ws: Workspace, path: Path, by: str) -> Any:
        """Propose the agreement file at ``path`` as ``by``."""
        from custodiet.agreements.lifecycle import apply_agreement, load_document

        with opened(ws) as rt:
            document, _ = load_document(path, rt.state)
            return apply_agreement(
                rt, self.sign(rt, by, "agreement.propose", {"document": document})
            )

    def approve(self, ws: Workspace, agreement_id: str, by: str) -> Any:
        """``by``'s approval of the pending version, exactly as `agreement show` presents it."""
        from custodiet.gateway.activation import approve_and_activate

        with opened(ws) as rt:
            latest = rt.state.agreements[agreement_id].latest
            args = {"agreement": agreement_id, "version": latest.number, "sha256": latest.sha256}
            return approve_and_activate(rt, self.sign(rt, by, "agreement.approve", args))

    def approve_all(self, ws: Workspace, agreement_id: str, by: Iterable[str] = CUSTODIANS) -> None:
        for custodian in by:
            self.approve(ws, agreement_id, custodian)

    def query(
        self, ws: Workspace, agreement_id: str, sql: str, by: str = "rae", dry_run: bool = False
    ) -> Any:
        from custodiet.gateway.service import run_query

        extra = {"dry_run": True} if dry_run else {}
        return self.call(ws, run_query, by, "query", agreement=agreement_id, sql=sql, **extra)

    def screens(
        self, ws: Workspace, agreement_id: str, by: str = "rae", names: Sequence[str] = ()
    ) -> Any:
        from custodiet.screens.run import run_screens

        return self.call(
            ws, run_screens, by, "screen.run", agreement=agreement_id, screens=list(names)
        )

    def state(self, ws: Workspace) -> Any:
        with opened(ws) as rt:
            return rt.state


def set_clock(monkeypatch: Any, moment: dt.datetime) -> None:
    """Make ``moment`` the time everywhere an action is timed: the runtime's clock (its checks
    and, through ``Kit.sign``, the request's time) and the time the ledger stamps on entries."""
    from custodiet.ledger import writer

    stamp = moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    monkeypatch.setattr(writer, "utc_now", lambda: stamp)
    monkeypatch.setattr(Runtime, "now", lambda self: moment)
