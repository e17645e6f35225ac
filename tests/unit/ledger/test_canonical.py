"""The fast JCS encoder produces exactly the bytes of the rfc8785 reference, or refuses."""

from __future__ import annotations

import enum

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from custodiet.ledger import canonical

values = st.recursive(
    st.none()
    | st.booleans()
    | st.text()
    | st.integers(-canonical.SAFE_INTEGER, canonical.SAFE_INTEGER)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(values)
def test_matches_rfc8785_byte_for_byte(value) -> None:
    assert canonical.dumps(value) == rfc8785.dumps(value)


def test_orders_keys_by_utf16_code_units_not_code_points() -> None:
    value = {"\U0001f600": 1, "\ufb01": 2, "a": 3}
    assert canonical.dumps(value) == rfc8785.dumps(value)
    assert canonical.dumps(value).index("\U0001f600".encode()) < canonical.dumps(value).index(
        "\ufb01".encode()
    )


class Colour(enum.IntEnum):
    RED = 1


class Mode(enum.StrEnum):
    AGGREGATE = "aggregate"


def test_enum_values_serialize_as_their_json_value() -> None:
    value = {"colour": Colour.RED, "mode": Mode.AGGREGATE}
    assert canonical.dumps(value) == rfc8785.dumps(value) == b'{"colour":1,"mode":"aggregate"}'


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), 2**53, {1: "x"}, b"raw", {"x": {1, 2}}, "\ud800"],
    ids=["nan", "inf", "big-int", "int-key", "bytes", "set", "lone-surrogate"],
)
def test_refuses_values_without_a_canonical_form(value) -> None:
    with pytest.raises(canonical.NotCanonical):
        canonical.dumps(value)


@pytest.mark.parametrize(
    "entry",
    [
        {"a": '"index":null', "j": '"time":null,', "z": ["x", 1]},
        {"\u00e9": 1.5, "b": {"index": None}},
        {},
    ],
    ids=["placeholder-text-in-values", "exact-path", "empty"],
)
def test_object_parts_splice_into_the_whole_canonical_form(entry) -> None:
    before, between, after = canonical.object_parts(entry, ("index", "time"))
    members = (before, b'"index":7', between, b'"time":"t"', after)
    spliced = b"{" + b",".join(m for m in members if m) + b"}"
    assert spliced == rfc8785.dumps({**entry, "index": 7, "time": "t"})
