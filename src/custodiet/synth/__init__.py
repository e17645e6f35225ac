"""Synthetic federal data: the canonical tables of docs/schema.md with planted, labelled cases."""

from __future__ import annotations

from custodiet.synth.label import PATTERNS
from custodiet.synth.pipeline import CHUNK_PEOPLE, Summary, generate
from custodiet.synth.plant import PROFILES
from custodiet.synth.schema import SCHEMAS, TABLES

__all__ = ["CHUNK_PEOPLE", "PATTERNS", "PROFILES", "SCHEMAS", "TABLES", "Summary", "generate"]
