from __future__ import annotations

from dataclasses import asdict

import numpy as np

from custodiet.synth.plant import RING_SIZES, Role, assign_roles, plan_for, planted_people


def test_stress_plans_at_least_the_floor_of_each_case() -> None:
    plan = plan_for(10_000, "stress")
    assert min(asdict(plan).values()) >= 5


def test_realistic_plants_about_ten_times_fewer_improper_cases() -> None:
    stress, realistic = plan_for(1_000_000, "stress"), plan_for(1_000_000, "realistic")
    assert realistic.paid_after_death * 10 == stress.paid_after_death
    assert realistic.rings * 10 == stress.rings
    assert realistic.dies_early_in_month == stress.dies_early_in_month  # decoys stay


def test_plan_fits_a_tiny_chunk() -> None:
    for people in (1, 7, 100, 500):
        assert planted_people(plan_for(people, "stress")) * 4 <= people


def test_roles_are_disjoint_and_rings_have_four_to_six_members() -> None:
    plan = plan_for(20_000, "stress")
    roles = assign_roles(np.random.default_rng(0), 20_000, plan)
    assert (roles.role == Role.PAID_AFTER_DEATH).sum() == plan.paid_after_death
    assert (roles.role == Role.TOO_OLD).sum() == plan.too_old
    sizes = np.bincount(roles.ring[roles.ring >= 0])
    assert len(sizes) == plan.rings
    assert sizes.min() >= RING_SIZES[0] and sizes.max() < RING_SIZES[1]
    coupled = roles.partner >= 0
    assert np.all(roles.role[coupled] == Role.BACKGROUND)
    assert np.array_equal(roles.partner[roles.partner[coupled]], np.flatnonzero(coupled))
