"""What checking a query may cost: bounded before, during and after parsing.

The checker's passes (qualification above all) grow faster than linearly with a query's size
and depth, and a query within the length limit can hold thousands of terms. So:

    scan          before sqlglot sees the text: at most MAX_TOKENS tokens (CUST373) and
                  parentheses nested at most MAX_DEPTH deep (CUST263); a linear regex pass
    tree_within   after parsing: at most MAX_NODES syntax nodes (CUST374) and a tree at most
                  MAX_DEPTH deep (CUST263): ``1+1+...+1`` has no parentheses but is that deep;
                  after qualification (every ``*`` expanded), at most MAX_EXPANDED_NODES
    Deadline      the query's deadline (the agreement's ``timeout_seconds``) starts before the
                  check; the checker tests it between passes (CUST375) and the engine gets what
                  is left of it (CUST370)

Legitimate queries are far below every cap (the screens' largest: ~230 tokens, ~180 nodes,
depth 14); the caps make the worst query within them checked in well under a second. A token
parses to at most about 1.2 nodes, so the node cap is the tighter one for long select lists.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from sqlglot import exp

from custodiet.errors import RefusedError
from custodiet.gateway.parse import too_deep

MAX_TOKENS = 3_000
MAX_NODES = 2_500
MAX_EXPANDED_NODES = 10_000
MAX_DEPTH = 128

# One token: a quoted string or name (doubled quotes inside), a comment, a word or number, or one
# other character (each dot too: ``a.b.c...`` is as long a chain as ``a+b+c...``). Unterminated
# quotes and comments run to the end (sqlglot then says where).
_TOKEN = re.compile(
    r"""'(?:[^']|'')*'?|"(?:[^"]|"")*"?|--[^\n]*|/\*(?:[^*]|\*(?!/))*(?:\*/)?|[\w$]+|\S""",
)


def scan(sql: str) -> None:
    """Refuse SQL with more than MAX_TOKENS tokens or parentheses nested deeper than MAX_DEPTH,
    before any parser allocates a tree for it."""
    depth = 0
    for tokens, match in enumerate(_TOKEN.finditer(sql), start=1):
        if tokens > MAX_TOKENS:
            raise too_many_tokens()
        char = match.group()
        if char == "(":
            depth += 1
            if depth > MAX_DEPTH:
                raise too_deep()
        elif char == ")":
            depth = max(depth - 1, 0)


def tree_within(tree: exp.Expr, max_nodes: int = MAX_NODES) -> None:
    """Refuse a tree with more than ``max_nodes`` nodes or deeper than MAX_DEPTH."""
    nodes = 0
    stack: list[tuple[exp.Expr, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > max_nodes:
            raise too_many_nodes(max_nodes)
        if depth > MAX_DEPTH:
            raise too_deep()
        stack.extend((child, depth + 1) for child in node.iter_expressions())


def too_many_tokens() -> RefusedError:
    return RefusedError(
        f"the query is too long to check: more than {MAX_TOKENS:,} tokens",
        hint="shorten it: use IN (...) lists, CTEs or several queries instead of long chains",
        code="CUST373",
    )


def too_many_nodes(max_nodes: int) -> RefusedError:
    expanded = " once every * is expanded" if max_nodes != MAX_NODES else ""
    return RefusedError(
        f"the query is too large to check: more than {max_nodes:,} syntax nodes{expanded}",
        hint="shorten it: fewer output expressions, conditions and stars, or several queries",
        code="CUST374",
    )


@dataclass(frozen=True)
class Deadline:
    """A query's wall-clock deadline: ``seconds`` from when it was made, checking included."""

    seconds: float
    start: float = field(default_factory=time.monotonic)

    def remaining(self) -> float:
        return self.seconds - (time.monotonic() - self.start)

    def check(self) -> None:
        """Refuse (CUST375) once the deadline has passed while the query is being checked."""
        if self.remaining() <= 0:
            raise RefusedError(
                f"checking the query took longer than its time limit of {self.seconds:g} s",
                hint="simplify the query (fewer expressions and conditions)",
                code="CUST375",
            )
