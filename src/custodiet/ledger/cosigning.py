"""The log's side of C2SP tlog-witness: ask the configured witnesses to cosign the latest
checkpoint and keep the cosignatures they return.

``DIR/witnesses.json`` (0600, written atomically) is the operator's list of witnesses, each a
name, an add-checkpoint URL prefix and the witness's vkey (``custodiet ledger witnesses add``).
It is configuration, not evidence: a verifier decides which witnesses it requires (``ledger
verify --witness``), so a witness removed from this file only means fewer cosignatures.

A round (``Cosigner.round``) reads the latest signed checkpoint and, for every witness that has
not cosigned its size yet, POSTs ``old <size the witness is known to hold>``, the consistency
proof from that size and the note. A 409 carries the witness's own size: the request is made
again, once, from there. A returned line is stored only if it is the configured witness's
valid cosignature of that checkpoint. A witness that is down, slow (``TIMEOUT``) or refusing
is logged (its name, the status, never data) and asked again next round; it never fails a
request of the log. ``custodiet serve`` runs rounds on a background thread, woken after every
action and every ``INTERVAL`` seconds; ``custodiet ledger cosign`` runs one.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from custodiet.errors import CustodietError, InputError
from custodiet.ledger.pin import write_atomically
from custodiet.ledger.verify import (
    COSIGNATURE_TYPE,
    SIGNATURE_PREFIX,
    VerificationError,
    cosignature_valid,
    parse_vkey,
)
from custodiet.ledger.witness import request_body

if TYPE_CHECKING:
    from custodiet.ledger.verify import Checkpoint
    from custodiet.ledger.writer import Ledger

LOG = logging.getLogger("custodiet.cosigning")
TIMEOUT = 5.0  # seconds to connect to, and to hear from, a witness
INTERVAL = 5.0  # seconds between rounds when nothing wakes the thread
SIZE_TYPE = "text/x.tlog.size"


@dataclass(frozen=True)
class WitnessConfig:
    name: str
    url: str
    vkey: str


def bad_config(message: str) -> InputError:
    return InputError(
        message,
        hint="add a witness with `custodiet ledger witnesses add VKEY URL` (the witness's "
        "vkey, as `custodiet witness key` prints it, and its http(s) URL)",
        code="CUST292",
    )


def witness_config(vkey: str, url: str) -> WitnessConfig:
    """A checked witness entry: a witness (cosignature, 0x04) vkey and an http(s) URL."""
    try:
        key = parse_vkey(vkey)
    except VerificationError as exc:
        raise bad_config(f"VKEY: not a verifier key ({exc})") from None
    if key.key_type != COSIGNATURE_TYPE:
        raise bad_config("VKEY: not a witness key (a log key was given?)")
    parsed = httpx.URL(url) if url.startswith(("http://", "https://")) else None
    if parsed is None or not parsed.host or parsed.query or parsed.fragment:
        raise bad_config("URL: not an http:// or https:// URL without query or fragment")
    return WitnessConfig(key.name, url.rstrip("/"), vkey.strip())


def load_witnesses(path: Path) -> list[WitnessConfig]:
    """The configured witnesses ([] when there is no file); a damaged file is CUST292."""
    if not path.exists():
        return []
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        items = raw["witnesses"]
        if not isinstance(items, list):
            raise TypeError
        return [witness_config(str(item["vkey"]), str(item["url"])) for item in items]
    except (OSError, ValueError, TypeError, KeyError, InputError) as exc:
        raise bad_config(f"{path}: unreadable witness list ({type(exc).__name__})") from None


def save_witnesses(path: Path, witnesses: list[WitnessConfig]) -> None:
    doc = {"witnesses": [{"name": w.name, "url": w.url, "vkey": w.vkey} for w in witnesses]}
    write_atomically(path, (json.dumps(doc, indent=2) + "\n").encode())


def add_witness(path: Path, vkey: str, url: str) -> WitnessConfig:
    """Add (or replace, by name) a witness in the list at ``path``."""
    added = witness_config(vkey, url)
    kept = [w for w in load_witnesses(path) if w.name != added.name]
    save_witnesses(path, [*kept, added])
    return added


def remove_witness(path: Path, name: str) -> None:
    witnesses = load_witnesses(path)
    if name not in {w.name for w in witnesses}:
        raise bad_config(f"NAME: no witness of that name is configured ({len(witnesses)} are)")
    save_witnesses(path, [w for w in witnesses if w.name != name])


class Cosigner:
    """Rounds of add-checkpoint requests for one ledger (see the module docstring)."""

    def __init__(
        self,
        ledger: Callable[[], Ledger],
        path: Path,
        *,
        timeout: float = TIMEOUT,
        interval: float = INTERVAL,
    ) -> None:
        self._ledger, self._path = ledger, path
        self._timeout, self._interval = timeout, interval
        self._known: dict[str, int] = {}  # the size each witness was last seen to hold
        self._wake, self._stop = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        self._round_lock = threading.Lock()

    def round(self) -> dict[str, str]:
        """Ask every witness that has not cosigned the latest checkpoint; what each answered."""
        with self._round_lock:
            witnesses = load_witnesses(self._path)
            if not witnesses:
                return {}
            ledger = self._ledger()
            cp, text = ledger.signed_checkpoint()
            held = {line.removeprefix(SIGNATURE_PREFIX).split(" ")[0]
                    for line in ledger.store.cosignatures(cp.size)}  # fmt: skip
            outcomes: dict[str, str] = {}
            with httpx.Client(timeout=self._timeout) as client:
                for witness in witnesses:
                    if witness.name in held:
                        outcomes[witness.name] = f"holds size {cp.size}"
                        continue
                    outcomes[witness.name] = self._ask(client, witness, ledger, cp, text)
            return outcomes

    def _ask(
        self,
        client: httpx.Client,
        witness: WitnessConfig,
        ledger: Ledger,
        cp: Checkpoint,
        text: str,
    ) -> str:
        old = self._known.get(witness.name, 0)
        for attempt in range(2):
            try:
                proof = ledger.consistency_proof(old, cp.size).proof if 0 < old < cp.size else []
                response = client.post(
                    f"{witness.url}/add-checkpoint", content=request_body(old, proof, text)
                )
            except httpx.HTTPError as exc:
                LOG.warning("witness %s unreachable (%s)", witness.name, type(exc).__name__)
                return "unreachable"
            except CustodietError as exc:  # no proof from that size: the witness is ahead
                LOG.warning("witness %s holds size %d: %s", witness.name, old, exc.code)
                return f"refused: holds size {old}, the log cannot prove it"
            theirs = _size(response)
            if response.status_code == 409 and theirs is not None and attempt == 0:
                self._known[witness.name] = old = theirs
                if theirs <= cp.size:
                    continue
            if response.status_code != 200:
                LOG.warning(
                    "witness %s refused size %d: HTTP %d", witness.name, cp.size,
                    response.status_code,
                )  # fmt: skip
                return f"refused: HTTP {response.status_code}"
            key = parse_vkey(witness.vkey)
            for line in response.text.splitlines(keepends=True):
                if cosignature_valid(cp.body, line, key):
                    ledger.add_cosignature(cp.size, witness.name, line)
                    self._known[witness.name] = cp.size
                    return f"cosigned size {cp.size}"
            LOG.warning("witness %s answered without a valid cosignature", witness.name)
            return "refused: no valid cosignature in the answer"
        return "refused: HTTP 409"

    def start(self) -> None:
        """Run rounds on a daemon thread until ``stop``."""
        self._thread = threading.Thread(target=self._run, name="cosigner", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """Run a round soon (a new checkpoint may have been signed)."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=3 * self._timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.round()
            except CustodietError as exc:
                LOG.warning("cosigning round failed: %s", exc.code)
            except Exception as exc:  # never let the thread die silently
                LOG.error("cosigning round failed: %s", type(exc).__name__)


def _size(response: httpx.Response) -> int | None:
    """The size a 409 ``text/x.tlog.size`` body gives, else None."""
    kind = response.headers.get("content-type", "").split(";")[0].strip()
    text = response.text
    if kind != SIZE_TYPE or not text.endswith("\n"):
        return None
    digits = text[:-1]
    return int(digits) if digits.isascii() and digits.isdigit() and len(digits) < 20 else None
