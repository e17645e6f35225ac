"""The one error shape at every boundary: malformed bodies, unknown routes and methods, the
server's limits (each with its own code), and an unexpected exception that never leaks."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from custodiet.api.limits import Governor, Limits
from custodiet.errors import RefusedError, SystemFailure
from custodiet.permissions import problems, require_private
from tests.api.world import Caller, served
from tests.conftest import run_cli
from tests.kit import Kit, public_key


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Caller]:
    with served(tmp_path_factory.mktemp("edges"), Limits(body_bytes=4096, rate=5, burst=5)) as c:
        yield c


def _error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {
        "error": {
            "code": code,
            "message": response.json()["error"]["message"],
            "hint": response.json()["error"]["hint"],
            "status": status,
        }
    }


def test_a_body_that_is_not_json_is_400(world: Caller) -> None:
    _error(world.client.post("/v1/query", content=b"{not json"), 400, "CUST604")
    _error(world.client.post("/v1/query", json=[1, 2]), 400, "CUST604")


def test_a_body_over_the_limit_is_413_before_it_is_read(world: Caller) -> None:
    _error(world.client.post("/v1/query", content=b"x" * 5000), 413, "CUST601")


def test_unknown_routes_and_methods_use_the_error_shape(world: Caller) -> None:
    _error(world.client.get("/v1/nothing-here"), 404, "CUST607")
    _error(world.client.get("/v1/query"), 405, "CUST605")
    _error(world.client.get("/v1/proof/notanumber"), 400, "CUST604")


def test_an_unknown_entry_or_tile_is_404(world: Caller) -> None:
    _error(world.client.get("/tile/0/x999/000"), 404, "CUST608")
    _error(world.client.get("/tile/0/000.p/0"), 404, "CUST608")
    _error(world.client.get("/tile/9/000.p/1"), 404, "CUST608")


def test_the_rate_limit_is_429_per_principal(world: Caller) -> None:
    codes = []
    for _ in range(8):
        response = world.post(world.sign("ana", "query", {"agreement": "a", "sql": "SELECT 1"}))
        codes.append(response.json()["error"]["code"])
    assert "CUST603" in codes
    assert codes.index("CUST603") >= 4  # the bucket's burst came first
    other = world.post(world.sign("ben", "query", {"agreement": "a", "sql": "SELECT 1"}))
    assert other.json()["error"]["code"] != "CUST603"  # another principal's budget is theirs


def test_the_concurrency_limit_is_its_own_code() -> None:
    governor = Governor(Limits(concurrent=2, rate=1000, burst=1000))
    with governor.admit("rae"), governor.admit("rae"):
        with pytest.raises(RefusedError) as caught, governor.admit("rae"):
            pass
        assert caught.value.code == "CUST602"
        with governor.admit("ana"):
            pass
    with governor.admit("rae"):  # released
        pass


def test_the_token_bucket_refills_with_time() -> None:
    now = [0.0]
    governor = Governor(Limits(rate=2, burst=2), clock=lambda: now[0])
    for _ in range(2):
        with governor.admit("rae"):
            pass
    with pytest.raises(RefusedError) as caught, governor.admit("rae"):
        pass
    assert caught.value.code == "CUST603"
    now[0] += 0.5
    with governor.admit("rae"):
        pass


def test_an_unexpected_exception_is_500_without_its_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(rt, signed):
        raise RuntimeError("engine said: secret value 123-45-6789")

    import custodiet.gateway.service

    monkeypatch.setattr(custodiet.gateway.service, "run_query", boom)
    with served(tmp_path) as caller:
        response = caller.post(caller.sign("ana", "query", {"agreement": "a", "sql": "1"}))
    _error(response, 500, "CUST148")
    assert "secret" not in response.text and "RuntimeError" not in response.text


def test_concurrent_requests_share_one_runtime(world: Caller) -> None:
    results: list[int] = []

    def read() -> None:
        results.append(world.client.get("/v1/principals").status_code)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 8


# --- the workspace is the server's alone --------------------------------------------------------


def test_init_makes_the_workspace_0700_and_its_files_0600(tmp_path: Path) -> None:
    ws = Kit(tmp_path).init(tmp_path / "ws")
    assert stat.S_IMODE(ws.root.stat().st_mode) == 0o700
    for path in ws.root.rglob("*"):
        expected = 0o700 if path.is_dir() else 0o600
        assert stat.S_IMODE(path.stat().st_mode) == expected, path
    assert problems(ws.root) == []


def test_serve_and_doctor_refuse_a_workspace_others_can_read(tmp_path: Path) -> None:
    ws = Kit(tmp_path).init(tmp_path / "ws")
    secret = ws.secret_path
    secret.chmod(0o644)
    with pytest.raises(SystemFailure) as caught:
        require_private(ws.root)
    assert caught.value.code == "CUST610"
    env = {k: v for k, v in os.environ.items() if k != "CUSTODIET_WORKSPACE"}
    doctor = run_cli("doctor", "--workspace", str(ws.root), env=env)
    assert doctor.status == 1 and str(secret) in doctor.stderr and "0644" in doctor.stderr
    serve = run_cli("serve", "--workspace", str(ws.root), "--port", "0", env=env)
    assert serve.status == 1 and "CUST610" not in serve.stdout and "refusing" in serve.stderr
    secret.chmod(0o600)
    ok = run_cli("doctor", "--workspace", str(ws.root), env=env)
    assert ok.status == 0 and "private" in ok.stdout


def test_an_unsigned_flood_spends_no_principals_budget(tmp_path: Path) -> None:
    with served(tmp_path, Limits(rate=3, burst=3)) as caller:
        size = len(caller.entries())
        codes = [
            caller.client.post("/v1/query", json={"request": {"principal": "ana"}}).json()
            for _ in range(6)
        ]
        assert [c["error"]["code"] for c in codes].count("CUST603") == 3
        assert len(caller.entries()) == size + 3  # refusals beyond the budget are not recorded
        signed = caller.post(caller.sign("ana", "query", {"agreement": "a", "sql": "SELECT 1"}))
        assert signed.json()["error"]["code"] != "CUST603"


def test_a_deeply_nested_body_is_400(world: Caller) -> None:
    _error(world.client.post("/v1/query", content=b"[" * 3000), 400, "CUST604")


def test_a_principal_registered_by_another_process_is_known_at_once(tmp_path: Path) -> None:
    from custodiet.principals import add_principal

    kit = Kit(tmp_path)
    ws = kit.init(tmp_path / "ws")
    with served(tmp_path, workspace=ws) as caller:
        caller.client.get("/v1/principals")
        kit.call(
            ws,
            add_principal,
            "ana",
            "principal.add",
            name="late",
            role="overseer",
            pubkey=public_key("late"),
        )  # another process's runtime, as the local CLI
        signed = caller.sign("late", "query", {"agreement": "a", "sql": "SELECT 1"})
        error = caller.post(signed).json()["error"]
        assert error["code"] != "CUST310"  # known: refused by policy, not as a stranger
