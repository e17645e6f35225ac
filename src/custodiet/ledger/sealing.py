"""Signing a checkpoint for every committed batch, never one inconsistent with the last.

C2SP tlog-checkpoint: a log must not sign a checkpoint inconsistent with one it signed before.
Inside the append transaction the writer reads the latest stored checkpoint and the partial
tiles of the tree it covers; ``check_tail`` proves them consistent (the checkpoint covers every
stored entry, verifies under the log's key, and its root is recomputed from those tiles). The
new tiles are then computed from the batch's own entry bytes on top of these verified hashes,
so the new root extends the signed one by construction; ``seal`` signs it. A stored hash that
disagrees is fatal: no signature and nothing appended.
"""

from __future__ import annotations

from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custodiet.errors import TamperedError
from custodiet.ledger import note, tree
from custodiet.ledger.store import RESTORE_HINT
from custodiet.ledger.verify import Checkpoint, VerificationError, VerifierKey, verify_checkpoint


def fault(message: str, code: str) -> TamperedError:
    return TamperedError(
        f"ledger: {message}; nothing was signed or appended", hint=RESTORE_HINT, code=code
    )


def checked_note(text: str, log_key: VerifierKey, what: str) -> Checkpoint:
    """``text`` verified as a checkpoint signed by ``log_key`` (CUST126 if it is not)."""
    try:
        return verify_checkpoint(text, log_key)
    except VerificationError as exc:
        raise fault(f"the {what} does not verify ({exc})", "CUST126") from None


Sealed = tuple[str, Checkpoint]
"""A note this process signed, and its parsed checkpoint."""


def check_tail(
    size: int,
    latest: tuple[int, str] | None,
    log_key: VerifierKey,
    tiles: Mapping[int, bytes],
    sealed: Sealed | None = None,
) -> None:
    """The latest stored checkpoint covers exactly the ``size`` stored entries, verifies, and
    its root is the root recomputed from ``tiles`` (which must hold the partial tiles of a tree
    of ``size`` leaves). Raises TamperedError (CUST125/CUST126) otherwise. A stored note equal
    to the one this process last ``sealed`` is not verified again; its root is still checked."""
    if latest is None:
        if size:
            raise fault(f"no signed checkpoint covers the {size} stored entries", "CUST126")
        return
    signed_size, text = latest
    if signed_size != size:
        raise fault(
            f"the latest signed checkpoint covers {signed_size} entries, the store holds {size}",
            "CUST126",
        )
    if sealed is not None and sealed[0] == text:
        signed = sealed[1]
    else:
        signed = checked_note(text, log_key, "latest stored checkpoint")
    if signed.size != size:
        raise fault("the latest stored checkpoint is filed under another size", "CUST126")
    try:
        computed = tree.root_from_tiles(size, tiles)
    except KeyError:
        raise fault("the store lacks tree hashes the latest checkpoint covers", "CUST125") from None
    if computed != signed.root:
        raise fault("stored tree hashes disagree with the latest signed checkpoint", "CUST125")


def seal(origin: str, key: Ed25519PrivateKey, size: int, tiles: Mapping[int, bytes]) -> Sealed:
    """The signed checkpoint note of a tree of ``size`` leaves whose partial tiles ``tiles``
    holds, and the checkpoint it says."""
    root = tree.root_from_tiles(size, tiles)
    body = note.checkpoint_body(origin, size, root)
    return note.sign(body, origin, key), Checkpoint(origin, size, root, body)
