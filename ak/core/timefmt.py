"""Kubernetes timestamp formats.

``metav1.Time`` is RFC 3339 with second precision; ``metav1.MicroTime`` (Lease
renewTime, Event eventTime) has exactly six fractional digits. Both are UTC
with a literal ``Z``. Naive datetimes are refused: guessing a zone would make
heartbeats jump by hours on machines not set to UTC.
"""

import re
from datetime import UTC, datetime

_FRACTION = re.compile(r"(\.\d{6})\d+")


def _utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        raise ValueError("naive datetime; pass a timezone-aware one")
    return dt.astimezone(UTC)


def format_time(dt: datetime) -> str:
    return _utc(dt).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_micro_time(dt: datetime) -> str:
    return _utc(dt).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str) -> datetime:
    """Parse Time or MicroTime (and RFC3339Nano, truncated to microseconds)."""
    return datetime.fromisoformat(_FRACTION.sub(r"\1", value)).astimezone(UTC)
