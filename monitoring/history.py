"""Merge the profiles stored by past runs (e.g. a week) without re-reading the raw log.

Each run keeps its whylogs profile twice: ``<state_dir>/profiles/<run_id>.bin`` (a laptop) and
in the prediction store as the run artifact ``profile.bin`` (Kubernetes, where the job's files
go with its pod); its HTML report is stored as ``report.html`` the same way.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from reggaeton import profiles
from reggaeton.records.base import RecordStore
from reggaeton.timeutil import as_utc

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
PROFILE_ARTIFACT = "profile.bin"
REPORT_ARTIFACT = "report.html"


def new_run_id(started: datetime) -> str:
    """A run id: the UTC start time, then a random suffix (``20260301T120000Z-ab12cd``).

    The start time leads so that file names sort by time and :func:`run_started` reads it back.
    """
    return as_utc(started).strftime(STAMP_FORMAT) + "-" + uuid.uuid4().hex[:6]


def run_started(run_id: str) -> datetime:
    """The UTC start time a run id begins with.

    Raises:
        ValueError: when ``run_id`` does not begin with one.
    """
    return as_utc(datetime.strptime(run_id.split("-", 1)[0], STAMP_FORMAT))


def stored_profiles(
    state_dir: str | Path, since: datetime | None = None, until: datetime | None = None
) -> list[Path]:
    """Profile files of runs started in ``[since, until)``, oldest first.

    Files are ``<state_dir>/profiles/<run_id>.bin`` with run ids starting with the UTC start
    time (``20260301T120000Z-ab12cd``).
    """
    out = []
    for path in sorted((Path(state_dir) / "profiles").glob("*.bin")):
        try:
            started = run_started(path.stem)
        except ValueError:
            continue
        if (since is None or started >= since) and (until is None or started < until):
            out.append(path)
    return out


def merged_profile(
    state_dir: str | Path, since: datetime | None = None, until: datetime | None = None
) -> Any:
    """One whylogs profile of every run in ``[since, until)``.

    Raises:
        ValueError: when no stored profile falls in the range.
    """
    paths = stored_profiles(state_dir, since, until)
    if not paths:
        raise ValueError(f"no stored profile in {state_dir}/profiles for that range")
    return profiles.merge(profiles.deserialize(p.read_bytes()) for p in paths)


def merged_stored_profile(
    store: RecordStore, since: datetime | None = None, until: datetime | None = None
) -> Any:
    """One whylogs profile of every run started in ``[since, until)``, read from the store.

    Raises:
        ValueError: when the store holds no profile in the range.
    """
    views = [
        profiles.deserialize(data)
        for _, _, data in store.run_artifacts(PROFILE_ARTIFACT, since, until)
    ]
    if not views:
        raise ValueError("no stored profile in the prediction store for that range")
    return profiles.merge(views)
