"""Check an agreement against the catalog: datasets, columns, treatments and row filters.

A treatment may not be weaker than its column's class allows; a row filter is a boolean SQL
expression over columns the same grant releases in the clear (``allow``, and not an identifier,
key or quasi-identifier), checked against the queries' allow-list of node types and functions
(never a deny-list). Every error names ``FILE:LINE: field.path``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from custodiet.agreements.custom_screens import check_custom_screens
from custodiet.agreements.load import Marks
from custodiet.agreements.model import (
    DP_DATASET_FIELDS,
    DP_LIMIT_FIELDS,
    Agreement,
    ColumnRule,
    DatasetGrant,
    Mode,
    Treatment,
)
from custodiet.agreements.rowfilter import row_filter_problem
from custodiet.catalog.classes import ColumnClass
from custodiet.catalog.model import ColumnInfo, Dataset
from custodiet.errors import InputError

# record keys (payment_id, refund_id) may be tokenized per agreement like identifiers, so that two
# reviewers' outputs cannot be joined row for row on them
PSEUDONYMIZABLE = frozenset({ColumnClass.IDENTIFIER, ColumnClass.KEY})
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
    _check_mode_fields(agreement, where)
    for name, grant in agreement.datasets.items():
        dataset = catalog.get(name)
        if dataset is None:
            raise InputError(
                f"{where(('datasets', name))}: unknown dataset {name!r}",
                hint="register it with `custodiet dataset add`, or remove it from the agreement",
                code="CUST244",
            )
        _check_columns(grant, dataset, where)
        if agreement.mode is Mode.DP:
            _check_dp_grant(grant, dataset, where)
        if grant.rows is not None:
            _check_row_filter(grant, dataset, where(("datasets", name, "rows")))
    check_custom_screens(agreement, where)


def _check_mode_fields(agreement: Agreement, where: _Where) -> None:
    """A field the agreement's mode does not enforce is an error, never silently ignored."""
    limits = agreement.limits.model_fields_set
    if agreement.mode is not Mode.DP:
        for field in DP_LIMIT_FIELDS:
            if field in limits:
                raise _mode_error(where(("limits", field)), field, "mode: dp")
        for name, grant in agreement.datasets.items():
            for field in DP_DATASET_FIELDS:
                if field in grant.model_fields_set:
                    raise _mode_error(where(("datasets", name, field)), field, "mode: dp")
        return
    if "min_group_size" in limits:
        raise _mode_error(where(("limits", "min_group_size")), "min_group_size", "mode: aggregate")
    given = [f for f in ("epsilon", "rho") if f in limits]
    if len(given) != 1:
        raise InputError(
            f"{where(('limits',))}: mode dp needs exactly one budget, limits.epsilon or limits.rho",
            hint="e.g. limits: {epsilon: 1.0, queries: 10}",
            code="CUST270",
        )
    selecting = [n for n, g in agreement.datasets.items() if g.select_keys]
    if selecting and "delta" not in limits:
        raise InputError(
            f"{where(('limits',))}: limits.delta is required: "
            f"datasets.{selecting[0]}.select_keys releases groups by a noisy threshold, "
            "which is private only with a delta > 0",
            hint="add limits.delta (e.g. 1.0e-6); half of it goes to key selection",
            code="CUST272",
        )
    if "delta" in limits and "epsilon" not in limits and not selecting:
        raise _mode_error(
            where(("limits", "delta")), "delta", "limits.epsilon or a grant's select_keys"
        )


def _mode_error(loc: str, field: str, needs: str) -> InputError:
    return InputError(
        f"{loc}: {field} applies only with {needs}; this agreement would ignore it",
        hint="remove the field, or change the mode",
        code="CUST270",
    )


NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "DECIMAL", "DOUBLE",
                 "FLOAT", "REAL", "NUMERIC", "INT")  # fmt: skip


def _check_dp_grant(grant: DatasetGrant, dataset: Dataset, where: _Where) -> None:
    """dp mode: bounds on allowed numeric columns (low <= high), keys on allowed columns."""
    for column, (low, high) in (grant.bounds or {}).items():
        loc = where(("datasets", dataset.name, "bounds", column))
        info = dataset.columns.get(column)
        rule = grant.columns.get(column)
        if info is None or rule is None or rule.treatment is not Treatment.ALLOW:
            raise InputError(
                f"{loc}: bounds name {column!r}, which this grant does not allow",
                hint="declare bounds only for allowed numeric columns",
                code="CUST271",
            )
        if not info.sql_type.upper().startswith(NUMERIC_TYPES) or low > high:
            raise InputError(
                f"{loc}: bounds need a numeric column and low <= high",
                hint="e.g. bounds: {amount: [0, 5000]}",
                code="CUST271",
            )
    for field, columns in (("keys", list(grant.keys or {})), ("select_keys", grant.select_keys)):
        for index, column in enumerate(columns or ()):
            rule = grant.columns.get(column)
            info = dataset.columns.get(column)
            loc = where(("datasets", dataset.name, field, column if field == "keys" else index))
            if (
                rule is None
                or info is None
                or rule.treatment not in (Treatment.ALLOW, Treatment.GENERALIZE)
                or info.column_class in NOT_READABLE_IN_FILTERS - {ColumnClass.QUASI_IDENTIFIER}
            ):
                raise InputError(
                    f"{loc}: {field} name {column!r}, "
                    "which is not an allowed, non-identifying column of this grant",
                    hint="declare the public values of columns the reviewer may group by",
                    code="CUST271",
                )
            if field == "select_keys" and column in (grant.keys or {}):
                raise InputError(
                    f"{loc}: {column!r} has a declared key set (keys); "
                    "it cannot also be selected by a noisy threshold",
                    hint="keep it in keys or in select_keys, not both",
                    code="CUST271",
                )


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
    if rule.treatment is Treatment.PSEUDONYMIZE and cls not in PSEUDONYMIZABLE:
        return InputError(
            f"{loc}: pseudonymize applies to identifier and record-key columns only "
            f"(this one is {cls.value})",
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
