"""Merge the profiles stored by past runs (e.g. a week) without re-reading the raw log."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reggaeton import profiles

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


def stored_profiles(state_dir: str | Path, since: datetime | None = None,
                    until: datetime | None = None) -> list[Path]:
    """Profile files of runs started in ``[since, until)``, oldest first.

    Files are ``<state_dir>/profiles/<run_id>.bin`` with run ids starting with the UTC start
    time (``20260301T120000Z-ab12cd``).
    """
    out = []
    for path in sorted((Path(state_dir) / "profiles").glob("*.bin")):
        try:
            started = datetime.strptime(path.stem.split("-", 1)[0], STAMP_FORMAT)
        except ValueError:
            continue
        started = started.replace(tzinfo=UTC)
        if (since is None or started >= since) and (until is None or started < until):
            out.append(path)
    return out


def merged_profile(state_dir: str | Path, since: datetime | None = None,
                   until: datetime | None = None) -> Any:
    """One whylogs profile of every run in ``[since, until)``.

    Raises:
        ValueError: when no stored profile falls in the range.
    """
    paths = stored_profiles(state_dir, since, until)
    if not paths:
        raise ValueError(f"no stored profile in {state_dir}/profiles for that range")
    return profiles.merge(profiles.deserialize(p.read_bytes()) for p in paths)
