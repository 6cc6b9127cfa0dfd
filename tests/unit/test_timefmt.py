from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ak.core.timefmt import format_micro_time, format_time, parse_time

DT = datetime(2026, 11, 22, 2, 11, 44, 123456, tzinfo=UTC)


def test_format_time() -> None:
    assert format_time(DT) == "2026-11-22T02:11:44Z"


def test_format_micro_time() -> None:
    assert format_micro_time(DT) == "2026-11-22T02:11:44.123456Z"


def test_other_zones_converted_to_utc() -> None:
    cet = DT.astimezone(timezone(timedelta(hours=1)))
    assert format_time(cet) == "2026-11-22T02:11:44Z"


def test_naive_datetime_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        format_time(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-22T02:11:44Z", DT.replace(microsecond=0)),
        ("2026-11-22T02:11:44.123456Z", DT),
        ("2026-11-22T02:11:44.123456789Z", DT),
        ("2026-11-22T03:11:44.123456+01:00", DT),
    ],
)
def test_parse_time(text: str, expected: datetime) -> None:
    assert parse_time(text) == expected


@given(st.datetimes(timezones=st.just(UTC), min_value=datetime(1970, 1, 1)))
def test_micro_time_round_trip(dt: datetime) -> None:
    assert parse_time(format_micro_time(dt)) == dt
    assert parse_time(format_time(dt)) == dt.replace(microsecond=0)
