"""Replay a custodiet ledger's governance from its entries alone: who may act, who approved what,
and whether every access was authorized when it happened.

Standalone like ``verify.py``: the standard library, ``cryptography`` and the sibling
``verify.py`` only, so an inspector general can copy the two files and audit a log without
trusting the rest of custodiet. The gateway derives the state it acts on from this same code
(``State.apply``), so what the gateway allowed and what an audit accepts cannot drift apart.

    python replay.py --entries entries.jsonl --checkpoint cp.txt --vkey "$(cat log.vkey)"

Exit 0: every entry replays (every signature checks; every query, screen and release happened
under an agreement version approved by K distinct eligible custodians, unexpired and unrevoked at
that time, over a projection built from registered source digests). Exit 1: the first violating
entry and its rule. Intents without an outcome (a killed process) are listed as unfinished.
Exit 2: usage or unreadable input. The rules are documented in docs/ledger.md.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime as dt
import functools
import hashlib
import itertools
import json
import multiprocessing
import os
import re
import sys
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from json.scanner import make_scanner
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

try:  # inside the package
    from custodiet.ledger import verify as _verify
except ImportError:  # pragma: no cover - copied beside verify.py, outside the package
    # `python -I replay.py` (safe path) leaves the script's own directory off sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import verify as _verify  # type: ignore[import-not-found,no-redef]

REQUEST_DOMAIN = b"custodiet/request/v1\n"
FRESHNESS = dt.timedelta(minutes=5)  # a signed request older or newer than this is stale
ROLES = ("custodian", "reviewer", "overseer")
NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
SAFE_INTEGER = 2**53 - 1
MAX_REID_TOKENS = 20
REID_WINDOW = dt.timedelta(hours=24)
# the weakest treatment a class allows is decided by its rank; lowering a rank needs K custodians
CLASS_RANK = {"identifier": 3, "quasi_identifier": 2, "sensitive": 1}
ACCESS_INTENTS = ("query", "screen.run", "reid.show", "monitor")
SCREEN_RUNS = ("screen.run", "monitor")  # intents whose screens' queries leave them open


class Violation(Exception):
    """An entry breaks a rule: ``code`` is the stable error code, ``rule`` one readable line."""

    def __init__(self, code: str, rule: str) -> None:
        super().__init__(rule)
        self.code, self.rule = code, rule


# --- canonical JSON and signed requests ---------------------------------------------------------


_quote: Callable[[str], str] = json.encoder.encode_basestring
# (the C escaper: quote, backslash and control characters, lowercase \u00xx — JCS's set)


def canonical(value: Any) -> bytes:
    """RFC 8785 canonical JSON of text, integers (|n| < 2**53), booleans, null, lists and
    objects; floats are refused (documents that need them carry them as decimal text)."""
    return _canonical_text(value).encode("utf-8")


def _canonical_text(value: Any) -> str:
    if isinstance(value, str):
        return _quote(value)
    if value is None or isinstance(value, bool):
        return "null" if value is None else ("true" if value else "false")
    if isinstance(value, int):
        if not -SAFE_INTEGER <= value <= SAFE_INTEGER:
            raise ValueError("integer beyond 2**53 - 1")
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(_canonical_text(item) for item in value) + "]"
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise ValueError("object keys must be text")
        keys = sorted(value) if "".join(value).isascii() else sorted(value, key=_utf16)
        members = (f"{_quote(k)}:{_canonical_text(value[k])}" for k in keys)
        return "{" + ",".join(members) + "}"
    raise ValueError(f"no canonical JSON for {type(value).__name__}")


def _utf16(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def sha256_hex(value: Any) -> str:
    return hashlib.sha256(canonical(value)).hexdigest()


def request_message(request: Mapping[str, Any]) -> bytes:
    """The bytes a principal signs: a domain prefix, then the request's canonical JSON."""
    return REQUEST_DOMAIN + canonical(dict(request))


def ssh_ed25519_key(text: str) -> bytes:
    """The 32 raw bytes of an OpenSSH ``ssh-ed25519 AAAA... [comment]`` public key."""
    parts = text.strip().split()
    if len(parts) < 2 or parts[0] != "ssh-ed25519":
        raise ValueError("not an OpenSSH ssh-ed25519 public key")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except binascii.Error:
        raise ValueError("public key is not valid base64") from None
    fields, at = [], 0
    while at < len(blob):
        length = int.from_bytes(blob[at : at + 4], "big")
        fields.append(blob[at + 4 : at + 4 + length])
        at += 4 + length
    if at != len(blob) or len(fields) != 2 or fields[0] != b"ssh-ed25519" or len(fields[1]) != 32:
        raise ValueError("malformed ssh-ed25519 public key")
    return fields[1]


def signature_valid(public_key: bytes, request: Mapping[str, Any], signature: str) -> bool:
    try:
        message = request_message(request)
    except (ValueError, TypeError):
        return False
    return _verified(public_key, message, signature)


@functools.lru_cache(maxsize=4096)
def _verified(public_key: bytes, message: bytes, signature: str) -> bool:
    """Ed25519 verification, memoized: the gateway checks one request before and after it is
    appended, and pays for the curve arithmetic once (a pure function of its arguments)."""
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    return _verifies(public_key, raw, message)


def _verifies(public_key: bytes, raw_signature: bytes, message: bytes) -> bool:
    try:
        _public_key(public_key).verify(raw_signature, message)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


@functools.lru_cache(maxsize=256)
def _public_key(raw: bytes) -> Ed25519PublicKey:
    """The key object of a principal's 32 raw bytes, built once per key (ValueError if they are
    not a key; exceptions are not cached)."""
    return Ed25519PublicKey.from_public_bytes(raw)


def parse_time(text: Any) -> dt.datetime:
    if not isinstance(text, str):
        raise ValueError("time is not text")
    return _parse_time(text)


@functools.lru_cache(maxsize=64)
def _parse_time(text: str) -> dt.datetime:
    """An entry's time is read up to four times (entry, request, nonce, sweep): parsed once."""
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("time has no zone")
    return moment.astimezone(dt.UTC)


# --- the state every entry updates --------------------------------------------------------------


@dataclass
class Principal:
    name: str
    role: str
    pubkey: str
    raw: bytes


@dataclass
class Version:
    number: int
    sha256: str
    document: dict[str, Any]
    proposer: str
    approvals: list[str] = field(default_factory=list)

    @property
    def required(self) -> int:
        return int(self.document.get("approvals_required", 2))

    @property
    def approved(self) -> bool:
        return len(self.approvals) >= self.required

    @property
    def expires(self) -> dt.date:
        return dt.date.fromisoformat(str(self.document["expires"]))


@dataclass
class AgreementRecord:
    id: str
    reviewer: str
    versions: list[Version] = field(default_factory=list)
    revoked_through: int = 0  # versions up to this one are revoked

    @property
    def latest(self) -> Version:
        return self.versions[-1]

    def active(self, at: dt.datetime) -> Version | None:
        """The newest approved, unrevoked version, if it has not expired at ``at``."""
        for version in reversed(self.versions):
            if version.number <= self.revoked_through:
                return None
            if version.approved:
                return version if at.date() <= version.expires else None
        return None


@dataclass
class ReidRecord:
    id: int
    agreement: str
    version: int
    requester: str
    tokens: list[str]
    fields: list[str]
    reason: str
    sha256: str
    expires: dt.datetime
    approvals: list[str] = field(default_factory=list)
    denied_by: str | None = None
    released: int = 0


@dataclass
class Intent:
    index: int
    attempted: str
    actor: str
    agreement: str
    version: int


@dataclass
class CaseRecord:
    """A case a monitor run opened, and its adjudication as the reviewer's ``case.set`` set it."""

    id: str
    agreement: str
    screen: str
    state: str = "open"
    recovered: str | None = None  # the amount recovered (a reviewer's figure, decimal text)
    entries: list[int] = field(default_factory=list)  # the ledger entries that set its state


@dataclass
class State:
    """Everything governance decides, derived from entries in order by ``apply``."""

    origin: str = ""
    min_approvals: int = 2
    log_vkey: str = ""
    size: int = 0
    last_time: dt.datetime | None = None
    principals: dict[str, Principal] = field(default_factory=dict)
    votes: dict[str, list[str]] = field(default_factory=dict)
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    agreements: dict[str, AgreementRecord] = field(default_factory=dict)
    projections: dict[str, dict[str, str]] = field(default_factory=dict)  # "id@v" -> digests
    reid: dict[int, ReidRecord] = field(default_factory=dict)
    nonces: dict[str, dt.datetime] = field(default_factory=dict)
    intents: dict[int, Intent] = field(default_factory=dict)
    cases: dict[str, CaseRecord] = field(default_factory=dict)  # case id -> its adjudication
    monitored: dict[str, list[Any]] = field(default_factory=dict)  # agreement -> [index, basis]
    pruned_at: dt.datetime | None = None  # when old nonces were last forgotten
    # signatures an audit checked ahead in worker processes (see ``audit_lines``), else None
    checked: CheckedSignatures | None = field(default=None, repr=False, compare=False)

    # --- reading -------------------------------------------------------------------------------

    def custodians(self) -> list[str]:
        return sorted(n for n, p in self.principals.items() if p.role == "custodian")

    def agreement(self, agreement_id: str) -> AgreementRecord:
        found = self.agreements.get(agreement_id)
        if found is None:
            raise Violation("CUST317", f"unknown agreement {agreement_id!r}")
        return found

    def active_version(self, agreement_id: str, at: dt.datetime) -> Version:
        """The version a query under ``agreement_id`` runs under at ``at``, else a Violation."""
        record = self.agreement(agreement_id)
        latest = record.latest
        if latest.number <= record.revoked_through:
            raise Violation("CUST315", f"agreement {agreement_id!r} was revoked")
        active = record.active(at)
        if active is None:
            newest_approved = next((v for v in reversed(record.versions) if v.approved), None)
            if newest_approved is not None and at.date() > newest_approved.expires:
                raise Violation(
                    "CUST314",
                    f"agreement {agreement_id!r} expired on {newest_approved.expires.isoformat()}",
                )
            raise Violation(
                "CUST313",
                f"agreement {agreement_id!r} is not approved "
                f"({len(latest.approvals)} of {latest.required} approvals)",
            )
        return active

    # --- authentication ------------------------------------------------------------------------

    def authenticate(
        self, request: Any, signature: Any, at: dt.datetime, *, consume: bool = False
    ) -> Principal:
        """The registered principal who signed ``request``, fresh and for this log; else a
        Violation. ``consume`` marks its nonce used (a replayed request is then refused)."""
        if not isinstance(request, dict) or not isinstance(signature, str):
            raise Violation("CUST501", "the request is not signed")
        name = request.get("principal")
        principal = self.principals.get(name) if isinstance(name, str) else None
        if principal is None:
            raise Violation("CUST310", f"unknown principal {name!r}")
        known = None if self.checked is None else self.checked.verdict(self.size, principal)
        if not (signature_valid(principal.raw, request, signature) if known is None else known):
            raise Violation(
                "CUST502",
                f"the signature does not verify under the key registered for {principal.name!r}",
            )
        if request.get("origin") != self.origin:
            raise Violation("CUST503", "the request was signed for another log")
        try:
            signed_at = parse_time(request.get("time"))
        except ValueError:
            raise Violation("CUST504", "the request's time is not an RFC 3339 time") from None
        if abs(at - signed_at) > FRESHNESS:
            raise Violation(
                "CUST505",
                f"the request was signed at {request.get('time')}, more than "
                f"{int(FRESHNESS.total_seconds())} s from now",
            )
        nonce = request.get("nonce")
        if not isinstance(nonce, str) or not 16 <= len(nonce) <= 64:
            raise Violation("CUST504", "the request has no nonce")
        key = f"{principal.name}/{nonce}"
        if key in self.nonces:
            raise Violation("CUST506", "the request was already used (a replayed signature)")
        if consume:
            self.nonces[key] = signed_at
        return principal

    # --- applying entries ----------------------------------------------------------------------

    def apply(self, entry: Mapping[str, Any]) -> None:
        """Check one entry against the rules at its time, then make its effect (Violation if it
        breaks a rule; the state is then unchanged but for ``size``)."""
        index = entry.get("index")
        try:
            if index != self.size:
                raise Violation("CUST510", f"entry records index {index}, expected {self.size}")
            at = parse_time(entry.get("time"))
            handler = _HANDLERS.get(str(entry.get("action")))
            if handler is None:
                raise Violation("CUST511", f"unknown action {entry.get('action')!r}")
            if self.size == 0 and entry.get("action") != "genesis":
                raise Violation("CUST512", "the first entry is not the genesis")
            effect = handler(self, entry, at)
        except ValueError as exc:
            self._advance(entry)
            raise Violation("CUST511", f"malformed entry ({exc})") from None
        except Violation:
            self._advance(entry)
            raise
        effect()
        self._advance(entry)

    def check(self, entry: Mapping[str, Any], at: dt.datetime) -> dict[str, Any]:
        """Would ``entry`` (not yet on the ledger) be allowed at ``at``? Violation if not; else
        the entry with the derived fields the rules compute (votes, versions, digests) filled in.
        """
        handler = _HANDLERS.get(str(entry.get("action")))
        if handler is None:
            raise Violation("CUST511", f"unknown action {entry.get('action')!r}")
        candidate = _Candidate({**entry, "index": self.size})
        try:
            handler(self, candidate, at)
        except ValueError as exc:
            raise Violation("CUST511", f"malformed entry ({exc})") from None
        del candidate["index"]
        return dict(candidate)

    def _advance(self, entry: Mapping[str, Any]) -> None:
        self.size += 1
        try:
            self.last_time = parse_time(entry.get("time"))
        except ValueError:
            return
        # a nonce older than twice the freshness window can no longer be replayed: forget it
        # (at most once per window, so the sweep costs O(1) per entry)
        if self.pruned_at is None or self.last_time - self.pruned_at >= FRESHNESS:
            horizon = self.last_time - 2 * FRESHNESS
            self.nonces = {k: t for k, t in self.nonces.items() if t >= horizon}
            self.pruned_at = self.last_time


Effect = Callable[[], None]
Handler = Callable[[State, Mapping[str, Any], dt.datetime], Effect]


def _noop() -> None:
    return None


def _signed(state: State, entry: Mapping[str, Any], at: dt.datetime, action: str) -> Principal:
    request = entry.get("request")
    if not isinstance(request, dict) or request.get("action") != action:
        raise Violation("CUST513", f"entry {action!r} does not carry a request for it")
    principal = state.authenticate(request, entry.get("signature"), at)
    if entry.get("actor") != principal.name:
        raise Violation("CUST513", "the entry's actor is not the request's signer")
    return principal


def _args(entry: Mapping[str, Any]) -> dict[str, Any]:
    args = entry["request"].get("args")
    if not isinstance(args, dict):
        raise Violation("CUST513", "the request has no arguments")
    return args


def _consume(state: State, entry: Mapping[str, Any], then: Effect = _noop) -> Effect:
    request = entry["request"]

    def effect() -> None:
        state.nonces[f"{request['principal']}/{request['nonce']}"] = parse_time(request["time"])
        then()

    return effect


class _Candidate(dict[str, Any]):
    """An entry not yet on the ledger: ``_claims`` fills in its derived fields."""


def _claims(entry: Mapping[str, Any], **expected: Any) -> None:
    """The derived fields an entry states must be what the replay computes."""
    for key, value in expected.items():
        if isinstance(entry, _Candidate) and key not in entry:
            entry[key] = value
        elif entry.get(key) != value:
            raise Violation("CUST514", f"the entry states {key} {entry.get(key)!r}, not {value!r}")


def _custodian(principal: Principal, what: str) -> None:
    if principal.role != "custodian":
        raise Violation(
            "CUST318", f"principal {principal.name!r} is a {principal.role}; only custodians {what}"
        )


# --- handlers: one per action; each checks, then returns the effect -----------------------------


def _genesis(state: State, entry: Mapping[str, Any], at: dt.datetime) -> Effect:
    if entry.get("index") != 0:
        raise Violation("CUST512", "a genesis entry after the first")
    custodians = entry.get("custodians")
    k = entry.get("min_approvals")
    if (
        not isinstance(custodians, list)
        or not isinstance(k, int)
        or not isinstance(entry.get("origin"), str)
    ):
        raise Violation("CUST512", "the genesis lacks origin, custodians or min_approvals")
    principals = {}
    for item in custodians:
        name, pubkey = item.get("name"), item.get("pubkey")
        if not isinstance(name, str) or not NAME.match(name) or name in principals:
            raise Violation("CUST512", "the genesis names an invalid or repeated custodian")
        principals[name] = Principal(name, "custodian", pubkey, ssh_ed25519_key(pubkey))
    if len(principals) < 2 or not 2 <= k <= len(principals):
        raise Violation("CUST512", "the genesis needs at least two custodians and 2 <= K <= them")

    def effect() -> None:
        state.origin, state.min_approvals = entry["origin"], k
        state.log_vkey = str(entry.get("vkey", ""))
        state.principals.update(principals)

    return effect


def _vote(
    state: State, principal: Principal, key: str, required: int, effect: Effect
) -> tuple[int, bool, Effect]:
    """Count ``principal``'s vote for ``key``; the effect happens when ``required`` is reached."""
    votes = state.votes.get(key, [])
    if principal.name in votes:
        raise Violation("CUST320", f"custodian {principal.name!r} already signed this change")
    count = len(votes) + 1

    def counted() -> None:
        state.votes[key] = [*votes, principal.name]
        if count >= required:
            del state.votes[key]
            effect()

    return count, count >= required, counted


def _principal_add(state: State, entry: Mapping[str, Any], at: dt.datetime) -> Effect:
    signer = _signed(state, entry, at, "principal.add")
    _custodian(signer, "add principals")
    args = _args(entry)
    name, role, pubkey = args.get("name"), args.get("role"), args.get("pubkey")
    if not isinstance(name, str) or not NAME.match(name):
        raise Violation("CUST230", f"principal name {name!r} is not valid")
    if role not in ROLES:
        raise Violation("CUST515", f"unknown role {role!r}")
    if name in state.principals:
        raise Violation("CUST231", f"principal {name!r} already exists")
    try:
        raw = ssh_ed25519_key(str(pubkey))
    except ValueError as exc:
        raise Violation("CUST516", f"public key of {name!r}: {exc}") from None
    if any(p.raw == raw for p in state.principals.values()):
        raise Violation("CUST517", "that public key already belongs to a principal")
    required = state.min_approvals if role == "custodian" else 1
    key = "principal.add:" + sha256_hex({"name": name, "role": role, "pubkey": pubkey})

    def add() -> None:
        state.principals[name] = Principal(name, str(role), str(pubkey), raw)

    votes, effective, effect = _vote(state, signer, key, required, add)
    _claims(entry, principal=name, role=role, votes=votes, required=required, effective=effective)
    return _consume(state, entry, effect)


def _principal_remove(state: State, entry: Mapping[str, Any], at: dt.datetime) -> Effect:
    signer = _signed(state, entry, at, "principal.remove")
    _custodian(signer, "remove principals")
    name = _args(entry).get("name")
    found = state.principals.get(name) if isinstance(name, str) else None
    if found is None:
        raise Violation("CUST310", f"unknown principal {name!r}")
    if found.role == "custodian" and len(state.custodians()) - 1 < state.min_approvals:
        raise Violation(
            "CUST518", f"removing {name!r} would leave fewer than {state.min_approvals} custodians"
        )

    def remove() -> None:
        del state.principals[found.name]

    key = "principal.remove:" + found.name
    votes, effective, effect = _vote(state, signer, key, state.min_approvals, remove)
    _claims(entry, principal=found.name, votes=votes, effective=effective)
    return _consume(state, entry, effect)


def _key_rotate(state: State, entry: Mapping[str, Any], at: dt.datetime) -> Effect:
    """A custodian's vote to make ``args.vkey`` the log's key; K votes on the same move (from
    the current key to that one) make it effective. The entry itself is signed into the log
    by the old key; the vault then signs every later checkpoint with the new one."""
    signer = _signed(state, entry, at, "key.rotate")
    _custodian(signer, "rotate the log key")
    vkey = _args(entry).get("vkey")
    try:
        if not isinstance(vkey, str):
            raise _verify.VerificationError("no vkey")
        parsed = _verify.parse_vkey(vkey)
    except _verify.VerificationError as exc:
        raise Violation("CUST540", f"key.rotate: not a log verifier key ({exc})") from None
    if (
        parsed.key_type != _verify.ED25519_TYPE
        or parsed.name != state.origin
        or vkey != vkey.strip()
    ):
        raise Violation("CUST540", f"key.rotate: {vkey!r} is not an Ed25519 key of this log")
    if vkey == state.log_vkey:
        raise Violation("CUST541", "key.rotate: that key is already the log's key")
    previous = state.log_vkey
    key = "key.rotate:" + sha256_hex({"from": previous, "to": vkey})

    def rotate() -> None:
        state.log_vkey = vkey

    required = state.min_approvals
    votes, effective, effect = _vote(state, signer, key, required, rotate)
    _claims(entry, vkey=vkey, previous=previous, votes=votes, required=required,
            effective=effective)  # fmt: skip
    return _consume(state, entry, effect)


def _dataset_add(state: State, entry: Mapping[str, Any], at: dt.datetime) -> Effect:
    signer = _signed(state, entry, at, "dataset.add")
    _custodian(signer, "register datasets")
    name = _args(entry).get("name")
    if not isinstance(name, str) or entry.get("dataset") != name:
        raise Violation("CUST514", "the entry's dataset is not the one requested")
    if name in state.datasets:
        raise Violation("CUST236", f"dataset {name!r} is already registered")
    columns, inferred = entry.get("columns"), entry.get("inferred")
    by_values = entry.get("identifiers_by_value") or []
    if (
        not isinstance(columns, dict)
        or not isinstance(inferred, dict)
        or set(columns) != set(inferred)
    ):
        raise Violation("CUST514", "the entry's column classes are incomplete")
    for column in by_values:
        if columns.get(column) != "identifier":
            raise Violation(
                "CUST519",
                f"column {name}.{column} holds identifiers by its values and may not be "
                f"classified {columns.get(column)!r}",
            )
    lowered = sorted(
        c for c in columns if CLASS_RANK.get(columns[c], 0) < CLASS_RANK.get(inferred[c], 0)
    )
    _claims(entry, lowered=lowered)
    files = _entry_files(
        entry, default=[{"path": entry.get("path"), "sha256": entry.get("file_sha256")}]
    )
    _claims(entry, file_sha256=files_digest(files))
    registered = {
        "name": name,
        "sha256": entry.get("file_sha256"),
        "columns": columns,
        "rows": entry.get("rows"),
        **{k: entry.get(k) for k in ("path", "format", "table", "schema")},
        "version": 1,
        "files": files,
        "versions": [
            {
                "version": 1,
                "sha256": entry.get("file_sha256"),
                "files": len(files),
                "rows": entry.get("rows"),
            }
        ],
    }

    def register() -> None:
        state.datasets[name] = registered

    required = state.min_approvals if lowered else 1
    key = "dataset.add:" + sha256_hex(
        {"name": name, "sha256": registered["sha256"], "columns": columns}
    )
    votes, effective, effect = _vote(state, signer, key, required, register)
    _claims(entry, votes=votes, required=required, effective=effective)
    return _consume(state, entry, effect)


def files_digest(files: Sequence[Mapping[str, Any]]) -> str:
    """The digest of a dataset version: its one file's SHA-256, else the SHA-256 of the
    canonical list of ``[path, sha256]`` of its files, in order."""
    if len(files) == 1:
        return str(files[0]["sha256"])
    return sha256_hex([[f["path"], f["sha256"]] for f in files])


def _entry_files(
    entry: Mapping[str, Any], default: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    files = entry.get("files", default)
    if (
        not isinstance(files, list)
        or not files
        or not all(
            isinstance(f, dict)
            and isinstance(f.get("path"), str)
            and isinstance(f.get("sha256"), str)
            and set(f) == {"path", "sha256"}
            for f in files
        )
        or len({f["path"] for f in files}) != len(files)
    ):
        raise Violation("CUST514", "the entry's files are not a list of distinct paths and digests")
    return [dict(f) for f in files]


def dataset_versions(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every version of a registered dataset (a record from before versions: its one version)."""
    versions = record.get("versions")
    if isinstance(versions, list) and versions:
        return versions
    return [{"version": 1, "sha256": record.get("sha256"), "files": 1, "rows": record.get("rows")}]


def dataset_files(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    files = record.get("files")
    if isinstance(files, list) and files:
        return files
    return [{"path": record.get("path"), "sha256": record.get("sha256")}]


def _schema_types(schema: Any) -> list[tuple[Any, Any]]:
    if not isinstance(schema, list):
        return []
    return [(c.get("name"), c.get("sql_type")) for c in schema if isinstance(c, dict)]


COLUMN_CLASSES = frozenset(
    {"identifier", "quasi_identifier", "sensitive", "amount", "date", "category", "key"}
)


def granting(state: State, dataset: str, columns: Iterable[str], at: dt.datetime) -> list[str]:
    """``agreement.column`` for each of ``columns`` of ``dataset`` that an agreement version
    active at ``at`` grants (any treatment but ``deny``), sorted."""
    wanted = set(columns)
    found = []
    for record in state.agreements.values():
        version = record.active(at)
        grant = None if version is None else version.document.get("datasets", {}).get(dataset)
        granted = grant.get("columns") if isinstance(grant, dict) else None
        if isinstance(granted, dict):
            found += [f"{record.id}.{c}" for c, r in granted.items() if c in wanted and r != "deny"]
    return sorted(found)


def _updated_schema(
    state: State, name: str, record: Mapping[str, Any], entry: Mapping[str, Any], at: dt.datetime
) -> list[dict[str, Any]]:
    """The dataset's schema once the update's files join it: the registered columns (a retyped
    one with its new type; a dropped one stays, the new rows hold no value in it), then the
    columns the update adds, classified as the entry says."""
    new_schema = entry.get("schema")
    if not isinstance(new_schema, list) or not all(
        isinstance(c, dict)
        and isinstance(c.get("name"), str)
        and isinstance(c.get("sql_type"), str)
        for c in new_schema
    ):
        raise Violation("CUST514", "the entry's schema is not a list of columns and types")
    new_types = dict(_schema_types(new_schema))
    registered = [dict(c) for c in record.get("schema") or [] if isinstance(c, dict)]
    old_types = {c.get("name"): c.get("sql_type") for c in registered}
    changed = [n for n, t in old_types.items() if isinstance(n, str) and new_types.get(n) != t]
    granted = granting(state, name, changed, at)
    if granted:
        raise Violation(
            "CUST702",
            f"the update drops or retypes column {name}.{granted[0].split('.', 1)[1]}, which "
            f"active agreement {granted[0].split('.', 1)[0]!r} grants",
        )
    added = [n for n in new_types if n not in old_types]
    documents = entry.get("columns_added") or []
    by_value = entry.get("identifiers_by_value") or []
    if (
        not isinstance(documents, list)
        or not all(isinstance(c, dict) for c in documents)
        or [c.get("name") for c in documents] != added
        or any(c.get("sql_type") != new_types[c["name"]] for c in documents)
        or any(c.get("column_class") not in COLUMN_CLASSES for c in documents)
        or any(set(c) != {"name", "sql_type", "column_class", "identifier_kind"} for c in documents)
        or not isinstance(by_value, list)
    ):
        raise Violation("CUST514", "the entry's added columns do not match its schema")
    classes = {c["name"]: c["column_class"] for c in documents}
    for column in by_value:
        if column in classes and classes[column] != "identifier":
            raise Violation(
                "CUST519",
                f"column {name}.{column} holds identifiers by its values and may not be "
                f"classified {classes[column]!r}",
            )
    kept = [{**c, "sql_type": new_types.get(c["name"], c["sql_type"])} for c in registered]
    return [*kept, *(dict(c) for c in documents)]


def _dataset_update(state: State, entry: Mapping[str, Any], at: dt.datetime) -> Effect:
    """A custodian adds files to a registered dataset: a new version. The new files may add
    columns (classified in the entry, granted by no agreement until a new version is approved);
    a column they drop or retype may not be one an active agreement grants."""
    signer = _signed(state, entry, at, "dataset.update")
    _custodian(signer, "update datasets")
    name = _args(entry).get("name")
    if not isinstance(name, str) or entry.get("dataset") != name:
        raise Violation("CUST514", "the entry's dataset is not the one requested")
    record = state.datasets.get(name)
    if record is None:
        raise Violation("CUST237", f"unknown dataset {name!r}")
    if record.get("format") == "duckdb":
        raise Violation("CUST705", f"dataset {name!r} is a DuckDB table; only file datasets grow")
    schema = _updated_schema(state, name, record, entry, at)
    new = _entry_files(entry)
    known = dataset_files(record)
    overlap = sorted({f["path"] for f in new} & {f["path"] for f in known})
    if overlap:
        raise Violation("CUST703", f"the update names files dataset {name!r} already holds")
    rows = entry.get("rows")
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
        raise Violation("CUST514", "the entry's rows is not a count")
    versions = dataset_versions(record)
    number = int(versions[-1]["version"]) + 1
    files = [*known, *new]
    digest = files_digest(files)
    total = int(record.get("rows") or 0) + rows
    _claims(entry, version=number, file_sha256=digest, total_rows=total)
    updated = {
        **record,
        "schema": schema,
        "sha256": digest,
        "rows": total,
        "version": number,
        "files": files,
        "versions": [
            *versions,
            {"version": number, "sha256": digest, "files": len(files), "rows": total},
        ],
    }

    def update() -> None:
        state.datasets[name] = updated

    return _consume(state, entry, update)


def _document_problem(state: State, document: Any) -> str | None:
    if not isinstance(document, dict):
        return "the agreement is not an object"
    for key in ("id", "reviewer", "expires", "datasets"):
        if key not in document:
            return f"the agreement has no {key}"
    if not isinstance(document.get("datasets"), dict) or not document["datasets"]:
        return "the agreement names no dataset"
    unknown = sorted(set(document["datasets"]) - set(state.datasets))
    if unknown:
        return f"unknown dataset {unknown[0]!r}"
    try:
        dt.date.fromisoformat(str(document["expires"]))
    except ValueError:
        return "the agreement's expiry is not a date"
    return None


def _agreement_propose(state: State, entry: Mapping[str, Any], at: dt.datetime) -> Effect:
    signer = _signed(state, entry, at, "agreement.propose")
    document = _args(entry).get("document")
    problem = _document_problem(state, document)
    if problem:
        raise Violation("CUST520", problem)
    assert isinstance(document, dict)
    agreement_id, reviewer = str(document["id"]), str(document["reviewer"])
    reviewer_principal = state.principals.get(reviewer)
    if reviewer_principal is None or reviewer_principal.role != "reviewer":
        raise Violation("CUST249", f"{reviewer!r} is not a registered reviewer")
    existing = state.agreements.get(agreement_id)
    if existing is None:
        if signer.role != "custodian" and signer.name != reviewer:
            raise Violation(
                "CUST312",
                f"principal {signer.name!r} may not propose agreement {agreement_id!r} "
                "(only a custodian or its reviewer)",
            )
    else:
        if signer.name != existing.reviewer:
            raise Violation(
                "CUST312",
                f"only agreement {agreement_id!r}'s own reviewer ({existing.reviewer!r}) "
                "proposes its next versions",
            )
        if reviewer != existing.reviewer:
            raise Violation(
                "CUST521", "a change of reviewer is a new agreement: use a new agreement id"
            )
    required = document.get("approvals_required", 2)
    if not isinstance(required, int) or required < state.min_approvals:
        raise Violation(
            "CUST522",
            f"approvals_required must be at least the workspace's {state.min_approvals}",
        )
    if dt.date.fromisoformat(str(document["expires"])) < at.date():
        raise Violation("CUST314", f"agreement {agreement_id!r} expired on {document['expires']}")
    number = 1 if existing is None else existing.latest.number + 1
    sha = sha256_hex(document)
    _claims(entry, agreement=agreement_id, agreement_version=number, agreement_sha256=sha)

    def effect() -> None:
        record = state.agreements.setdefault(agreement_id, AgreementRecord(agreement_id, reviewer))
        record.versions.append(Version(number, sha, document, signer.name))

    return _consume(state, entry, effect)


def _agreement_approve(state: State, entry: Mapping[str, Any], at: dt.datetime) -> Effect:
    signer = _signed(state, entry, at, "agreement.approve")
    args = _args(entry)
    record = state.agreement(str(args.get("agreement")))
    latest = record.latest
    if signer.name == record.reviewer:
        raise Violation(
            "CUST319",
            f"principal {signer.name!r} is the reviewer of agreement {record.id!r} "
            "and may not approve it",
        )
    _custodian(signer, "approve")
    if signer.name == latest.proposer:
        raise Violation(
            "CUST523",
            f"principal {signer.name!r} proposed agreement {record.id!r} v{latest.number} "
            "and may not approve it",
        )
    if args.get("version") != latest.number or args.get("sha256") != latest.sha256:
        raise Violation(
            "CUST524",
            f"the approval is for v{args.get('version')} sha256 {str(args.get('sha256'))[:12]}…, "
            f"but the pending version of {record.id!r} is v{latest.number} "
            f"sha256 {latest.sha256[:12]}…",
        )
    if latest.number <= record.revoked_through:
        raise Violation("CUST315", f"agreement {record.id!r} was revoked")
    if at.date() > latest.expires:
        raise Violation("CUST314", f"agreement {record.id!r} expired on {latest.expires}")
    if signer.name in latest.approvals:
        raise Violation(
            "CUST320",
            f"principal {signer.name!r} already approved agreement {record.id!r} "
            f"v{latest.number}; an approval counts once",
        )
    approvals = len(latest.approvals) + 1
    _claims(
        entry,
        agreement=record.id,
        agreement_version=latest.number,
        agreement_sha256=latest.sha256,
        approvals=approvals,
        approvals_required=latest.required,
        active=approvals >= latest.required,
    )
    return _consume(state, entry, lambda: latest.approvals.append(signer.name))


def _agreement_revoke(state: State, entry: Mapping[str, Any], at: dt.datetime) -> Effect:
    signer = _signed(state, entry, at, "agreement.revoke")
    record = state.agreement(str(_args(entry).get("agreement")))
    if signer.role != "custodian":
        raise Violation(
            "CUST321", f"principal {signer.name!r} is not a custodian; only custodians revoke"
        )
    if record.latest.number <= record.revoked_through:
        raise Violation("CUST322", f"agreement {record.id!r} was already revoked")
    through = record.latest.number
    _claims(entry, agreement=record.id, agreement_version=through)

    def revoke() -> None:
        record.revoked_through = through

    return _consume(state, entry, revoke)


def _projection_build(state: State, entry: Mapping[str, Any], at: dt.datetime) -> Effect:
    """The vault built (or failed to build) a version's projection: right after the approval
    that activated it, or when a custodian's signed ``agreement.build`` asked for a rebuild."""
    if "request" in entry:
        _custodian(_signed(state, entry, at, "agreement.build"), "rebuild projections")
    agreement_id, number = str(entry.get("agreement")), entry.get("agreement_version")
    record = state.agreement(agreement_id)
    version = next((v for v in record.versions if v.number == number), None)
    if version is None or not version.approved or version.number <= record.revoked_through:
        raise Violation("CUST525", f"projection of {agreement_id!r} v{number}: not approved")
    sources = entry.get("sources")
    if not isinstance(sources, dict) or set(sources) != set(version.document["datasets"]):
        raise Violation("CUST526", "the projection's sources are not the agreement's datasets")
    for name, digest in sources.items():
        registered = {v.get("sha256") for v in dataset_versions(state.datasets.get(name, {}))}
        if entry.get("decision") == "allowed" and digest not in registered:
            raise Violation(
                "CUST526", f"projection read dataset {name!r} with an unregistered digest"
            )
    if entry.get("decision") != "allowed":
        return _consume(state, entry) if "request" in entry else _noop

    def built() -> None:
        state.projections[f"{agreement_id}@{number}"] = dict(sources)

    return _consume(state, entry, built) if "request" in entry else built


def _projection_extend(state: State, entry: Mapping[str, Any], at: dt.datetime) -> Effect:
    """The vault appended a following dataset's new files to a built projection: from the
    version the projection was built at to a later registered version, only the new files."""
    agreement_id, number = str(entry.get("agreement")), entry.get("agreement_version")
    record = state.agreement(agreement_id)
    version = next((v for v in record.versions if v.number == number), None)
    if version is None or not version.approved or version.number <= record.revoked_through:
        raise Violation("CUST525", f"projection of {agreement_id!r} v{number}: not approved")
    name = entry.get("dataset")
    grant = version.document["datasets"].get(name) if isinstance(name, str) else None
    if not isinstance(grant, dict) or grant.get("follow") is not True:
        raise Violation(
            "CUST706", f"agreement {agreement_id!r} v{number} does not follow dataset {name!r}"
        )
    built = state.projections.get(f"{agreement_id}@{number}")
    if built is None:
        raise Violation("CUST527", f"agreement {agreement_id!r} v{number} has no projection")
    dataset = state.datasets.get(str(name), {})
    versions = {v.get("version"): v for v in dataset_versions(dataset)}
    before, after = versions.get(entry.get("from_version")), versions.get(entry.get("to_version"))
    if before is None or after is None or int(after["version"]) <= int(before["version"]):
        raise Violation("CUST707", f"the extension names no later version of dataset {name!r}")
    if built.get(str(name)) != before["sha256"]:
        raise Violation(
            "CUST707", f"the projection was not built from version {before['version']} of {name!r}"
        )
    added = dataset_files(dataset)[int(before["files"]) : int(after["files"])]
    if _entry_files(entry) != added or entry.get("sources") != {name: after["sha256"]}:
        raise Violation(
            "CUST526", f"the extension read dataset {name!r} with unregistered files or digests"
        )
    if entry.get("decision") != "allowed":
        return _noop

    def extended() -> None:
        state.projections[f"{agreement_id}@{number}"] = {**built, str(name): after["sha256"]}

    return extended


def _authorized_access(
    state: State, signer: Principal, agreement_id: str, at: dt.datetime
) -> Version:
    version = state.active_version(agreement_id, at)
    record = state.agreements[agreement_id]
    if signer.name != record.reviewer:
        raise Violation(
            "CUST316",
            f"principal {signer.name!r} is not the reviewer of agreement {agreement_id!r}",
        )
    if f"{agreement_id}@{version.number}" not in state.projections:
        raise Violation(
            "CUST527",
            f"agreement {agreement_id!r} v{version.number} has no projection built from "
            "registered sources",
        )
    return version


def _intent(state: State, entry: Mapping[str, Any], at: dt.datetime) -> Effect:
    attempted = entry.get("attempted")
    if attempted not in ACCESS_INTENTS:
        raise Violation("CUST511", f"an intent for {attempted!r}")
    signer = _signed(state, entry, at, str(attempted))
    args = _args(entry)
    if attempted == "reid.show":
        reid = _reid_release_check(state, signer, args, at)
        agreement_id, number = reid.agreement, reid.version
    else:
        agreement_id = str(args.get("agreement"))
        number = _authorized_access(state, signer, agreement_id, at).number
    _claims(entry, agreement=agreement_id, agreement_version=number)
    index = int(entry["index"])

    def opened() -> None:
        state.intents[index] = Intent(index, str(attempted), signer.name, agreement_id, number)

    return _consume(state, entry, opened)


def _outcome(kinds: tuple[str, ...]) -> Handler:
    """An outcome of an open intent; it closes the intent unless it is one query of a screen
    run (the run's own outcome closes it)."""

    def handler(state: State, entry: Mapping[str, Any], at: dt.datetime) -> Effect:
        index = entry.get("intent")
        intent = state.intents.get(index) if isinstance(index, int) else None
        if intent is None or intent.attempted not in kinds:
            raise Violation("CUST528", f"{entry.get('action')} without an open intent for it")
        _claims(entry, actor=intent.actor, agreement=intent.agreement)
        spent = entry.get("epsilon_spent", 0)
        if not isinstance(spent, int | float | str) or isinstance(spent, bool):
            raise Violation("CUST514", "epsilon_spent is not a number")

        closes = not (entry.get("action") == "query" and intent.attempted in SCREEN_RUNS)

        def effect() -> None:
            if closes:
                del state.intents[intent.index]
            if intent.attempted == "reid.show" and entry.get("action") == "reid.release":
                state.reid[_reid_id(entry)].released += 1

        return effect

    return handler


def _refusal(state: State, entry: Mapping[str, Any], at: dt.datetime) -> Effect:
    """A refusal authorizes nothing; one that names an open intent ends it (but one screen's
    refusal inside a screen run leaves the run open)."""
    index = entry.get("intent")
    if index is None:
        return _noop
    intent = state.intents.get(index) if isinstance(index, int) else None
    if intent is None:
        raise Violation("CUST528", "a refusal for an intent that is not open")
    if intent.attempted in SCREEN_RUNS and entry.get("screen"):
        return _noop

    def close() -> None:
        state.intents.pop(intent.index, None)

    return close


def _reid_id(entry: Mapping[str, Any]) -> int:
    value = entry.get("request_id")
    if not isinstance(value, int):
        raise Violation("CUST514", "the entry names no re-identification request")
    return value


def _reid_request(state: State, entry: Mapping[str, Any], at: dt.datetime) -> Effect:
    signer = _signed(state, entry, at, "reid.request")
    args = _args(entry)
    agreement_id = str(args.get("agreement"))
    version = _authorized_access(state, signer, agreement_id, at)
    tokens, fields, reason = args.get("tokens"), args.get("fields"), args.get("reason")
    if not isinstance(tokens, list) or not 1 <= len(tokens) <= MAX_REID_TOKENS:
        raise Violation("CUST410", f"a request names 1 to {MAX_REID_TOKENS} case tokens")
    if not isinstance(fields, list) or not fields or not isinstance(reason, str) or not reason:
        raise Violation("CUST514", "a request names its fields and a reason")
    content = {"agreement": agreement_id, "version": version.number, "tokens": tokens,
               "fields": fields, "reason": reason, "requester": signer.name}  # fmt: skip
    sha = sha256_hex(content)
    _claims(entry, agreement=agreement_id, agreement_version=version.number, sha256=sha)
    record = ReidRecord(int(entry["index"]), agreement_id, version.number, signer.name,
                        list(tokens), list(fields), reason, sha, at + REID_WINDOW)  # fmt: skip
    return _consume(state, entry, lambda: state.reid.__setitem__(record.id, record))


def _pending_reid(state: State, args: Mapping[str, Any], at: dt.datetime) -> ReidRecord:
    request_id = args.get("request")
    record = state.reid.get(request_id) if isinstance(request_id, int) else None
    if record is None:
        raise Violation("CUST403", f"unknown re-identification request {request_id}")
    if record.denied_by is not None:
        raise Violation("CUST529", f"re-identification request {record.id} was denied")
    if at >= record.expires:
        raise Violation("CUST417", f"re-identification request {record.id} expired")
    return record


def _reid_decide(approve: bool) -> Handler:
    action = "reid.approve" if approve else "reid.deny"

    def handler(state: State, entry: Mapping[str, Any], at: dt.datetime) -> Effect:
        signer = _signed(state, entry, at, action)
        args = _args(entry)
        record = _pending_reid(state, args, at)
        named = f"re-identification request {record.id}"
        if signer.name == record.requester:
            raise Violation("CUST413", f"principal {signer.name!r} requested {named}")
        if signer.role != "custodian":
            raise Violation("CUST412", f"principal {signer.name!r} is not a custodian")
        if signer.name in record.approvals:
            raise Violation("CUST414", f"custodian {signer.name!r} already approved {named}")
        _claims(entry, request_id=record.id, agreement=record.agreement)
        if not approve:
            reason = args.get("reason")
            if not isinstance(reason, str) or not reason.strip():
                raise Violation("CUST402", "a denial needs a reason")
            return _consume(state, entry, lambda: setattr(record, "denied_by", signer.name))
        if args.get("sha256") != record.sha256:
            raise Violation(
                "CUST524", f"the approval is not for the content of {named} as it was filed"
            )
        approvals = len(record.approvals) + 1
        _claims(entry, approvals=approvals, required=state.min_approvals)
        return _consume(state, entry, lambda: record.approvals.append(signer.name))

    return handler


def _reid_release_check(
    state: State, signer: Principal, args: Mapping[str, Any], at: dt.datetime
) -> ReidRecord:
    record = _pending_reid(state, args, at)
    if signer.name != record.requester:
        raise Violation("CUST415", f"only the requester may see request {record.id}")
    if len(record.approvals) < state.min_approvals:
        raise Violation(
            "CUST416",
            f"re-identification request {record.id} is not approved "
            f"({len(record.approvals)} of {state.min_approvals} custodian approvals)",
        )
    version = _authorized_access(state, signer, record.agreement, at)
    if version.number != record.version:
        raise Violation(
            "CUST418", f"agreement {record.agreement!r} changed since request {record.id}"
        )
    return record


# --- cases: opened by monitor runs, adjudicated by the agreement's reviewer ----------------------

CASE_ID = re.compile(r"^[0-9a-f]{64}$")
CASE_STATES = ("open", "confirmed", "not_improper", "recovered")
OUTPUT_FORMATS = ("csv", "json", "parquet")  # a case read's rendered file (docs/ledger.md §9)
CASE_MOVES = {
    "open": ("confirmed", "not_improper"),
    "confirmed": ("recovered", "not_improper"),
    "not_improper": ("confirmed",),
    "recovered": (),
}
AMOUNT = re.compile(r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,2})?$")
MAX_NOTE = 500


def _monitor(state: State, entry: Mapping[str, Any], at: dt.datetime) -> Effect:
    """A monitor run's outcome: it closes the run and opens the cases it names, each new."""
    close = _outcome(("monitor",))(state, entry, at)
    new = entry.get("new_cases")
    if not isinstance(new, list):
        raise Violation("CUST514", "a monitor outcome lists its new cases")
    agreement_id = str(entry.get("agreement"))
    opened: dict[str, CaseRecord] = {}
    for item in new:
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(v, str) for v in item)
                and CASE_ID.match(item[0])):  # fmt: skip
            raise Violation("CUST514", "a new case is [64-hex id, screen]")
        if item[0] in state.cases or item[0] in opened:
            raise Violation("CUST740", f"case {item[0][:16]} was already opened")
        opened[item[0]] = CaseRecord(item[0], agreement_id, item[1], entries=[int(entry["index"])])

    basis = entry.get("basis")
    index = int(entry["index"])

    def effect() -> None:
        close()
        state.cases.update(opened)
        if isinstance(basis, dict):
            state.monitored[agreement_id] = [index, basis]

    return effect


def _case_set(state: State, entry: Mapping[str, Any], at: dt.datetime) -> Effect:
    """The agreement's reviewer moves a case along open -> confirmed | not_improper,
    confirmed -> recovered | not_improper, not_improper -> confirmed; recovered is final and
    needs the amount recovered."""
    signer = _signed(state, entry, at, "case.set")
    args = _args(entry)
    case_id = args.get("case")
    record = state.cases.get(case_id) if isinstance(case_id, str) else None
    if record is None:
        raise Violation("CUST741", "unknown case")
    reviewer = state.agreement(record.agreement).reviewer
    if signer.name != reviewer:
        raise Violation(
            "CUST742",
            f"principal {signer.name!r} is not the reviewer of agreement {record.agreement!r}; "
            "only the reviewer sets a case's state",
        )
    target = args.get("state")
    if target not in CASE_STATES or target not in CASE_MOVES[record.state]:
        allowed = ", ".join(CASE_MOVES[record.state]) or "none: it is final"
        raise Violation(
            "CUST743", f"a {record.state} case cannot become {target!r} (allowed: {allowed})"
        )
    amount = args.get("amount")
    if (target == "recovered") != (amount is not None):
        raise Violation("CUST744", "an amount is given when, and only when, a case is recovered")
    if amount is not None and (not isinstance(amount, str) or not AMOUNT.match(amount)
                               or not float(amount) > 0):  # fmt: skip
        raise Violation("CUST744", "the amount recovered is a positive number of dollars")
    note = args.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE):
        raise Violation("CUST745", f"a note is text of at most {MAX_NOTE} characters")
    _claims(entry, agreement=record.agreement, case=record.id, previous=record.state)
    index = int(entry["index"])

    def moved() -> None:
        record.state = str(target)
        record.recovered = amount
        record.entries.append(index)

    return _consume(state, entry, moved)


CASE_PREFIX = re.compile(r"^[0-9a-f]{8,64}$")
MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
READERS = ("custodian", "overseer")  # besides the agreement's reviewer


def case_read_target(state: State, args: Mapping[str, Any]) -> tuple[str, str | None]:
    """The agreement and the case (if any) a ``case.read`` request names: ``args.case`` is 8
    to 64 leading hex digits of exactly one case's id (of ``args.agreement`` when given)."""
    agreement_id, case, month = args.get("agreement"), args.get("case"), args.get("month")
    if agreement_id is not None and not isinstance(agreement_id, str):
        raise Violation("CUST762", "a case read's agreement is text")
    if case is not None and not (isinstance(case, str) and CASE_PREFIX.match(case)):
        raise Violation("CUST762", "a case read's case is 8 to 64 lowercase hex digits")
    if month is not None and not (isinstance(month, str) and MONTH.match(month)):
        raise Violation("CUST762", "a case read's month is YYYY-MM")
    if agreement_id is None and case is None:
        raise Violation("CUST762", "a case read names an agreement or a case")
    _case_read_filters(args)
    if agreement_id is not None:
        state.agreement(agreement_id)  # CUST317 for an unknown agreement
    if case is None:
        return str(agreement_id), None
    found = [c for i, c in state.cases.items() if i.startswith(case)
             and (agreement_id is None or c.agreement == agreement_id)]  # fmt: skip
    if len(found) != 1:
        raise Violation("CUST761", f"{'no' if not found else 'more than one'} case id starts "
                        "with the digits given under this agreement")  # fmt: skip
    return found[0].agreement, found[0].id


def _case_read_filters(args: Mapping[str, Any]) -> None:
    """``args.state`` (a case state), ``args.screen`` (a name) and ``args.match`` (a list of
    category names) narrow what a read releases; ``args.output`` is the file it renders."""
    state, screen, match = args.get("state"), args.get("screen"), args.get("match")
    if state is not None and state not in CASE_STATES:
        raise Violation("CUST762", "a case read's state is a case state")
    if screen is not None and not (isinstance(screen, str) and screen):
        raise Violation("CUST762", "a case read's screen is a name")
    if match is not None and not (isinstance(match, list) and match
                                  and all(isinstance(m, str) and m for m in match)):  # fmt: skip
        raise Violation("CUST762", "a case read's match is a list of category names")
    if args.get("output") not in (None, *OUTPUT_FORMATS):
        raise Violation("CUST762", "a case read's output is csv, json or parquet")


def _case_read(state: State, entry: Mapping[str, Any], at: dt.datetime) -> Effect:
    """Case facts are released data of one agreement: its reviewer, a custodian or an overseer
    reads them; the entry states what was released (counts and a digest, never a value)."""
    signer = _signed(state, entry, at, "case.read")
    agreement_id, case = case_read_target(state, _args(entry))
    record = state.agreement(agreement_id)
    if signer.name != record.reviewer and signer.role not in READERS:
        raise Violation(
            "CUST760",
            f"principal {signer.name!r} is not the reviewer of agreement {agreement_id!r}; "
            "only its reviewer, custodians and overseers read its cases",
        )
    _claims(entry, agreement=agreement_id, **({"case": case} if case is not None else {}))
    released = ("cases", "report_rows", "released_sha256")
    if not (isinstance(entry, _Candidate) and not any(k in entry for k in released)):
        counts = [entry.get("cases"), entry.get("report_rows")]
        digest = entry.get("released_sha256")
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts) \
                or not (isinstance(digest, str) and CASE_ID.match(digest)):  # fmt: skip
            raise Violation("CUST514", "a case read states its cases, report_rows and digest")
        output = _args(entry).get("output")
        if (entry.get("output_format"), "output_sha256" in entry) != (output, output is not None) \
                or not (output is None or (isinstance(entry.get("output_sha256"), str)
                                           and CASE_ID.match(entry["output_sha256"]))):  # fmt: skip
            raise Violation("CUST514", "a case read states the format and digest of its file")
    return _consume(state, entry)


_HANDLERS: dict[str, Handler] = {
    "genesis": _genesis,
    "principal.add": _principal_add,
    "principal.remove": _principal_remove,
    "key.rotate": _key_rotate,
    "dataset.add": _dataset_add,
    "agreement.propose": _agreement_propose,
    "agreement.approve": _agreement_approve,
    "agreement.revoke": _agreement_revoke,
    "projection.build": _projection_build,
    "projection.extend": _projection_extend,
    "dataset.update": _dataset_update,
    "intent": _intent,
    "query": _outcome(("query", *SCREEN_RUNS)),
    "screen.run": _outcome(("screen.run",)),
    "reid.release": _outcome(("reid.show",)),
    "refusal": _refusal,
    "reid.request": _reid_request,
    "reid.approve": _reid_decide(approve=True),
    "reid.deny": _reid_decide(approve=False),
    "monitor": _monitor,
    "case.set": _case_set,
    "case.read": _case_read,
}


# --- the audit ----------------------------------------------------------------------------------


Progress = Callable[[int], None]  # entries replayed so far (for a progress bar)
PROGRESS_EVERY = 1024


@dataclass(frozen=True)
class AuditResult:
    entries: int
    violation: tuple[int, str, str] | None  # index, code, rule
    unfinished: tuple[int, ...]  # intents without an outcome


def audit_entries(entries: Iterable[Mapping[str, Any]]) -> tuple[State, AuditResult]:
    """Replay ``entries`` from the genesis; stop at the first violation."""
    return _replay(State(), entries)


def audit_more(state: State, entries: Iterable[Mapping[str, Any]]) -> AuditResult:
    """Continue a replay that reached ``state`` without a violation with the entries that follow
    (the verdict ``audit_entries`` gives all of them in one go); ``state`` is not to be used
    again after a violation."""
    return _replay(state, entries)[1]


def _replay(
    state: State, entries: Iterable[Mapping[str, Any]], progress: Progress | None = None
) -> tuple[State, AuditResult]:
    for entry in entries:
        index = state.size
        if progress is not None and index % PROGRESS_EVERY == 0:
            progress(index)
        try:
            state.apply(entry)
        except Violation as exc:
            return state, AuditResult(state.size, (index, exc.code, exc.rule), ())
    if progress is not None:
        progress(state.size)
    return state, AuditResult(state.size, None, tuple(sorted(state.intents)))


def audit_lines(
    lines: Iterable[bytes], jobs: int = 1, progress: Progress | None = None
) -> tuple[State, AuditResult]:
    """``audit_entries`` of the entries' JSON lines (ValueError if one is not JSON). With
    ``jobs`` > 1, worker processes check the signatures ahead, chunk by chunk, while this
    process replays the rules in order; the verdict, index and code are the same for any
    ``jobs``: a worker only finds under which keys a signature verifies, and which key counts
    at that entry is still the replay's decision. ``progress``, if given, is called with the
    number of entries replayed so far, every ``PROGRESS_EVERY`` entries and at the end."""
    state = State()
    if jobs < 2:
        return _replay(state, map(parse_line, lines), progress)
    entries = _checked_ahead(state, lines, jobs)
    try:
        return _replay(state, entries, progress)
    finally:
        entries.close()  # stops the workers when the replay stopped early
        state.checked = None


# --- signatures checked ahead in worker processes -----------------------------------------------
# Ed25519 verification is most of an audit's time and does not depend on the order of entries:
# workers verify each chunk's signatures under every key its signers' names were ever given
# (a pure fact about the bytes); the replay, still one entry after another, looks the verdict
# up for the key registered at that entry, and verifies itself whatever was not checked ahead.

CHUNK = 2048  # entries per worker task
MAX_KEYS = 4  # keys tried per principal name (a name removed and added again has two)
PARALLEL_MIN = 1 << 16  # below this many entries, starting workers costs more than they save

KeyTable = dict[str, tuple[bytes, ...]]


@dataclass(frozen=True)
class CheckedSignatures:
    """A chunk of entries from ``start`` as the workers found them: the entries at the offsets
    in ``checked`` were verified under each of their request's principal's ``keys``, and
    ``valid`` holds ``offset * MAX_KEYS + slot`` when one verifies under ``keys[name][slot]``."""

    start: int
    keys: KeyTable
    checked: frozenset[int]
    valid: frozenset[int]

    def verdict(self, index: int, principal: Principal) -> bool | None:
        """Whether the signature of entry ``index`` verifies under ``principal``'s key, or None
        when that was not checked ahead (the replay then verifies it itself)."""
        offset = index - self.start
        candidates = self.keys.get(principal.name, ())
        if offset not in self.checked or principal.raw not in candidates:
            return None
        return offset * MAX_KEYS + candidates.index(principal.raw) in self.valid


def _note_keys(entry: Any, keys: KeyTable) -> None:
    """Add the principal keys ``entry`` may register (a genesis's custodians, a
    ``principal.add``'s key) to ``keys``, before the replay decides whether it does: a key
    missed here is only not checked ahead."""
    try:
        action = entry.get("action")
        if action == "genesis":
            found = [(item["name"], item["pubkey"]) for item in entry["custodians"]]
        elif action == "principal.add":
            args = entry["request"]["args"]
            found = [(args["name"], args["pubkey"])]
        else:
            return
        for name, pubkey in found:
            raw, known = ssh_ed25519_key(pubkey), keys.get(name, ())
            if raw not in known and len(known) < MAX_KEYS:
                keys[name] = (*known, raw)
    except (ValueError, TypeError, KeyError, AttributeError):
        return


_DECODER = json.JSONDecoder()
# the scanner the decoder itself runs (in C); typeshed types its argument as a scanner
_scan = make_scanner(_DECODER)  # type: ignore[arg-type]


def parse_line(line: bytes) -> Any:
    """``json.loads(line)``, without its encoding detection when the line is plainly UTF-8 (it
    opens an object and its second byte is not 0, as in UTF-16/32: what that detection would
    conclude), nor its whitespace scans when the object ends the line."""
    if line[:1] != b"{" or line[1:2] in (b"", b"\x00"):
        return json.loads(line)
    text = line.decode("utf-8", "surrogatepass")
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        end = -1
    return value if end == len(text) else _DECODER.decode(text)


def _to_check(entry: Any, keys: KeyTable) -> bool:
    """Whether ``entry`` carries a signed request by a name in ``keys``."""
    if not isinstance(entry, dict):
        return False
    request = entry.get("request")
    if not isinstance(request, dict) or not isinstance(entry.get("signature"), str):
        return False
    name = request.get("principal")
    return isinstance(name, str) and name in keys


def _check_signatures(lines: list[tuple[int, bytes]], keys: KeyTable) -> frozenset[int]:
    """Run in a worker: ``CheckedSignatures.valid`` of the entries at these offsets (what
    ``signature_valid`` answers for each of their principal's keys, from the same bytes)."""
    valid = set()
    for offset, line in lines:
        entry = parse_line(line)
        request = entry["request"]
        try:
            message = request_message(request)
            raw = base64.b64decode(entry["signature"], validate=True)
        except (ValueError, TypeError):
            continue
        for slot, key in enumerate(keys[request["principal"]]):
            if _verifies(key, raw, message):
                valid.add(offset * MAX_KEYS + slot)
    return frozenset(valid)


@dataclass(frozen=True)
class _Chunk:
    start: int
    entries: list[Any]  # parsed, or _Unreadable
    keys: KeyTable
    checked: frozenset[int]
    valid: Future[frozenset[int]] | None


def _checked_ahead(state: State, lines: Iterable[bytes], jobs: int) -> Generator[Any]:
    """The entries of ``lines`` in order, with ``state.checked`` set to the chunk's verdicts
    before its first entry; at most ``2 * jobs`` chunks are read ahead of the replay."""
    keys: KeyTable = {}
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"))
    pending: deque[_Chunk] = deque()
    try:
        start, it = 0, iter(lines)
        while chunk := list(itertools.islice(it, CHUNK)):
            entries = [_parsed(line) for line in chunk]
            for entry in entries:
                _note_keys(entry, keys)
            snapshot = dict(keys)
            signed = [(n, line) for n, line in enumerate(chunk) if _to_check(entries[n], snapshot)]
            try:
                valid = pool.submit(_check_signatures, signed, snapshot) if signed else None
            except (OSError, RuntimeError):  # no worker could start: the replay verifies
                signed, valid = [], None
            checked = frozenset(n for n, _ in signed)
            pending.append(_Chunk(start, entries, snapshot, checked, valid))
            start += len(chunk)
            if len(pending) > 2 * jobs:
                yield from _chunk_entries(state, pending.popleft())
        while pending:
            yield from _chunk_entries(state, pending.popleft())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class _Unreadable:
    """A line that is not JSON, read ahead: raised when the replay reaches it."""

    def __init__(self, error: ValueError) -> None:
        self.error = error


def _parsed(line: bytes) -> Any:
    try:
        return parse_line(line)
    except ValueError as exc:
        return _Unreadable(exc)


def _chunk_entries(state: State, chunk: _Chunk) -> Iterator[Any]:
    try:
        valid = chunk.valid.result() if chunk.valid is not None else frozenset()
    except Exception:  # a worker failed or died: the replay verifies this chunk itself
        state.checked = None
    else:
        state.checked = CheckedSignatures(chunk.start, chunk.keys, chunk.checked, valid)
    for entry in chunk.entries:
        if isinstance(entry, _Unreadable):
            raise entry.error
        yield entry


def _read_lines(path: Path, checkpoint: _verify.Checkpoint | None) -> list[bytes]:
    raw = path.read_bytes().splitlines()
    if checkpoint is not None:
        _verify.verify_entries(raw, checkpoint)
    return raw


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python replay.py",
        description="Replay a custodiet ledger's governance from its entries alone (standard "
        "library, cryptography and verify.py): exit 0 when every signature checks and every "
        "access was authorized when it happened, 1 naming the first entry that breaks a rule, "
        "2 for usage or unreadable input. The rules are in docs/ledger.md.",
    )
    parser.add_argument("--entries", required=True, help="entries as JSON lines (ledger entries)")
    parser.add_argument("--checkpoint", help="a signed checkpoint the entries must rebuild")
    parser.add_argument(
        "--vkey", help="the log's verifier key, or a file holding it (needed with --checkpoint)"
    )
    parser.add_argument("--genesis-sha256", help="SHA-256 (hex) of entry 0 as you were given it")
    parser.add_argument(
        "--jobs",
        type=_positive,
        help="worker processes checking signatures (default: one per core for logs of "
        f"{PARALLEL_MIN:,} entries or more, else 1)",
    )
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        checkpoint = None
        if args.checkpoint:
            if not args.vkey:
                print("error: --checkpoint needs --vkey", file=sys.stderr)
                return 2
            note = Path(args.checkpoint).read_text(encoding="utf-8")
            checkpoint = _verify.verify_checkpoint(note, _verify.key_argument(args.vkey))
        lines = _read_lines(Path(args.entries), checkpoint)
        genesis = args.genesis_sha256
        if genesis and lines and sha256_hex(json.loads(lines[0])) != genesis.lower():
            print("NOT AUTHORIZED: entry 0 is not the genesis you were given", file=sys.stderr)
            return 1
        jobs = args.jobs or ((os.cpu_count() or 1) if len(lines) >= PARALLEL_MIN else 1)
        _, result = audit_lines(lines, jobs)
    except _verify.VerificationError as exc:
        print(f"NOT VERIFIED: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"error: cannot read input ({type(exc).__name__})", file=sys.stderr)
        return 2
    if result.violation is not None:
        index, code, rule = result.violation
        print(f"NOT AUTHORIZED: entry {index}: {rule} [{code}]", file=sys.stderr)
        return 1
    for index in result.unfinished:
        print(f"unfinished: entry {index} is an intent without an outcome", file=sys.stderr)
    print(f"authorized: {result.entries} entries replayed, every access authorized")
    return 0


if __name__ == "__main__":
    sys.exit(main())


# --- the state as JSON (the gateway's cache of it) ----------------------------------------------


def state_document(state: State) -> dict[str, Any]:
    """The state as plain JSON (times as RFC 3339 text); ``state_from_document`` inverts it."""

    def when(moment: dt.datetime | None) -> str | None:
        return None if moment is None else moment.isoformat()

    return {
        "origin": state.origin,
        "min_approvals": state.min_approvals,
        "log_vkey": state.log_vkey,
        "size": state.size,
        "last_time": when(state.last_time),
        "principals": {n: [p.role, p.pubkey] for n, p in state.principals.items()},
        "votes": state.votes,
        "datasets": state.datasets,
        "agreements": {
            a.id: {
                "reviewer": a.reviewer,
                "revoked_through": a.revoked_through,
                "versions": [
                    [v.number, v.sha256, v.document, v.proposer, v.approvals] for v in a.versions
                ],
            }
            for a in state.agreements.values()
        },
        "projections": state.projections,
        "reid": {
            str(r.id): {**r.__dict__, "expires": when(r.expires)} for r in state.reid.values()
        },
        "nonces": {k: when(t) for k, t in state.nonces.items()},
        "intents": {str(i.index): i.__dict__ for i in state.intents.values()},
        "cases": {c.id: c.__dict__ for c in state.cases.values()},
        "monitored": state.monitored,
    }


def state_from_document(doc: Mapping[str, Any]) -> State:
    state = State(
        origin=doc["origin"],
        min_approvals=int(doc["min_approvals"]),
        log_vkey=doc["log_vkey"],
        size=int(doc["size"]),
        last_time=parse_time(doc["last_time"]) if doc["last_time"] else None,
        votes={k: list(v) for k, v in doc["votes"].items()},
        datasets=dict(doc["datasets"]),
        projections={k: dict(v) for k, v in doc["projections"].items()},
        nonces={k: parse_time(t) for k, t in doc["nonces"].items()},
    )
    for name, (role, pubkey) in doc["principals"].items():
        state.principals[name] = Principal(name, role, pubkey, ssh_ed25519_key(pubkey))
    for agreement_id, a in doc["agreements"].items():
        versions = [Version(n, s, d, p, list(ap)) for n, s, d, p, ap in a["versions"]]
        state.agreements[agreement_id] = AgreementRecord(
            agreement_id, a["reviewer"], versions, int(a["revoked_through"])
        )
    for r in doc["reid"].values():
        state.reid[int(r["id"])] = ReidRecord(**{**r, "expires": parse_time(r["expires"])})
    for i in doc["intents"].values():
        state.intents[int(i["index"])] = Intent(**i)
    state.monitored = {k: list(v) for k, v in doc.get("monitored", {}).items()}
    for c in doc.get("cases", {}).values():
        state.cases[c["id"]] = CaseRecord(**{**c, "entries": list(c["entries"])})
    return state
