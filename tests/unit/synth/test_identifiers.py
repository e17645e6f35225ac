from __future__ import annotations

import numpy as np
from stdnum.us import ein, rtn, ssn

from custodiet.synth.identifiers import (
    MAX_PEOPLE,
    Bijection,
    Identifiers,
    aba_check_digit,
    routing_pool,
)

KEYS = np.concatenate([np.arange(20_000), np.array([MAX_PEOPLE - 1, 3 * MAX_PEOPLE + 2])])


def test_bijection_is_a_permutation() -> None:
    space = 10_007 * 12
    image = Bijection(seed=3, label=1, space=space)(np.arange(space))
    assert np.array_equal(np.sort(image), np.arange(space))


def test_ssns_are_valid_and_distinct_including_at_the_top_of_the_range() -> None:
    numbers = Identifiers(5).ssn(KEYS[:-1]).to_pylist()
    assert len(set(numbers)) == len(numbers)
    assert all(ssn.is_valid(number) for number in numbers)


def test_eins_are_valid_and_distinct() -> None:
    numbers = Identifiers(5).ein(KEYS).to_pylist()
    assert len(set(numbers)) == len(numbers)
    assert all(ein.is_valid(number) for number in numbers)


def test_accounts_are_distinct_with_8_to_12_digits_and_valid_routing() -> None:
    ids = Identifiers(5)
    accounts = ids.account(KEYS).to_pylist()
    assert len(set(accounts)) == len(accounts)
    assert all(a is not None and a.isdigit() and 8 <= len(a) <= 12 for a in accounts)
    assert all(rtn.is_valid(r) for r in ids.routing(KEYS).to_pylist())


def test_negative_account_key_means_no_account() -> None:
    ids = Identifiers(0)
    keys = np.array([-1, 4])
    assert ids.account(keys).to_pylist()[0] is None
    assert ids.routing(keys).to_pylist()[0] is None
    assert ids.routing(keys).to_pylist()[1] is not None


def test_aba_check_digit_matches_a_published_routing_number() -> None:
    assert aba_check_digit("02100002") == 1  # 021000021
    pool = routing_pool(np.random.default_rng(1), 64).to_pylist()
    assert len(set(pool)) == 64
    assert all(rtn.is_valid(number) for number in pool)


def test_identifiers_depend_on_the_seed() -> None:
    keys = np.arange(100)
    assert Identifiers(1).ssn(keys).to_pylist() != Identifiers(2).ssn(keys).to_pylist()
