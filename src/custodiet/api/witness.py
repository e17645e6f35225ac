"""``create_witness_app(directory)``: the ASGI app of ``custodiet witness serve``, C2SP
tlog-witness over HTTP: one route, ``POST /add-checkpoint``.

Statuses as the spec gives them: 200 with the cosignature line; 400 a malformed body
(CUST620); 404 a checkpoint of a log this witness does not follow (CUST621); 403 no valid
signature by the log's key (CUST622); 409 ``old`` is not the witness's latest size, or the
same size with another root (CUST623), the body being that size and a newline
(``text/x.tlog.size``); 422 a consistency proof that does not verify (CUST624); 413 a body
larger than ``MAX_BODY`` (CUST601). Other refusals are one ``CUSTnnn: message`` line, plain text.
The checking and the state are ``custodiet.ledger.witness.Witness``'s.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from custodiet.errors import CustodietError, InputError
from custodiet.ledger.witness import Witness, WitnessRefusal, parse_request

LOG = logging.getLogger("custodiet.witness")
MAX_BODY = 1 << 16  # 63 proof lines and a note of 100 signature lines fit with room to spare
SIZE_TYPE = "text/x.tlog.size"
STATUS = {"CUST620": 400, "CUST621": 404, "CUST622": 403, "CUST623": 409, "CUST624": 422}


def refusal(exc: WitnessRefusal) -> Response:
    status = STATUS.get(exc.code, 500)
    if status == 409:
        # exactly this type, no charset parameter (C2SP tlog-witness)
        return Response(f"{exc.size}\n".encode(), 409, headers={"content-type": SIZE_TYPE})
    return PlainTextResponse(f"{exc.code}: {exc.message}\n", status_code=status)


def create_witness_app(directory: Path) -> FastAPI:
    """The witness in ``directory`` (made by ``witness init`` or ``ledger witness``) on HTTP."""
    witness = Witness(directory)
    app = FastAPI(title="custodiet witness", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/add-checkpoint")
    async def add_checkpoint(request: Request) -> Response:
        declared = request.headers.get("content-length", "")
        body = b""
        if not (declared.isdigit() and int(declared) > MAX_BODY):
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_BODY:
                    break
        if len(body) > MAX_BODY or (declared.isdigit() and int(declared) > MAX_BODY):
            return PlainTextResponse(
                f"CUST601: the body is over {MAX_BODY} bytes\n", status_code=413
            )

        def work() -> str:
            try:
                old, proof, checkpoint = parse_request(body)
            except InputError as exc:
                raise WitnessRefusal(exc, witness.state.size) from None
            return witness.add_checkpoint(old, proof, checkpoint)

        try:
            line = await run_in_threadpool(work)
        except WitnessRefusal as exc:
            LOG.warning("add-checkpoint refused: %s", exc.code)
            return refusal(exc)
        except CustodietError as exc:  # the state could not be saved: nothing was cosigned
            LOG.error("add-checkpoint failed: %s", exc.code)
            return PlainTextResponse(f"{exc.code}: {exc.message}\n", status_code=500)
        except Exception as exc:
            LOG.error("add-checkpoint failed: %s", type(exc).__name__)
            return PlainTextResponse("CUST148: internal error\n", status_code=500)
        return PlainTextResponse(line)

    return app
