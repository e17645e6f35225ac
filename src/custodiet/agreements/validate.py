"""Check an agreement against the catalog: datasets, columns, treatments and row filters.

A treatment may not be weaker than its column's class allows; a row filter is a boolean SQL
expression over columns the same grant releases in the clear (``allow``, and not an identifier,
key or quasi-identifier), checked against the queries' allow-list of node types and functions
(never a deny-list). Every error names ``FILE:LINE: field.path``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from custodiet.agreements.load import Marks
from custodiet.agreements.model import Agreement, ColumnRule, DatasetGrant, Treatment
from custodiet.agreements.rowfilter import row_filter_problem
from custodiet.catalog.classes import ColumnClass
from custodiet.catalog.model import ColumnInfo, Dataset
from custodiet.errors import InputError

IDENTIFIER_TREATMENTS = frozenset({Treatment.PSEUDONYMIZE, Treatment.MASK, Treatment.DENY})
QUASI_TREATMENTS = frozenset({Treatment.GENERALIZE, Treatment.MASK, Treatment.DENY})
DATE_TYPES = ("DATE", "TIMESTAMP")
LEVEL_TYPES: Mapping[str, tuple[tuple[str, ...], str]] = {
    "year": (DATE_TYPES, "a date"),
    "month": (DATE_TYPES, "a date"),
    "decade": (DATE_TYPES, "a date"),
    "age_band": (("DATE",), "a date of birth"),
    "zip3": (("VARCHAR",), "a ZIP code (text)"),
    "state": (("VARCHAR",), "an address (text)"),
}

_Where = Callable[[tuple[str | int, ...]], str]


def validate_agreement(
    agreement: Agreement, catalog: Mapping[str, Dataset], marks: Marks | None = None
) -> None:
    """Raise ``InputError`` naming the first problem; ``catalog`` maps names to datasets."""
    where = marks.where if marks else _plain_where
    for name, grant in agreement.datasets.items():
        dataset = catalog.get(name)
        if dataset is None:
            raise InputError(
                f"{where(('datasets', name))}: unknown dataset {name!r}",
                hint="register it with `custodiet dataset add`, or remove it from the agreement",
                code="CUST244",
            )
        _check_columns(grant, dataset, where)
        if grant.rows is not None:
            _check_row_filter(grant, dataset, where(("datasets", name, "rows")))


def _plain_where(loc: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _check_columns(grant: DatasetGrant, dataset: Dataset, where: _Where) -> None:
    for column, rule in grant.columns.items():
        loc = where(("datasets", dataset.name, "columns", column))
        info = dataset.columns.get(column)
        if info is None:
            raise InputError(
                f"{loc}: unknown column {column!r} in dataset {dataset.name!r}",
                hint=f"the dataset's columns are: {', '.join(dataset.columns)}",
                code="CUST245",
            )
        error = _treatment_error(rule, info, grant.allow_quasi_identifiers, loc)
        if error:
            raise error


def _treatment_error(
    rule: ColumnRule, info: ColumnInfo, quasi_allowed: bool, loc: str
) -> InputError | None:
    """The error to raise when ``rule`` does not fit the column at ``loc``, else None."""
    cls = info.column_class
    if cls is ColumnClass.IDENTIFIER and rule.treatment not in IDENTIFIER_TREATMENTS:
        return InputError(
            f"{loc}: {rule} is weaker than an identifier column allows",
            hint="use pseudonymize, mask or deny; identified access is only by re-identification",
            code="CUST246",
        )
    quasi_ok = QUASI_TREATMENTS | ({Treatment.ALLOW} if quasi_allowed else set())
    if cls is ColumnClass.QUASI_IDENTIFIER and rule.treatment not in quasi_ok:
        return InputError(
            f"{loc}: {rule} is weaker than a quasi-identifier column allows",
            hint="use generalize:<level> or deny, or set allow_quasi_identifiers: true "
            "for this dataset to allow it as is",
            code="CUST246",
        )
    if rule.treatment is Treatment.PSEUDONYMIZE and cls is not ColumnClass.IDENTIFIER:
        return InputError(
            f"{loc}: pseudonymize applies to identifier columns only (this one is {cls.value})",
            hint="use allow, generalize:<level>, mask or deny",
            code="CUST246",
        )
    if rule.treatment is Treatment.GENERALIZE and rule.level is not None:
        types, wanted = LEVEL_TYPES[rule.level]
        if not info.sql_type.upper().startswith(types):
            return InputError(
                f"{loc}: generalize:{rule.level} needs {wanted}; this column is {info.sql_type}",
                hint="choose a generalization that fits the column type",
                code="CUST247",
            )
    return None


NOT_READABLE_IN_FILTERS = frozenset(
    {ColumnClass.IDENTIFIER, ColumnClass.KEY, ColumnClass.QUASI_IDENTIFIER}
)


def filter_readable(grant: DatasetGrant, dataset: Dataset) -> frozenset[str]:
    """The columns a row filter may read: allowed in the clear, not identifying or quasi-."""
    return frozenset(
        name
        for name, rule in grant.columns.items()
        if rule.treatment is Treatment.ALLOW
        and name in dataset.columns
        and dataset.columns[name].column_class not in NOT_READABLE_IN_FILTERS
    )


def _check_row_filter(grant: DatasetGrant, dataset: Dataset, loc: str) -> None:
    assert grant.rows is not None
    readable = filter_readable(grant, dataset)
    problem = row_filter_problem(grant.rows, set(dataset.columns), readable)
    if problem:
        raise InputError(
            f"{loc}: {problem}",
            hint="write a boolean condition over columns this grant allows, e.g. agency = 'SSA' "
            f"(readable here: {', '.join(sorted(readable)) or 'none'})",
            code="CUST248",
        )
