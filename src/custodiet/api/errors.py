"""The one JSON error shape, and the one place an exception becomes an HTTP status.

    {"error": {"code": "CUST...", "message": "...", "hint": "...", "status": N}}

A refused query adds ``"span": {"start": S, "end": E}``: the text of its SQL the refusal
points at (an identifier, a function, a keyword), in code points, never a value from the data.

Statuses: InputError 400; RefusedError 403, but 401 when the signature or the identity fails
(CUST310, CUST501-505) and 404 for an unknown id; 409 for a replayed or conflicting request;
413 (a body, or a query too large to check: CUST373-375) and 429 for the server's own limits;
SystemFailure and TamperedError 500. Any other exception is 500 CUST148 without its text: no
traceback and no engine message reaches a client.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from custodiet.errors import (
    CustodietError,
    InputError,
    RefusedError,
    SystemFailure,
)

UNAUTHENTICATED = frozenset({"CUST310", "CUST501", "CUST502", "CUST503", "CUST504", "CUST505"})
NOT_FOUND = frozenset(
    {"CUST223", "CUST237", "CUST250", "CUST317", "CUST403", "CUST607", "CUST608", "CUST741",
     "CUST761"}
)  # fmt: skip
CONFLICT = frozenset(
    {
        "CUST231",
        "CUST236",
        "CUST320",
        "CUST322",
        "CUST414",
        "CUST506",
        "CUST517",
        "CUST524",
        "CUST740",
    }
)
# The server's own limits: a body, or a query too large to check (CUST373-375), is 413.
OWN_STATUS = {
    "CUST373": 413,
    "CUST374": 413,
    "CUST375": 413,
    "CUST601": 413,
    "CUST602": 429,
    "CUST603": 429,
    "CUST605": 405,
}


def status_of(error: CustodietError) -> int:
    """The HTTP status of ``error`` (see the module docstring)."""
    code = error.code
    if code in OWN_STATUS:
        return OWN_STATUS[code]
    if code in NOT_FOUND:
        return 404
    if code in UNAUTHENTICATED:
        return 401
    if code in CONFLICT:
        return 409
    if isinstance(error, InputError):
        return 400
    if isinstance(error, RefusedError):
        return 403
    return 500


def document(error: CustodietError, status: int | None = None) -> dict[str, Any]:
    """The error body for ``error``; a refused query's adds ``span``, where in its SQL the
    refusal points (``RefusedError.span``)."""
    body: dict[str, Any] = {
        "code": error.code,
        "message": error.message,
        "hint": error.hint or "",
        "status": status if status is not None else status_of(error),
    }
    span = getattr(error, "span", None)
    if span is not None:
        body["span"] = {"start": span[0], "end": span[1]}
    return {"error": body}


def internal() -> SystemFailure:
    """What a client sees of an exception nothing else mapped: a code, never its text."""
    return SystemFailure(
        "internal error: the server could not complete this request; nothing was released",
        hint="try again; if it persists, the operator finds the cause in the server's log",
        code="CUST148",
    )


def body_too_large(limit: int) -> InputError:
    return InputError(
        f"the request body is larger than {limit} bytes",
        hint="send one signed request per call; large agreements belong in smaller versions",
        code="CUST601",
    )


def malformed(what: str) -> InputError:
    return InputError(
        f"malformed request: {what}",
        hint="send the signed request document the custodiet client makes "
        '({"request": {...}, "signature": "..."})',
        code="CUST604",
    )


def no_route(status: int) -> CustodietError:
    if status == 405:
        return InputError(
            "this route does not take that method",
            hint="principal actions are POST; reads are GET (see docs/openapi.json)",
            code="CUST605",
        )
    return InputError(
        "no such route", hint="see docs/openapi.json for the API's routes", code="CUST607"
    )


class Span(BaseModel):
    """Where in the request's SQL a refusal points: [start, end) in Unicode code points."""

    start: int = Field(ge=0)
    end: int = Field(ge=0)


class ErrorBody(BaseModel):
    code: str = Field(pattern="^CUST[0-9]{3}$")
    message: str
    hint: str
    status: int
    span: Span | None = None


class ErrorDocument(BaseModel):
    """The one error shape."""

    error: ErrorBody


ERROR_STATUSES = (400, 401, 403, 404, 405, 409, 413, 429, 500)


def responses() -> dict[int | str, dict[str, Any]]:
    """The error responses every route documents (OpenAPI)."""
    return {
        status: {
            "description": "an error (the one error shape)",
            "model": ErrorDocument,
        }
        for status in ERROR_STATUSES
    }
