"""Public reads: the log's identity, principals, datasets, agreements, pending requests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from custodiet.api import documents, errors

if TYPE_CHECKING:
    from custodiet.api.app import Server


def add_reads(app: FastAPI, server: Server) -> None:
    from custodiet.api.app import answered, package_version

    common: dict[str, Any] = {"responses": errors.responses(), "tags": ["reads"]}

    @app.get("/v1/info", summary="The log's origin, verifier key and K", **common)
    async def info() -> Any:
        def work() -> dict[str, Any]:
            rt = server.runtime
            with rt.exclusive() as state:
                return {
                    "origin": state.origin,
                    "vkey": rt.ledger.vkey(),
                    "min_approvals": state.min_approvals,
                    "version": package_version(),
                }

        return await answered(work)

    @app.get("/v1/principals", summary="Registered principals", **common)
    async def principals() -> Any:
        from custodiet.principals import list_principals

        def work() -> list[dict[str, Any]]:
            with server.runtime.exclusive() as state:
                return [documents.principal(p) for p in list_principals(state)]

        return await answered(work)

    @app.get("/v1/datasets", summary="Registered datasets and their column classes", **common)
    async def datasets() -> Any:
        from custodiet.catalog.registry import list_datasets

        def work() -> list[dict[str, Any]]:
            with server.runtime.exclusive() as state:
                return [documents.dataset(d) for d in list_datasets(state)]

        return await answered(work)

    @app.get("/v1/agreements", summary="Agreements: latest version, status, approvals", **common)
    async def agreements() -> Any:
        from custodiet.agreements.lifecycle import list_agreements

        def work() -> list[dict[str, Any]]:
            rt = server.runtime
            with rt.exclusive() as state:
                return [documents.agreement(a) for a in list_agreements(state, rt.now())]

        return await answered(work)

    @app.get(
        "/v1/agreements/{agreement_id}", summary="One agreement, as custodians review it", **common
    )
    async def agreement(agreement_id: str) -> Any:
        from custodiet.agreements.lifecycle import show_agreement

        def work() -> dict[str, Any]:
            rt = server.runtime
            with rt.exclusive() as state:
                return documents.agreement(show_agreement(state, agreement_id, rt.now()))

        return await answered(work)

    @app.get("/v1/reid/pending", summary="Pending re-identification requests", **common)
    async def reid_pending() -> Any:
        from custodiet.reid import pending

        def work() -> list[dict[str, Any]]:
            rt = server.runtime
            with rt.exclusive() as state:
                return [documents.reid_request(r) for r in pending(state, rt.now())]

        return await answered(work)
