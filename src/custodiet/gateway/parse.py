"""Parse a reviewer's SQL into exactly one sqlglot tree (DuckDB dialect), or say where it breaks.

Errors point at the line and column and underline the offending text; they never echo more of the
submission than the line being pointed at.
"""

from __future__ import annotations

import itertools
import logging
import re

from sqlglot import Token, TokenType, exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError

from custodiet.errors import InputError, RefusedError

DIALECT = "duckdb"
# One shared instance: looking a dialect up by name builds a new one on every call, and sqlglot
# looks it up many times per query (parse, each qualify step, render). It holds no query state.
DUCKDB = Dialect.get_or_raise(DIALECT)
QUERY_STARTS = frozenset({"SELECT", "WITH", "FROM", "VALUES", "("})

# sqlglot logs a warning when it falls back to an opaque Command (LOAD, CALL, EXPLAIN ANALYZE...);
# those statements are refused anyway, so the warning would only be noise on the user's terminal.
logging.getLogger("sqlglot").setLevel(logging.ERROR)


def parse_statement(sql: str) -> exp.Expr:
    """The one statement in ``sql``; InputError if it does not parse, refused if there are more."""
    parser = DUCKDB.parser()
    tokens: list[Token] = []
    try:
        tokens = DUCKDB.tokenize(sql)
        trees = [tree for tree in parser.parse(tokens, sql) if tree is not None]
    except ParseError as error:
        raise _not_a_query(sql) or _parse_failure(sql, error) from None
    except TypeError:
        # The compiled parser (sqlglotc) meets some dead ends (``SELECT ->``) with a TypeError
        # where pure-Python sqlglot raises ParseError; it stops just after the token at fault.
        at_fault = getattr(parser, "_prev", None)
        token = at_fault if isinstance(at_fault, Token) else tokens[-1]
        raise _not_a_query(sql) or _stuck_after(sql, token) from None
    except TokenError:
        raise InputError(
            "SQL could not be read: an unterminated string, quoted name or comment",
            hint="close every quote and comment",
            code="CUST261",
        ) from None
    except RecursionError:
        raise too_deep() from None
    if not trees:
        raise InputError("SQL is empty", hint="submit one SELECT query", code="CUST262")
    if len(trees) > 1:
        raise RefusedError(
            "only one statement per query is allowed",
            hint="submit a single SELECT query without ';' between statements",
            code="CUST330",
            excerpt=_second_statement(sql),
        )
    return trees[0]


def too_deep() -> InputError:
    """The error for SQL nested deeper than the parser and rewriter can follow."""
    return InputError(
        "SQL is nested too deeply to check",
        hint="remove redundant parentheses or split the expression (for example with a CTE)",
        code="CUST263",
    )


def _not_a_query(sql: str) -> RefusedError | None:
    """A statement sqlglot cannot parse (EXPORT, IMPORT, ...) is refused as a statement, not as
    bad SQL: only a query that starts like a query is worth a syntax error."""
    tokens = DUCKDB.tokenize(sql)
    keyword = tokens[0].text.upper() if tokens else ""
    if not keyword or keyword in QUERY_STARTS:
        return None
    return RefusedError(
        f"statement {keyword} is not allowed: only SELECT queries",
        hint="submit a single SELECT query over the agreement's datasets",
        code="CUST333",
        excerpt=_excerpt_span(sql, tokens[0].start, tokens[0].end + 1),
        span=(tokens[0].start, tokens[0].end + 1),
    )


def _second_statement(sql: str) -> str | None:
    tokens = DUCKDB.tokenize(sql)
    for token, following in itertools.pairwise(tokens):
        if token.token_type is TokenType.SEMICOLON:
            return _excerpt_span(sql, following.start, len(sql))
    return None


def _parse_failure(sql: str, error: ParseError) -> InputError:
    first = error.errors[0] if error.errors else {}
    line, col = int(first.get("line") or 1), int(first.get("col") or 1)
    highlight = str(first.get("highlight") or "")
    width = max(len(highlight), 1)
    excerpt = _excerpt(sql, line, max(col - width, 0), width)
    message = f"SQL syntax error at line {line}, column {col}"
    return InputError(
        f"{message}\n{excerpt}" if excerpt else message,
        hint="fix the SQL near the underlined text (DuckDB dialect, one SELECT query)",
        code="CUST260",
    )


def _stuck_after(sql: str, token: Token) -> InputError:
    excerpt = _excerpt_span(sql, token.start, token.end + 1)
    message = f"SQL syntax error at line {token.line}, column {token.col}"
    return InputError(
        f"{message}\n{excerpt}" if excerpt else message,
        hint="fix the SQL near the underlined text (DuckDB dialect, one SELECT query)",
        code="CUST260",
    )


def locate(sql: str, node: exp.Expr) -> tuple[int, int] | None:
    """Where ``node`` is in ``sql``: [start, end) in code points, from the parser's token
    positions, else approximated by its name; None when it cannot be found. A function is
    its name only, not its arguments."""
    span = _span_from_meta(node) or _span_from_search(sql, node)
    if span is not None and isinstance(node, exp.Func):
        name = re.match(r"[\w.]+", sql[span[0] : span[1]])
        if name is not None:
            return span[0], span[0] + name.end()
    return span


def underline(sql: str, node: exp.Expr) -> str | None:
    """The SQL line holding ``node`` with ``~`` under it; approximated by name when not located."""
    span = locate(sql, node)
    return _excerpt_span(sql, *span) if span is not None else None


def _excerpt_span(sql: str, start: int, end: int) -> str | None:
    line = sql.count("\n", 0, start) + 1
    line_start = sql.rfind("\n", 0, start) + 1
    line_end = sql.find("\n", start)
    width = min(end, line_end if line_end != -1 else len(sql)) - start
    return _excerpt(sql, line, start - line_start, max(width, 1))


def _span_from_meta(node: exp.Expr) -> tuple[int, int] | None:
    starts, ends = [], []
    for part in node.walk():
        meta = part.meta if part._meta else {}
        if "start" in meta and "end" in meta:
            starts.append(int(meta["start"]))
            ends.append(int(meta["end"]) + 1)
    return (min(starts), max(ends)) if starts else None


def _span_from_search(sql: str, node: exp.Expr) -> tuple[int, int] | None:
    name = node.name if not isinstance(node, exp.Func) or node.name else node.sql_name()
    if not name:
        name = node.key
    match = re.search(rf"(?<![\w\"]){re.escape(name)}(?![\w\"])", sql, flags=re.IGNORECASE)
    return (match.start(), match.end()) if match else None


def _excerpt(sql: str, line: int, col0: int, width: int) -> str | None:
    lines = sql.splitlines()
    if not 1 <= line <= len(lines):
        return None
    text = lines[line - 1]
    return f"  {text}\n  {' ' * col0}{'~' * width}"
