"""What a checker rule raises: the refusal, with the node at fault so it can be underlined."""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from custodiet.gateway.policy import Policy

Rule = Callable[[exp.Expr, Policy], None]


class Refusal(Exception):
    """Raised by a rule; carries the node at fault so the refusal can underline it."""

    def __init__(
        self, rule: str, *, code: str, hint: str | None = None, node: exp.Expr | None = None
    ) -> None:
        super().__init__(rule)
        self.rule, self.code, self.hint, self.node = rule, code, hint, node
