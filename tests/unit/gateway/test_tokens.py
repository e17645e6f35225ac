from __future__ import annotations

import base64
import hashlib
import hmac
import re

import pytest

from custodiet.errors import SystemFailure
from custodiet.gateway.tokens import TOKEN_LENGTH, Tokenizer, agreement_key, read_secret

SECRET = bytes(range(32))


def test_token_is_hmac_of_domain_and_normalized_value_cut_to_twelve_base64url_chars() -> None:
    key = agreement_key(SECRET, "a1", "rev")
    expected = base64.urlsafe_b64encode(
        hmac.new(key, b"tin\x00ssn:123456789", hashlib.sha256).digest()
    ).decode()[:TOKEN_LENGTH]
    assert Tokenizer(key, "ssn").token("123-45-6789") == expected
    assert re.fullmatch(r"[A-Za-z0-9_-]{12}", expected)


def test_an_ssn_links_across_ssn_and_tin_columns_in_any_layout() -> None:
    key = agreement_key(SECRET, "a1", "rev")
    tokens = {
        Tokenizer(key, kind).token(v)
        for kind, v in [("ssn", "123-45-6789"), ("tin", "123456789"), ("tin", "123-45-6789")]
    }
    assert len(tokens) == 1


def test_an_ein_links_across_ein_and_tin_columns() -> None:
    key = agreement_key(SECRET, "a1", "rev")
    assert Tokenizer(key, "ein").token("12-3456789") == Tokenizer(key, "tin").token("12-3456789")
    assert Tokenizer(key, "ein").token("123456789") == Tokenizer(key, "tin").token("12-3456789")


def test_an_ssn_and_an_ein_with_the_same_digits_are_different_taxpayers() -> None:
    key = agreement_key(SECRET, "a1", "rev")
    ssn = Tokenizer(key, "tin").token("101-10-1001")
    ein = Tokenizer(key, "tin").token("10-1101001")
    assert ssn is not None and ein is not None
    assert ssn != ein
    assert Tokenizer(key, "ssn").token("101101001") != Tokenizer(key, "ein").token("101101001")


def test_unrelated_identifier_kinds_never_link() -> None:
    key = agreement_key(SECRET, "a1", "rev")
    digits = "123456789"
    tokens = {Tokenizer(key, kind).token(digits) for kind in ("tin", "routing", "account")}
    assert len(tokens) == 3


def test_names_normalize_case_and_spaces() -> None:
    tokenizer = Tokenizer(agreement_key(SECRET, "a1", "rev"), "name")
    assert tokenizer.token("  Ada   LOVELACE ") == tokenizer.token("ada lovelace")
    assert tokenizer.token("ada lovelace") != tokenizer.token("ada lovelac")


def test_tokens_differ_between_agreements_and_are_stable_within_one() -> None:
    one = Tokenizer(agreement_key(SECRET, "a1", "rev"), "ssn")
    again = Tokenizer(agreement_key(SECRET, "a1", "rev"), "ssn")
    other = Tokenizer(agreement_key(SECRET, "a2", "rev"), "ssn")
    assert one.token("123-45-6789") == again.token("123-45-6789")
    assert one.token("123-45-6789") != other.token("123-45-6789")


def test_tokens_differ_between_reviewers_of_one_agreement_id() -> None:
    """An agreement id that changed hands (a new reviewer) shares no tokens with the old one."""
    mine = Tokenizer(agreement_key(SECRET, "a1", "rev"), "ssn")
    theirs = Tokenizer(agreement_key(SECRET, "a1", "rev-2"), "ssn")
    assert mine.token("123-45-6789") != theirs.token("123-45-6789")


def test_the_key_derivation_cannot_be_shifted_between_id_and_reviewer() -> None:
    """``a1`` reviewed by ``b`` is not ``a`` reviewed by ``1b`` (a separator between them)."""
    assert agreement_key(SECRET, "a1", "b") != agreement_key(SECRET, "a", "1b")


def test_missing_or_empty_identifiers_get_no_token() -> None:
    tokenizer = Tokenizer(agreement_key(SECRET, "a1", "rev"), "ssn")
    assert tokenizer.tokens([None, "---", "123-45-6789"])[:2] == [None, None]
    assert tokenizer.tokens(["123-45-6789"])[0] is not None


def test_plain_hash_of_an_identifier_is_not_its_token() -> None:
    token = Tokenizer(agreement_key(SECRET, "a1", "rev"), "ssn").token("123456789")
    for digest in (hashlib.sha256(b"123456789"), hashlib.md5(b"123456789")):
        assert token not in (digest.hexdigest(), base64.urlsafe_b64encode(digest.digest()).decode())
        assert not digest.hexdigest().startswith(str(token))


def test_unreadable_secret_is_a_system_failure(tmp_path) -> None:
    with pytest.raises(SystemFailure) as caught:
        read_secret(tmp_path / "missing.bin")
    assert caught.value.code == "CUST140"
    short = tmp_path / "short.bin"
    short.write_bytes(b"x")
    with pytest.raises(SystemFailure):
        read_secret(short)
