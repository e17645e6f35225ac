"""Fuzzing every acting command's arguments and agreement files: never a traceback, never exit 1
(a system failure) for bad input, never exit 0 for a nonsensical request."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custodiet.principals import Role
from tests.kit import Kit

# a command line cannot carry a NUL byte; anything else can reach us
ARG = st.characters(blacklist_characters="\x00")
JUNK = st.one_of(
    st.text(ARG, min_size=0, max_size=40),
    st.sampled_from(["-1", "0", "99999999999999999999999", "1e308", "nan", "", " ", "--", "-w"]),
    st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=0x2FF), max_size=20),
)


# a ledger index that exists would make a sensible request (the log holds a few entries)
NOT_AN_INDEX = JUNK.filter(lambda s: not (s.strip().isascii() and s.strip().isdigit()))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Kit, Path]:
    root = tmp_path_factory.mktemp("fuzz")
    kit = Kit(root)
    ws = kit.init(root / "ws")
    kit.add_principal(ws, "rae", Role.REVIEWER)
    for name in ("ana", "rae"):
        kit.key_file(name)
    return kit, ws.root


def _run(world: tuple[Kit, Path], args: list[str]) -> subprocess.CompletedProcess[str]:
    _kit, ws = world
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODIET_")}
    env["CUSTODIET_WORKSPACE"] = str(ws)
    return subprocess.run(
        [sys.executable, "-m", "custodiet", *args],
        capture_output=True,
        text=True,
        errors="replace",
        env=env,
        cwd=ws.parent,
        timeout=120,
        check=False,
    )


def _commands(kit: Kit) -> st.SearchStrategy[list[str]]:
    rae, ana = kit.as_("rae"), kit.as_("ana")
    return st.one_of(
        st.builds(lambda a, q: ["query", "--agreement", a, *rae, q], JUNK, JUNK),
        st.builds(
            lambda a, v, h: ["agreement", "approve", a, "--version", v, "--sha256", h, *ana],
            JUNK, JUNK, JUNK,
        ),
        st.builds(lambda a: ["agreement", "revoke", a, *ana], JUNK),
        st.builds(lambda a: ["agreement", "show", a], JUNK),
        st.builds(lambda n: ["reid", "show", n, *rae], JUNK),
        st.builds(lambda n, h: ["reid", "approve", n, "--sha256", h, *ana], JUNK, JUNK),
        st.builds(
            lambda a, c, r: ["reid", "request", "--agreement", a, "--case", c, "--reason", r, *rae],
            JUNK, JUNK, JUNK,
        ),
        st.builds(lambda n, p: ["dataset", "add", n, p, *ana], JUNK, JUNK),
        st.builds(
            lambda n, r, p: ["principal", "add", n, "--role", r, "--pubkey", p, *ana],
            JUNK, JUNK, JUNK,
        ),
        st.builds(lambda a, b: ["ledger", "entries", "--from", a, "--to", b], NOT_AN_INDEX, JUNK),
        st.builds(lambda i: ["ledger", "proof", i], NOT_AN_INDEX),
        st.builds(lambda a, b: ["ledger", "consistency", a, b], NOT_AN_INDEX, JUNK),
        st.builds(lambda k: ["query", "--agreement", "x", "--as", "rae", "--key", k, "SELECT 1"],
                  JUNK),
    )  # fmt: skip


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_bad_arguments_are_input_errors_or_refusals(
    world: tuple[Kit, Path], data: st.DataObject
) -> None:
    kit, _ = world
    args = data.draw(_commands(kit))
    proc = _run(world, args)
    assert "Traceback" not in proc.stderr, (args, proc.stderr[-800:])
    assert proc.returncode in (2, 3), (args, proc.returncode, proc.stderr[-800:])


YAML_JUNK = st.one_of(
    st.text(max_size=200),
    st.builds(
        lambda k, v: f"id: a\npurpose: p\nreviewer: rae\nexpires: 2030-01-01\n{k}: {v}\n",
        st.text(min_size=1, max_size=12),
        st.text(max_size=30),
    ),
    st.builds(
        lambda e: f"id: a\npurpose: p\nreviewer: rae\nexpires: {e}\ndatasets: {{}}\n",
        st.text(max_size=20),
    ),
    st.builds(lambda n: "id: a\nlimits: " + "[" * n + "\n", st.integers(1, 3000)),
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=YAML_JUNK)
def test_bad_agreement_files_are_input_errors(world: tuple[Kit, Path], text: str) -> None:
    kit, ws = world
    path = ws.parent / "fuzzed.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    proc = _run(world, ["agreement", "apply", str(path), *kit.as_("rae")])
    assert "Traceback" not in proc.stderr, (text, proc.stderr[-800:])
    assert proc.returncode in (2, 3), (text, proc.returncode, proc.stderr[-800:])
