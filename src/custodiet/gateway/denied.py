"""The denied-column rule: a column the agreement denies is refused by name, wherever it is read.

It runs on the parsed tree, before qualification (which would only say "not in agreement"), so
it resolves each column itself through sqlglot's scopes, as if every dataset still held its
denied columns: a reference is refused when it reads a denied column, or when it is ambiguous or
unresolvable and some dataset in the query denies that name. A derived table's or CTE's output
that merely shares a denied column's name is not the denied column.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.scope import Scope, traverse_scope

from custodiet.gateway.policy import Policy
from custodiet.gateway.refusal import Refusal

Source = exp.Table | Scope


@dataclass(frozen=True)
class Reach:
    """What a name reaches through a source: whether it resolves, and to which denied column."""

    found: bool
    denied: str | None = None  # the dataset whose denied column the name reaches


NOT_FOUND = Reach(found=False)
GRANTED = Reach(found=True)


def denied_columns(tree: exp.Expr, policy: Policy) -> None:
    """A column the agreement denies is refused by name, wherever and however it is written."""
    denied = {name for view in policy.tables.values() for name in view.denied}
    if not any(column.name.lower() in denied for column in tree.find_all(exp.Column)):
        return  # the usual case: no name to resolve, so no scopes to build
    aliases = _dataset_aliases(tree, policy)
    for column, scope in _columns_with_scopes(tree):
        if isinstance(column.this, exp.Star) or (scope is None and _is_alias_reference(column)):
            continue
        name = column.name.lower()
        reach = _reach(scope, column.table.lower(), name, policy) if scope else NOT_FOUND
        if not reach.found:
            reach = _unresolved_reach(column.table.lower(), name, aliases, policy)
        if reach.denied is not None:
            raise Refusal(
                f"column '{reach.denied}.{name}' is denied by agreement "
                f"'{policy.agreement_id}' (v{policy.version})",
                code="CUST341",
                hint=f"this agreement allows {policy.describe_allowed(reach.denied)}",
                node=column,
            )


def _columns_with_scopes(tree: exp.Expr) -> Iterator[tuple[exp.Column, Scope | None]]:
    """Every column of the tree with the innermost scope it belongs to (None: not in a scope)."""
    owner: dict[int, Scope] = {}
    try:
        for scope in traverse_scope(tree):  # inner scopes come first
            for column in scope.columns:
                owner.setdefault(id(column), scope)
    except SqlglotError:
        owner.clear()  # unscoped syntax (refused later): every column is judged by name alone
    for column in tree.find_all(exp.Column):
        yield column, owner.get(id(column))


def _is_alias_reference(column: exp.Column) -> bool:
    """``ORDER BY total`` naming an output of its own SELECT (sqlglot leaves those unscoped)."""
    clause = column.find_ancestor(exp.Order, exp.Having, exp.Qualify, exp.Distinct, exp.Select)
    query = clause.parent if clause is not None and not isinstance(clause, exp.Select) else None
    return (
        not column.table
        and isinstance(query, exp.Select)
        and column.name.lower() in {name.lower() for name in query.named_selects}
    )


def _reach(scope: Scope, qualifier: str, name: str, policy: Policy) -> Reach:
    """Resolve ``qualifier.name`` (or bare ``name``) from ``scope`` outwards."""
    current: Scope | None = scope
    while current is not None:
        sources = _referenced_sources(current)
        if qualifier:
            if qualifier in sources:
                return _through(sources[qualifier], name, policy)
        else:
            reach = _combined(_through(source, name, policy) for source in sources.values())
            if reach.found:
                return reach
        current = current.parent
    return NOT_FOUND


def _referenced_sources(scope: Scope) -> dict[str, Source]:
    """The sources a scope's FROM and JOINs name (SEMI/ANTI joins included), by lower-case alias.

    A CTE is matched without regard to case, as DuckDB does: ``WITH W AS ... FROM w`` reads the
    CTE (sqlglot matches it case-sensitively and takes ``w`` for a table)."""
    scopes = {
        key.lower(): source for key, source in scope.sources.items() if isinstance(source, Scope)
    }
    found: dict[str, Source] = {}
    for name, _ in scope.references:
        source = scope.sources.get(name)
        if not isinstance(source, Scope):
            source = scopes.get(name.lower(), source)
        if isinstance(source, exp.Table | Scope):
            found[name.lower()] = source
    return found


def _through(source: Source, name: str, policy: Policy) -> Reach:
    if isinstance(source, Scope):
        return _output(source, name, policy)
    view = policy.tables.get(source.name.lower())
    if view is None:
        return NOT_FOUND
    if name in view.denied:
        return Reach(found=True, denied=view.name)
    return GRANTED if name in view.columns else NOT_FOUND


def _output(scope: Scope, name: str, policy: Policy) -> Reach:
    """What ``name`` reaches as an output of a derived table or CTE (named by its first branch)."""
    while scope.set_operation_scopes:
        scope = scope.set_operation_scopes[0]
    select = scope.expression
    if not isinstance(select, exp.Select):
        return NOT_FOUND
    reaches = []
    for output in select.expressions:
        if isinstance(output, exp.Star):
            reaches.append(_reach(scope, "", name, policy))
        elif isinstance(output, exp.Column) and isinstance(output.this, exp.Star):
            reaches.append(_reach(scope, output.table.lower(), name, policy))
        elif output.alias_or_name.lower() == name:
            reaches.append(GRANTED)  # the output's own columns are checked in its scope
    return _combined(reaches)


def _combined(reaches: Iterable[Reach]) -> Reach:
    """Several sources offering one name: a denied one wins (the reference is ambiguous)."""
    found = [reach for reach in reaches if reach.found]
    denied = [reach for reach in found if reach.denied is not None]
    return denied[0] if denied else (GRANTED if found else NOT_FOUND)


def _unresolved_reach(qualifier: str, name: str, aliases: dict[str, str], policy: Policy) -> Reach:
    """An unresolvable name is taken for the denied column of any dataset it could mean."""
    candidates = [aliases[qualifier]] if qualifier in aliases else sorted(set(aliases.values()))
    for table in candidates:
        if name in policy.tables[table].denied:
            return Reach(found=True, denied=table)
    return NOT_FOUND


def _dataset_aliases(tree: exp.Expr, policy: Policy) -> dict[str, str]:
    aliases: dict[str, str] = {}
    for table in tree.find_all(exp.Table):
        name = table.name.lower()
        if name in policy.tables:
            aliases[name] = name
            aliases[table.alias_or_name.lower()] = name
    return aliases
