"""The query allow-list, re-exported for the gateway: its home is ``agreements.allowlist`` so that
agreement row filters (checked when an agreement is applied, a layer below the gateway) pass the
very same lists as queries."""

from custodiet.agreements.allowlist import (
    AGGREGATES_IN_AGGREGATE_MODE,
    ANONYMOUS_FUNCTIONS,
    ANY_MODE,
    ARGS,
    CAST_TYPES,
    FUNCTIONS,
    NODES,
    PSEUDONYMOUS,
    VAR_PARENTS,
    function_modes,
    function_name,
)

__all__ = [
    "AGGREGATES_IN_AGGREGATE_MODE",
    "ANONYMOUS_FUNCTIONS",
    "ANY_MODE",
    "ARGS",
    "CAST_TYPES",
    "FUNCTIONS",
    "NODES",
    "PSEUDONYMOUS",
    "VAR_PARENTS",
    "function_modes",
    "function_name",
]
