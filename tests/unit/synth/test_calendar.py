from __future__ import annotations

import numpy as np

from custodiet.synth import calendar as cal


def test_full_years_count_the_birthday_itself() -> None:
    born = np.array([cal.day(1909, 3, 3)] * 2)
    on = np.array([cal.day(2024, 3, 3), cal.day(2024, 3, 2)])
    assert cal.full_years(born, on).tolist() == [115, 114]


def test_business_days_are_weekdays_only() -> None:
    days = cal.business_days(cal.day(2024, 1, 1), cal.day(2024, 1, 14))
    weekdays = days.astype("datetime64[D]").astype(object)
    assert len(days) == 10
    assert all(d.weekday() < 5 for d in weekdays)


def test_benefit_days_are_the_third_of_each_window_month() -> None:
    year, month, dom = cal.year_month_day(cal.BENEFIT_DAYS)
    assert set(year.tolist()) == {cal.WINDOW_YEAR}
    assert month.tolist() == list(range(1, 13))
    assert set(dom.tolist()) == {3}
