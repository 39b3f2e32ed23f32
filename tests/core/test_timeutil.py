"""The shared time helpers and file hashing (reggaeton.timeutil, reggaeton.hashing)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from reggaeton.hashing import sha256_file
from reggaeton.timeutil import as_utc, now_iso, parse_utc, utcnow


def test_utcnow_is_aware_utc() -> None:
    now = utcnow()
    assert now.tzinfo is UTC
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)


def test_naive_means_utc_and_offsets_are_converted() -> None:
    assert as_utc(datetime(2026, 3, 1, 12)) == datetime(2026, 3, 1, 12, tzinfo=UTC)
    plus2 = datetime(2026, 3, 1, 14, tzinfo=timezone(timedelta(hours=2)))
    assert as_utc(plus2).isoformat() == "2026-03-01T12:00:00+00:00"


@pytest.mark.parametrize(
    "text",
    [
        "2026-03-01T12:00:00Z",
        "2026-03-01T12:00:00+00:00",
        "2026-03-01T12:00",
        "2026-03-01T13:00:00+01:00",
    ],
)
def test_parse_utc_reads_every_iso_form_as_the_same_instant(text: str) -> None:
    parsed = parse_utc(text)
    assert parsed == datetime(2026, 3, 1, 12, tzinfo=UTC) and parsed.tzinfo is UTC


def test_parse_utc_refuses_what_is_not_iso() -> None:
    with pytest.raises(ValueError):
        parse_utc("yesterday")


def test_now_iso_to_the_second() -> None:
    stamp = now_iso("seconds")
    assert stamp.endswith("+00:00") and "." not in stamp
    assert abs(parse_utc(stamp) - utcnow()) < timedelta(seconds=5)


def test_sha256_file_reads_in_chunks_and_matches_hashlib(tmp_path: Path) -> None:
    data = bytes(range(256)) * 10_000  # 2.5 MB: more than one chunk
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert sha256_file(str(path)) == sha256_file(path)
