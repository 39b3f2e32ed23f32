"""The long window: the current run's drift counts merged with those of the previous runs.

Why counts and not whylogs profiles: the drift tests are exact because each run folds its
window into small integer vectors per feature (:class:`monitoring.drift.EcdfAccumulator`:
window values ``<= r`` and ``< r`` per distinct reference value; category counts). Those
vectors add up: the sum over N runs is the accumulator of the N windows' concatenation, so
the long-window KS and chi-square tests are as exact as the single-window ones. A KS
statistic between two whylogs KLL sketches would only approximate it. Each run stores its
counts (a few hundred KiB, compressed) as the run artifact ``drift_counts.npz`` in the
prediction store (and ``<state_dir>/drift_counts/<run_id>.npz``).

Which runs: walking back from the current window, the previous runs whose windows end at or
before the start of the ones already taken (an overlapping window, e.g. a manual
``--window 7d`` re-run, would count records twice and is skipped), whose counts were stored
against the same reference (same fingerprint), up to ``drift.long_window_runs`` runs in all.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from monitoring import drift
from monitoring.window import VersionScan, WindowScan
from reggaeton.records.base import RecordStore
from reggaeton.timeutil import parse_utc

DRIFT_ARTIFACT = "drift_counts.npz"
FORMAT = 1


@dataclass
class LongWindow:
    """One version's accumulators over the current run and the previous runs merged into it.

    Attributes:
        runs: Runs merged, the current one included.
        run_ids: The previous runs merged, newest first.
        since / until: Start of the oldest merged window, end of the current one.
        rows: Records of the version over the merged windows.
        numeric / categorical: Merged accumulators (the current scan's are left untouched).
        skipped: Previous runs left out, with the reason (overlap, other reference).
    """

    runs: int
    since: datetime
    until: datetime
    rows: int
    numeric: dict[str, drift.EcdfAccumulator] = field(default_factory=dict)
    categorical: dict[str, dict[int, int]] = field(default_factory=dict)
    run_ids: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def fingerprint(scan: VersionScan) -> str:
    """Hash of the reference grids the counts are indexed by (counts only add on equal grids)."""
    h = hashlib.sha1()
    for name in sorted(scan.numeric):
        acc = scan.numeric[name]
        h.update(name.encode() + acc.grid.tobytes() + acc.edges.tobytes())
    h.update(",".join(sorted(scan.categorical)).encode())
    return h.hexdigest()[:16]


def encode_counts(scan: WindowScan) -> bytes:
    """The drift counts of every version with a reference in ``scan`` (``.npz`` bytes)."""
    meta: dict[str, Any] = {
        "format": FORMAT,
        "since": scan.since.isoformat(),
        "until": scan.until.isoformat(),
        "versions": {},
    }
    arrays: dict[str, np.ndarray] = {}
    for i, (tag, vs) in enumerate(scan.versions.items()):
        if vs.reference is None:
            continue
        meta["versions"][tag] = {
            "index": i,
            "rows": vs.rows,
            "fingerprint": fingerprint(vs),
            "n": {name: acc.n for name, acc in vs.numeric.items()},
            "categorical": {
                name: {str(k): v for k, v in counts.items()}
                for name, counts in vs.categorical.items()
            },
        }
        for name, acc in vs.numeric.items():
            for part in ("le", "lt", "hist"):
                arrays[f"v{i}.{name}.{part}"] = getattr(acc, part)
    buf = io.BytesIO()
    np.savez_compressed(buf, meta=np.array(json.dumps(meta)), **arrays)
    return buf.getvalue()


def decode_counts(data: bytes) -> dict[str, Any]:
    """``encode_counts``'s output back as ``{"since", "until", "versions": {tag: {...arrays}}}``."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
        for v in meta["versions"].values():
            v["arrays"] = {
                name: {part: npz[f"v{v['index']}.{name}.{part}"] for part in ("le", "lt", "hist")}
                for name in v["n"]
            }
            v["categorical"] = {
                name: {int(k): c for k, c in counts.items()}
                for name, counts in v["categorical"].items()
            }
    return meta


def save_counts(state_dir: str | Path, run_id: str, data: bytes) -> Path:
    """Write a run's counts to ``<state_dir>/drift_counts/<run_id>.npz``."""
    path = Path(state_dir) / "drift_counts" / f"{run_id}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def previous_counts(
    store: RecordStore, since: datetime, n_runs: int
) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """Stored counts of up to ``n_runs`` previous runs whose windows do not overlap, newest
    first, and the runs skipped with the reason.

    Args:
        store: The prediction log (its run summaries and artifacts).
        since: Start of the current window: earlier windows must end at or before it.
        n_runs: How many previous runs to take at most.
    """
    if n_runs <= 0:
        return [], []
    chosen, skipped, earliest = [], [], since
    for run in store.monitoring_runs(limit=4 * n_runs + 10):
        window = run.get("window") or {}
        if not window.get("since") or not window.get("until") or not window.get("rows"):
            continue  # an empty window takes no slot of the N runs
        if parse_utc(window["until"]) > earliest:
            skipped.append(f"{run.get('run_id')}: window overlaps a later one")
            continue
        chosen.append(run)
        earliest = parse_utc(window["since"])
        if len(chosen) == n_runs:
            break
    if not chosen:
        return [], skipped
    first = min(parse_utc(r["started_at"]) for r in chosen)
    data = {run_id: blob for run_id, _, blob in store.run_artifacts(DRIFT_ARTIFACT, first)}
    out = []
    for run in chosen:
        blob = data.get(run["run_id"])
        if blob is None:
            skipped.append(f"{run['run_id']}: no stored drift counts")
        else:
            out.append((run["run_id"], decode_counts(blob)))
    return out, skipped


def merge(
    scan: VersionScan,
    until: datetime,
    since: datetime,
    previous: list[tuple[str, dict[str, Any]]],
    skipped: list[str] = (),
) -> LongWindow | None:
    """The long window of one version: its current accumulators plus the previous runs'.

    Returns None when no previous run holds counts of this version against the same
    reference (the long window would equal the current one).
    """
    if scan.reference is None:
        return None
    fp = fingerprint(scan)
    numeric = {n: copy.copy(acc) for n, acc in scan.numeric.items()}
    categorical = {n: dict(c) for n, c in scan.categorical.items()}
    out = LongWindow(
        runs=1,
        since=since,
        until=until,
        rows=scan.rows,
        numeric=numeric,
        categorical=categorical,
        skipped=list(skipped),
    )
    for run_id, counts in previous:
        v = counts["versions"].get(scan.tag)
        if v is None:
            continue
        if v["fingerprint"] != fp:
            out.skipped.append(f"{run_id}: counted against another reference")
            continue
        for name, acc in numeric.items():
            if name in v["arrays"]:
                arr = v["arrays"][name]
                acc.le, acc.lt, acc.hist = (
                    acc.le + arr["le"],
                    acc.lt + arr["lt"],
                    acc.hist + arr["hist"],
                )
                acc.n += int(v["n"][name])
        for name, counts_of in categorical.items():
            drift.add_counts(counts_of, v["categorical"].get(name, {}))
        out.runs += 1
        out.rows += int(v["rows"])
        out.run_ids.append(run_id)
        out.since = min(out.since, parse_utc(counts["since"]))
    return out if out.runs > 1 else None


def long_windows(store: RecordStore, scan: WindowScan, n_runs: int) -> dict[str, LongWindow]:
    """Per version of ``scan``, its long window over ``n_runs`` runs (0 or 1: none)."""
    if n_runs <= 1:
        return {}
    previous, skipped = previous_counts(store, scan.since, n_runs - 1)
    out = {}
    for tag, vs in scan.versions.items():
        lw = merge(vs, scan.until, scan.since, previous, skipped)
        if lw is not None:
            out[tag] = lw
    return out


def tests(lw: LongWindow, scan: VersionScan, min_expected: float) -> dict[str, dict[str, Any]]:
    """Raw (unadjusted) KS / chi-square results of the long window, per feature."""
    return drift.feature_tests(
        lw.numeric, lw.categorical, scan.reference.category_counts, min_expected
    )


def describe(lw: LongWindow) -> dict[str, Any]:
    """The long window's extent, for the summary (JSON-ready)."""
    return {
        "runs": lw.runs,
        "since": lw.since.isoformat(),
        "until": lw.until.isoformat(),
        "rows": lw.rows,
        "previous_runs": lw.run_ids,
        "skipped": lw.skipped,
    }


def section(
    lw: LongWindow,
    results: dict[str, dict[str, Any]],
    adjusted: dict[str, float],
    threshold: float,
    possible_factor: float,
) -> dict[str, Any]:
    """The long window's part of the data-drift section: per-feature results with their
    p-values adjusted within the family of both windows (keys ``long:<feature>``)."""
    for name, res in results.items():
        res["p_adjusted"] = adjusted[f"long:{name}"]
        res["category"] = drift.category(res["p_adjusted"], threshold, possible_factor)
    out = describe(lw)
    out["features"] = results
    out["drifted"] = [n for n, r in results.items() if r["category"] == "drift"]
    out["possible_drift"] = [n for n, r in results.items() if r["category"] == "possible_drift"]
    return out
