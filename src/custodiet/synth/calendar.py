"""The calendar of the synthetic data: a one-year review window, days as integers.

Dates are carried as days since 1970-01-01 (int64) until they are written as Parquet DATE.
Social Security is paid on the 3rd of every month of the window, one month behind: the
payment on the 3rd of month M is the benefit for month M-1.
"""

from __future__ import annotations

from datetime import date

import numpy as np

WINDOW_YEAR = 2024
WINDOW_MONTHS = 12
TAX_YEAR = WINDOW_YEAR - 1
NO_DATE = np.iinfo(np.int64).max  # "never": no death, no exclusion end


def day(year: int, month: int = 1, dom: int = 1) -> int:
    return (date(year, month, dom) - date(1970, 1, 1)).days


WINDOW_START = day(WINDOW_YEAR)
WINDOW_END = day(WINDOW_YEAR, 12, 31)
TAX_YEAR_START = day(TAX_YEAR)
BENEFIT_DAYS = np.array([day(WINDOW_YEAR, m, 3) for m in range(1, 13)], dtype=np.int64)
FILING_SEASON = (day(WINDOW_YEAR, 2, 1), day(WINDOW_YEAR, 5, 31))


def month_number(days: np.ndarray) -> np.ndarray:
    """Months since 1970-01 of each day."""
    return days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


def window_month(days: np.ndarray) -> np.ndarray:
    """Month of each day counted from the window's first month (January = 0)."""
    return month_number(days) - (WINDOW_YEAR - 1970) * 12


def year_month_day(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    as_date = days.astype("datetime64[D]")
    months = as_date.astype("datetime64[M]")
    year = months.astype("datetime64[Y]").astype(np.int64) + 1970
    month = months.astype(np.int64) % 12 + 1
    dom = (as_date - months).astype(np.int64) + 1
    return year, month, dom


def full_years(born: np.ndarray, on: np.ndarray) -> np.ndarray:
    """Age in completed years on ``on`` (the birthday itself counts)."""
    by, bm, bd = year_month_day(born)
    oy, om, od = year_month_day(on)
    before_birthday = (om < bm) | ((om == bm) & (od < bd))
    return np.asarray(oy - by - before_birthday.astype(np.int64))


def business_days(first: int, last: int) -> np.ndarray:
    """Monday-Friday days from ``first`` to ``last`` inclusive."""
    days = np.arange(first, last + 1, dtype=np.int64)
    return days[(days + 3) % 7 < 5]  # 1970-01-01 was a Thursday


def uniform_days(rng: np.random.Generator, first: int, last: int, size: int) -> np.ndarray:
    return rng.integers(first, last + 1, size=size, dtype=np.int64)
