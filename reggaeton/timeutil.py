"""Time helpers, written once: every stored or logged time is an aware UTC ``datetime``.

The prediction store, the monitor, the trainer and the service all stamp and compare times;
one copy of "now", of "naive means UTC" and of ISO-8601 parsing keeps them from disagreeing
(a naive time compared with an aware one raises, a local time shifts a window).
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC: a naive time is taken to be UTC already, an aware one is converted."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_utc(text: str) -> datetime:
    """An ISO-8601 date or datetime (``Z`` or an offset; naive means UTC) as aware UTC.

    Raises:
        ValueError: when ``text`` is not ISO-8601.
    """
    return as_utc(datetime.fromisoformat(text))


def now_iso(timespec: str = "auto") -> str:
    """The current UTC time as ISO-8601 text (``timespec="seconds"`` for metadata stamps)."""
    return utcnow().isoformat(timespec=timespec)
