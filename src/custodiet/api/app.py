"""``create_app(workspace)``: the ASGI app of ``custodiet serve``.

The app owns one long-lived ``Runtime`` (one ledger writer and the replayed state), made when
the server starts and closed when it stops; no state lives at module level. Principal actions
are POST routes under ``/v1`` whose body is a signed request document; reads are public GETs;
the log is also served as C2SP tlog-tiles (``custodiet.api.tlog``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from custodiet.api import errors
from custodiet.api.actions import ACTIONS, Action
from custodiet.api.limits import Governor, Limits
from custodiet.errors import CustodietError, InputError, RefusedError
from custodiet.identity import SignedRequest
from custodiet.ledger.cosigning import Cosigner
from custodiet.runtime import Runtime, refused
from custodiet.workspace import Workspace

LOG = logging.getLogger("custodiet.api")
UNAUTHENTICATED = "(unauthenticated)"  # the actor of a refusal whose request was not signed
T = TypeVar("T")

SIGNED_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["request", "signature"],
    "properties": {
        "request": {
            "type": "object",
            "description": "The request object (canonical JSON): v, origin, principal, action, "
            "args, time, nonce (docs/ledger.md).",
        },
        "signature": {"type": "string", "description": "base64 Ed25519 signature"},
    },
}


def package_version() -> str:
    try:
        return version("custodiet")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


class Server:
    """What one app holds for its life: the workspace, its runtime, the limits' state and the
    thread asking the workspace's witnesses to cosign (``custodiet.ledger.cosigning``)."""

    def __init__(self, workspace: Workspace, limits: Limits) -> None:
        self.workspace = workspace
        self.limits = limits
        self.governor = Governor(limits)
        self._runtime: Runtime | None = None
        self.cosigner = Cosigner(lambda: self.runtime.ledger, workspace.witnesses_path)

    def open(self) -> None:
        self.workspace.manifest()
        self._runtime = Runtime(self.workspace)
        self.cosigner.start()
        self.cosigner.poke()

    def close(self) -> None:
        self.cosigner.stop()
        runtime, self._runtime = self._runtime, None
        if runtime is not None:
            runtime.close()

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise errors.internal()
        return self._runtime


def error_response(error: CustodietError) -> JSONResponse:
    status = errors.status_of(error)
    return JSONResponse(errors.document(error, status), status_code=status)


async def answered(work: Callable[[], T]) -> T | JSONResponse:
    """``work()`` on a worker thread; a CustodietError as its error response; anything else as
    500 CUST148 (the exception goes to the server's log, never to the client)."""
    try:
        return await run_in_threadpool(work)
    except CustodietError as exc:
        return error_response(exc)
    except Exception:
        LOG.exception("unexpected error")
        return error_response(errors.internal())


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise errors.body_too_large(limit)
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise errors.body_too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_document(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise errors.malformed("the body is not JSON (or nested too deeply)") from None
    if not isinstance(document, dict):
        raise errors.malformed("the body is not a JSON object")
    return document


def perform(
    server: Server, action: Action, document: dict[str, Any], client: str
) -> dict[str, Any]:
    """Check, authenticate and run one signed action; every refusal is on the ledger.

    An authenticated principal's requests count against that principal's limits; anything
    refused before authentication counts against ``(unauthenticated)@<client address>``, so
    nobody can spend another principal's budget and an unsigned flood cannot grow the ledger
    faster than that budget."""
    rt, governor = server.runtime, server.governor
    anonymous = f"{UNAUTHENTICATED}@{client}"
    if not isinstance(document.get("request"), dict) or not isinstance(
        document.get("signature"), str
    ):
        with governor.admit(anonymous):
            rt.refuse(
                RefusedError(
                    "the request is not signed",
                    hint="sign every action with your own key: `custodiet --server URL ... "
                    "--as NAME --key FILE`; there are no bearer tokens",
                    code="CUST501",
                ),
                attempted=action.action,
                actor=UNAUTHENTICATED,
            )
    signed = SignedRequest.from_document(document)
    if signed.action != action.action:
        raise InputError(
            f"this route takes '{action.action}' requests, not '{signed.action}'",
            hint=f"send '{signed.action}' requests to its own route (docs/openapi.json)",
            code="CUST606",
        )
    failure = authentication_failure(rt, signed)
    if failure is not None:
        with governor.admit(anonymous):
            rt.refuse(failure, attempted=signed.action, actor=signed.principal, signed=signed)
    with governor.admit(signed.principal):
        return action.service(rt, signed)


def authentication_failure(rt: Runtime, signed: SignedRequest) -> RefusedError | None:
    """Why ``signed`` is not fresh, for this log, and signed by a registered principal (checked
    before the service does anything for it); None when it is.

    A request that passes is read without the write lock (this is only the first gate: the
    service checks it again, under the lock, in the entry it commits); one that fails is checked
    again on the state brought up to date with the ledger, since another process may have
    registered its principal since."""
    from custodiet.ledger.replay import Violation

    try:
        rt.state.authenticate(signed.request, signed.signature, rt.now())
    except Violation:
        with rt.exclusive() as state:
            try:
                state.authenticate(signed.request, signed.signature, rt.now())
            except Violation as exc:
                return refused(exc)
    return None


def create_app(workspace: Path | None = None, limits: Limits | None = None) -> FastAPI:
    """The API over ``workspace`` (opened when the app starts; None: documentation only)."""
    server = Server(Workspace(workspace or Path("custodiet-workspace")), limits or Limits())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(server.open)
        try:
            yield
        finally:
            await run_in_threadpool(server.close)

    app = FastAPI(
        title="custodiet",
        version=package_version(),
        summary="Signed actions on pseudonymized federal data; every access on a public log.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.server = server

    @app.exception_handler(CustodietError)
    async def _custodiet(_: Request, exc: CustodietError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        where = ".".join(str(p) for p in (exc.errors()[0].get("loc") or ())) if exc.errors() else ""
        return error_response(errors.malformed(f"invalid parameter {where}".strip()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(errors.no_route(exc.status_code))

    @app.exception_handler(Exception)
    async def _anything(_: Request, exc: Exception) -> JSONResponse:
        LOG.error("unexpected error: %s", type(exc).__name__)
        return error_response(errors.internal())

    for action in ACTIONS:
        _add_action(app, server, action)

    from custodiet.api.audit import add_audit
    from custodiet.api.reads import add_reads
    from custodiet.api.tlog import add_tlog

    add_reads(app, server)
    add_tlog(app, server)
    add_audit(app, server)
    from custodiet.console import add_console

    add_console(app)
    _strip_default_422(app)
    return app


def _add_action(app: FastAPI, server: Server, action: Action) -> None:
    async def endpoint(request: Request) -> Response:
        try:
            document = parse_document(await read_body(request, server.limits.body_bytes))
        except CustodietError as exc:
            return error_response(exc)
        client = request.client.host if request.client else "unknown"
        result = await answered(lambda: perform(server, action, document, client))
        server.cosigner.poke()  # a new checkpoint was signed (an answer or a refusal)
        return result if isinstance(result, Response) else JSONResponse(result)

    app.add_api_route(
        f"/v1{action.path}",
        endpoint,
        methods=["POST"],
        summary=action.summary,
        description=f"Body: the `{action.action}` request signed by the acting principal.",
        operation_id=action.action.replace(".", "_"),
        responses={
            200: {
                "description": "done",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            **errors.responses(),
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": SIGNED_REQUEST_SCHEMA}},
            }
        },
        tags=["actions"],
    )


def _strip_default_422(app: FastAPI) -> None:
    """Validation failures are 400 in the one error shape, not FastAPI's 422: say so."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    operation.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
