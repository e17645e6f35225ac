"""The remote client: a principal's commands sent to a ``custodiet serve`` over HTTP.

The client holds only the principal's key: it learns the log's origin from ``GET /v1/info``,
signs each request locally and POSTs the signed document to the action's route; reads are GETs.
Results come back as the API's JSON documents and are decoded here into the same result objects
the services return, so each CLI command renders one way whichever side ran it. A server's
error document becomes the same ``CustodietError`` (class and stable code) the CLI would have
raised in-process.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from custodiet.errors import CustodietError, InputError, RefusedError, SystemFailure
from custodiet.identity import SignedRequest

TIMEOUT = httpx.Timeout(connect=10.0, read=600.0, write=60.0, pool=10.0)

ROUTES = {  # the signed request's action -> its route (custodiet.api.actions)
    "principal.add": "/v1/principals/add",
    "principal.remove": "/v1/principals/remove",
    "dataset.add": "/v1/datasets/add",
    "dataset.update": "/v1/datasets/update",
    "agreement.propose": "/v1/agreements/propose",
    "agreement.approve": "/v1/agreements/approve",
    "agreement.revoke": "/v1/agreements/revoke",
    "agreement.build": "/v1/agreements/build",
    "query": "/v1/query",
    "screen.run": "/v1/screens/run",
    "reid.request": "/v1/reid/request",
    "reid.approve": "/v1/reid/approve",
    "reid.deny": "/v1/reid/deny",
    "reid.show": "/v1/reid/show",
    "monitor": "/v1/monitor",
    "case.set": "/v1/cases/set",
    "case.read": "/v1/cases/read",
}


def unreachable(url: str, exc: Exception) -> SystemFailure:
    return SystemFailure(
        f"{url}: the server cannot be reached ({type(exc).__name__})",
        hint="check --server (or $CUSTODIET_SERVER) and that `custodiet serve` runs there",
        code="CUST611",
    )


def error_from(response: httpx.Response) -> CustodietError:
    """The server's error document as the error the CLI raises in-process."""
    try:
        body = response.json()["error"]
        code, message, hint = str(body["code"]), str(body["message"]), body.get("hint") or None
    except (ValueError, KeyError, TypeError):
        return SystemFailure(
            f"the server answered {response.status_code} without an error document",
            hint="check that --server names a custodiet server",
            code="CUST611",
        )
    status = response.status_code
    if status in (401, 403, 409, 429) or message.startswith("refused: "):
        return RefusedError(message.removeprefix("refused: "), hint=hint, code=code)
    if status >= 500:
        return SystemFailure(message, hint=hint, code=code)
    return InputError(message, hint=hint, code=code)


@dataclass(frozen=True)
class RemoteState:
    """What a client knows of the log: enough to sign (``origin``) and to explain (K)."""

    origin: str
    min_approvals: int
    vkey: str


class Remote:
    """One server, over one HTTP connection pool."""

    def __init__(self, url: str, transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=TIMEOUT, transport=transport)
        self._state: RemoteState | None = None

    @property
    def state(self) -> RemoteState:
        if self._state is None:
            info = self.get("/v1/info")
            self._state = RemoteState(info["origin"], int(info["min_approvals"]), info["vkey"])
        return self._state

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise unreachable(self.url, exc) from None
        if response.status_code != 200:
            raise error_from(response)
        return response

    def get(self, path: str, **params: Any) -> Any:
        return self._send("GET", path, params=params or None).json()

    def text(self, path: str, **params: Any) -> str:
        return self._send("GET", path, params=params or None).text

    def act(self, signed: SignedRequest) -> Any:
        """POST ``signed`` to its action's route; the result document."""
        route = ROUTES.get(signed.action)
        if route is None:
            raise InputError(f"no route for '{signed.action}'", code="CUST606")
        return self._send("POST", route, json=signed.document()).json()

    def close(self) -> None:
        self.http.close()


# --- the API's documents as the services' result objects -------------------------------------


def _cell(value: Any, kind: str) -> Any:
    """A typed JSON cell back as the value the gateway released (custodiet.gateway.rendering)."""
    if value is None:
        return None
    if kind == "decimal":
        return Decimal(str(value))
    if kind == "integer" and isinstance(value, str):
        return int(value)
    if kind == "date" and isinstance(value, str):
        return dt.date.fromisoformat(value)
    if kind == "timestamp" and isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    return value


def _query(doc: Mapping[str, Any]) -> Any:
    from custodiet.gateway.service import QueryResult

    types = list(doc.get("types") or ["string"] * len(doc["columns"]))
    return QueryResult(
        tuple(doc["columns"]),
        [tuple(_cell(v, k) for v, k in zip(r, types, strict=True)) for r in doc["rows"]],
        int(doc["ledger_index"]),
        tuple(doc["notices"]),
        False,
        _output(doc),
    )


def _output(doc: Mapping[str, Any]) -> bytes | None:
    """The file the server rendered for ``--out`` (base64 in ``output``), if any."""
    encoded = doc.get("output")
    if encoded is None:
        return None
    try:
        return base64.b64decode(str(encoded), validate=True)
    except ValueError:
        raise SystemFailure(
            "the server's answer holds an output that is not base64",
            hint="check that --server names a custodiet server",
            code="CUST611",
        ) from None


def _change(doc: Mapping[str, Any]) -> Any:
    from custodiet.principals import Change

    return Change(
        doc["principal"], doc["votes"], doc["required"], doc["effective"], doc["ledger_index"]
    )


def dataset(d: Mapping[str, Any]) -> Any:
    from custodiet.catalog.classes import ColumnClass
    from custodiet.catalog.model import ColumnInfo, Dataset

    columns = {
        c["name"]: ColumnInfo(c["name"], c["type"], ColumnClass(c["class"]), c["identifier_kind"])
        for c in d["columns"]
    }
    files = tuple((str(f["path"]), str(f["sha256"])) for f in d.get("files") or ())
    return Dataset(d["name"], d["path"], d["format"], columns, d["sha256"], d["rows"], d["table"],
                   int(d.get("version", 1)), files)  # fmt: skip


def principal(doc: Mapping[str, Any]) -> Any:
    from custodiet.principals import Principal, Role

    return Principal(doc["name"], Role(doc["role"]), doc["pubkey"])


def _registration(doc: Mapping[str, Any]) -> Any:
    from custodiet.catalog.registry import Registration

    return Registration(
        dataset(doc["dataset"]),
        tuple(doc["lowered"]),
        doc["votes"],
        doc["required"],
        doc["effective"],
        doc["ledger_index"],
    )


def _growth(doc: Mapping[str, Any]) -> Any:
    from custodiet.gateway.growth import Growth

    return Growth(_registration(doc), tuple(doc.get("extended", ())))


def _version(doc: Mapping[str, Any]) -> Any:
    from custodiet.agreements.lifecycle import AgreementVersion

    return AgreementVersion(
        doc["id"], doc["version"], doc["sha256"], doc["is_new"], doc["ledger_index"]
    )


def _approved(doc: Mapping[str, Any]) -> Any:
    from custodiet.agreements.lifecycle import ApprovalStatus
    from custodiet.gateway.activation import Approved

    status = ApprovalStatus(
        doc["id"],
        doc["version"],
        doc["sha256"],
        doc["approvals"],
        doc["required"],
        doc["active"],
        doc["ledger_index"],
    )
    return Approved(status, Path(doc["projection"]) if doc["projection"] else None)


def reid_record(doc: Mapping[str, Any]) -> Any:
    from custodiet.ledger.replay import ReidRecord

    return ReidRecord(
        doc["id"],
        doc["agreement"],
        doc["version"],
        doc["requester"],
        list(doc["tokens"]),
        list(doc["fields"]),
        doc["reason"],
        doc["sha256"],
        dt.datetime.fromisoformat(doc["expires"]),
        list(doc["approvals"]),
    )


def _release(doc: Mapping[str, Any]) -> Any:
    from custodiet.gateway.identities import IdentifiedRecord
    from custodiet.ledger.replay import ReidRecord
    from custodiet.reid.service import Release

    request = ReidRecord(
        doc["request"], "", 0, "", [], list(doc["fields"]), "", "", dt.datetime.now(dt.UTC)
    )
    records = tuple(
        IdentifiedRecord(
            r["token"], r["dataset"], {k: v for k, v in r.items() if k not in ("token", "dataset")}
        )
        for r in doc["records"]
    )
    return Release(request, records, doc["records_sha256"], doc["ledger_index"])


def _report(doc: Mapping[str, Any]) -> Any:
    from custodiet.screens.model import Case, Finding, Report, ScreenRefusal, ScreenSummary

    cases = tuple(
        Case(
            c["record_table"],
            c["record_id"],
            c["payee"],
            Decimal(str(c["amount_at_risk"])),
            tuple(Finding(p, e) for p, found in c["evidence"].items() for e in found),
        )
        for c in doc["cases"]
    )
    summaries = tuple(
        ScreenSummary(
            s["screen"],
            s["cases"],
            Decimal(str(s["amount_at_risk"])),
            s["ledger_index"],
            s["truncated"],
        )
        for s in doc["summary"]
    )
    refusals = tuple(
        ScreenRefusal(r["screen"], r["rule"], r["hint"], r["ledger_index"]) for r in doc["refused"]
    )
    return Report(
        doc["agreement"],
        doc["agreement_version"],
        cases,
        summaries,
        refusals,
        int(doc.get("ledger_index", -1)),
        _output(doc),
    )


def _monitor_run(doc: Mapping[str, Any]) -> Any:
    from custodiet.cases.monitor import run_from_document

    return run_from_document(doc)


def _case_change(doc: Mapping[str, Any]) -> Any:
    from custodiet.cases.adjudicate import change_from_document

    return change_from_document(dict(doc))


def _case_read(doc: Mapping[str, Any]) -> Any:
    from custodiet.cases.read import read_from_document

    return read_from_document(doc, _output(doc))


DECODERS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "principal.add": _change,
    "principal.remove": _change,
    "dataset.add": _registration,
    "dataset.update": _growth,
    "agreement.propose": _version,
    "agreement.approve": _approved,
    "agreement.revoke": _version,
    "agreement.build": lambda doc: Path(doc["projection"]),
    "query": _query,
    "screen.run": _report,
    "reid.request": reid_record,
    "reid.approve": reid_record,
    "reid.deny": reid_record,
    "reid.show": _release,
    "monitor": lambda doc: _monitor_run(doc),
    "case.set": lambda doc: _case_change(doc),
    "case.read": _case_read,
}


def perform(remote: Remote, signed: SignedRequest) -> Any:
    """Run ``signed`` on the server; the result object its service returns in-process."""
    return DECODERS[signed.action](remote.act(signed))


def agreement_summary(doc: Mapping[str, Any]) -> Any:
    from custodiet.agreements.lifecycle import AgreementSummary

    return AgreementSummary(
        doc["id"],
        doc["version"],
        doc["sha256"],
        doc["reviewer"],
        doc["proposer"],
        dt.date.fromisoformat(doc["expires"]),
        tuple(doc["approvals"]),
        doc["approvals_required"],
        doc["status"],
        doc["active_version"],
        doc["document"],
        tuple(doc["changes"]),
    )
