"""Servers the tests start in processes of their own: a free loopback port, an environment
without the caller's custodiet settings, and a process known to be up before the test goes on
(and stopped, its pipes closed, when it is done)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env() -> dict[str, str]:
    """This environment without CUSTODIET_* settings, with this interpreter's scripts on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODIET_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def serves_info(url: str) -> bool:
    """``custodiet serve`` is up: its public /v1/info answers."""
    return httpx.get(f"{url}/v1/info", timeout=1).status_code == 200


@contextmanager
def running(
    args: Sequence[str],
    port: int,
    *,
    ready: Callable[[str], bool] = serves_info,
    cwd: Path | None = None,
    stdout: int = subprocess.DEVNULL,
) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m custodiet ARGS`` listening on ``port``, once ``ready(url)`` holds."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "custodiet", *args],
        cwd=cwd,
        env=clean_env(),
        stdout=stdout,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if ready(url):
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, f"{' '.join(args[:2])} did not start"
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=30)
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()
