"""Case counts at the size the issue names: 100,000 people."""

from __future__ import annotations

from pathlib import Path

import pytest

from custodiet.synth import PATTERNS, generate


@pytest.mark.slow
def test_stress_gives_every_pattern_50_cases_and_realistic_is_rarer(tmp_path: Path) -> None:
    stress = generate(tmp_path / "stress", 100_000, seed=0, profile="stress")
    assert {p: stress.patterns[p] >= 50 for p in PATTERNS} == dict.fromkeys(PATTERNS, True)
    realistic = generate(tmp_path / "realistic", 100_000, seed=0, profile="realistic")
    assert 5 * sum(realistic.patterns.values()) < sum(stress.patterns.values())
    assert stress.rows["payments"] > 8 * 100_000
