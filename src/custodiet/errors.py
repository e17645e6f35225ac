"""One exception tree for everything custodiet reports to a user.

    CustodietError                 code, message, hint, exit_status
    ├── InputError        (exit 2) bad usage or bad input: names the file, line or column to fix
    ├── RefusedError      (exit 3) refused by policy: message starts "refused:" and names the rule
    ├── SystemFailure     (exit 1) disk, engine or store failure, translated at one boundary
    └── TamperedError     (exit 1) the ledger does not verify; carries index, expected, computed

Every code is stable and documented in docs/errors.md (a test checks that).
Messages never carry a value read from the data.
"""

from __future__ import annotations


class CustodietError(Exception):
    """Base of every error a user can meet. ``code`` is stable; ``hint`` says what to change."""

    exit_status = 1
    default_code = "CUST000"

    def __init__(self, message: str, *, hint: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code or self.default_code

    def render(self) -> str:
        """The text shown to a user: the message, then the hint on its own line."""
        return self.message if not self.hint else f"{self.message}\nhint: {self.hint}"


class InputError(CustodietError):
    """Bad usage or bad input. The message names the file, line, column or option to fix."""

    exit_status = 2
    default_code = "CUST200"


class RefusedError(CustodietError):
    """Refused by policy: one line, ``refused: <rule>``; the refusal is on the ledger."""

    exit_status = 3
    default_code = "CUST300"

    def __init__(
        self,
        rule: str,
        *,
        hint: str | None = None,
        code: str | None = None,
        excerpt: str | None = None,
        span: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(f"refused: {rule}", hint=hint, code=code)
        self.rule = rule
        self.excerpt = excerpt
        # [start, end) in code points of the SQL the request named: the text at fault (an
        # identifier, a function name, a keyword), never a value from the data
        self.span = span

    def render(self) -> str:
        parts = [self.message]
        if self.excerpt:
            parts.append(self.excerpt)
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return "\n".join(parts)


class SystemFailure(CustodietError):
    """The system failed (disk, engine, store). Never carries an engine message verbatim."""

    exit_status = 1
    default_code = "CUST100"


class TamperedError(CustodietError):
    """The ledger does not verify. Carries the evidence: first bad index, expected and computed."""

    exit_status = 1
    default_code = "CUST110"
