"""Turn measured cells into the markdown table, the ratios and the target verdicts (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SERVICE = "service"
BASELINE = "baseline"
MLSERVER_BATCHING = "mlserver-batching"
MLSERVER_PLAIN = "mlserver-no-batching"
SERVICE_SYNC = "service+sync"
"""Our service with ``PREDICTION_LOG_DURABILITY=sync`` (answers wait for the group commit)."""
SIDES = (SERVICE, SERVICE_SYNC, MLSERVER_BATCHING, MLSERVER_PLAIN, BASELINE)
"""Every side runs by default. (The former optional ``service+uvloop`` side is gone: uvloop and
httptools are in the lock, so it measured the same server as ``service``.)"""


@dataclass(frozen=True)
class Cell:
    """One column of the matrix: ``rows`` songs per request at ``concurrency``."""

    key: str
    rows: int
    concurrency: int

    @property
    def label(self) -> str:
        """Human label, e.g. ``1 row c=32``."""
        what = "1 row" if self.rows == 1 else f"{self.rows:,} rows"
        return f"{what} c={self.concurrency}"


def default_cells(batch_concurrency: int = 4) -> list[Cell]:
    """Single-row at concurrency 1, 8, 32; batches of 100 and 1,000 rows."""
    return [
        Cell("single_c1", 1, 1),
        Cell("single_c8", 1, 8),
        Cell("single_c32", 1, 32),
        Cell("batch100", 100, batch_concurrency),
        Cell("batch1000", 1000, batch_concurrency),
    ]


Results = dict[str, dict[str, dict[str, Any]]]
"""side -> cell key -> CellResult.to_dict()."""


def _ratio(results: Results, side: str, other: str, cell: str) -> float | None:
    mine = results.get(side, {}).get(cell)
    theirs = results.get(other, {}).get(cell)
    if not mine or not theirs or not theirs.get("rows_per_s"):
        return None
    return mine["rows_per_s"] / theirs["rows_per_s"]


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def table(results: Results, cells: list[Cell]) -> str:
    """Markdown table: one line per side and cell, with ratios vs baseline and vs MLServer."""
    head = (
        "| side | cell | requests/s | rows/s | p50 ms | p99 ms | errors | x baseline "
        "| x MLServer batching | x MLServer no batching |"
    )
    lines = [head, "|" + "---|" * 10]
    for side in SIDES:
        for cell in cells:
            r = results.get(side, {}).get(cell.key)
            if r is None:
                continue
            lines.append(
                f"| {side} | {cell.label} | {r['requests_per_s']:,.0f} | {r['rows_per_s']:,.0f} "
                f"| {_fmt(r['p50_ms'], '.2f')} | {_fmt(r['p99_ms'], '.2f')} | {r['errors']} "
                f"| {_fmt(_ratio(results, side, BASELINE, cell.key), '.2f')} "
                f"| {_fmt(_ratio(results, side, MLSERVER_BATCHING, cell.key), '.2f')} "
                f"| {_fmt(_ratio(results, side, MLSERVER_PLAIN, cell.key), '.2f')} |"
            )
    return "\n".join(lines)


def durability_cost(results: Results, cells: list[Cell]) -> str:
    """Markdown list: the durable mode's rows/s and p99 against the default, cell by cell."""
    lines = []
    for cell in cells:
        sync = results.get(SERVICE_SYNC, {}).get(cell.key)
        default = results.get(SERVICE, {}).get(cell.key)
        if sync and default and default.get("rows_per_s"):
            lines.append(
                f"- durability=sync, {cell.label}: {sync['rows_per_s']:,.0f} vs "
                f"{default['rows_per_s']:,.0f} rows/s "
                f"({sync['rows_per_s'] / default['rows_per_s']:.2f}x the default), "
                f"p99 {_fmt(sync['p99_ms'], '.1f')} vs "
                f"{_fmt(default['p99_ms'], '.1f')} ms"
            )
    return "\n".join(lines)


BATCH_VS_MLSERVER_BATCHING = 1.5
BATCH_VS_MLSERVER_PLAIN = 1.2
P99_C32_MS = 50.0
"""Issue 13's batch targets: 1,000-row rows/s against MLServer with and without adaptive
batching, and the single-row c=32 p99 in the same run."""


def targets(
    results: Results,
    prediction_log: dict[str, Any] | None = None,
    log_after_batch: dict[str, Any] | None = None,
    event_loop: dict[str, list[bool]] | None = None,
) -> list[dict[str, Any]]:
    """The issues' targets for our service, each with the measured value and met/not met.

    Args:
        results: Every side's cells.
        prediction_log: ``{"logged_rows", "answered_rows"}`` of our service after it stopped:
            adds the check that every answered prediction reached the log.
        log_after_batch: The same, counted right after the 1,000-row phase with the server
            still up (issue 13: every answered row in the log, logging on).
        event_loop: Per library, whether each worker loaded uvloop / httptools.
    """
    ours = results.get(SERVICE, {})

    def get(cell: str, key: str, side: str = SERVICE) -> float | None:
        return results.get(side, {}).get(cell, {}).get(key)

    vs_base = _ratio(results, SERVICE, BASELINE, "single_c32")
    c32 = get("single_c32", "requests_per_s")
    mls = get("single_c32", "requests_per_s", MLSERVER_BATCHING)
    checks = [
        (
            "single-row c=32 >= 5x baseline (aim 10x)",
            vs_base,
            vs_base is not None and vs_base >= 5,
            _fmt(vs_base, ".1f") + "x",
        ),
        (
            "single-row c=32 > MLServer with batching",
            c32,
            c32 is not None and mls is not None and c32 > mls,
            f"{_fmt(c32, ',.0f')} vs {_fmt(mls, ',.0f')} req/s",
        ),
        (
            "p50 at c=1 < 3 ms",
            get("single_c1", "p50_ms"),
            (get("single_c1", "p50_ms") or 1e9) < 3,
            _fmt(get("single_c1", "p50_ms"), ".2f") + " ms",
        ),
        (
            "p99 at c=32 < 100 ms",
            get("single_c32", "p99_ms"),
            (get("single_c32", "p99_ms") or 1e9) < 100,
            _fmt(get("single_c32", "p99_ms"), ".2f") + " ms",
        ),
        (
            "1,000-row batches >= 150,000 rows/s",
            get("batch1000", "rows_per_s"),
            (get("batch1000", "rows_per_s") or 0) >= 150_000,
            _fmt(get("batch1000", "rows_per_s"), ",.0f") + " rows/s",
        ),
        (
            "no errors on our service",
            sum(c.get("errors", 0) for c in ours.values()),
            bool(ours) and all(c.get("errors", 0) == 0 for c in ours.values()),
            f"{sum(c.get('errors', 0) for c in ours.values())} errors",
        ),
    ]
    b_mls = _ratio(results, SERVICE, MLSERVER_BATCHING, "batch1000")
    b_plain = _ratio(results, SERVICE, MLSERVER_PLAIN, "batch1000")
    p99 = get("single_c32", "p99_ms")
    checks += [
        (
            f"1,000-row batches >= {BATCH_VS_MLSERVER_BATCHING}x MLServer with adaptive batching",
            b_mls,
            b_mls is not None and b_mls >= BATCH_VS_MLSERVER_BATCHING,
            f"{_fmt(b_mls, '.2f')}x: {_fmt(get('batch1000', 'rows_per_s'), ',.0f')} vs "
            f"{_fmt(get('batch1000', 'rows_per_s', MLSERVER_BATCHING), ',.0f')} rows/s",
        ),
        (
            f"1,000-row batches >= {BATCH_VS_MLSERVER_PLAIN}x MLServer without batching",
            b_plain,
            b_plain is not None and b_plain >= BATCH_VS_MLSERVER_PLAIN,
            f"{_fmt(b_plain, '.2f')}x: {_fmt(get('batch1000', 'rows_per_s'), ',.0f')} vs "
            f"{_fmt(get('batch1000', 'rows_per_s', MLSERVER_PLAIN), ',.0f')} rows/s",
        ),
        (
            f"p99 at single-row c=32 <= {P99_C32_MS:g} ms",
            p99,
            p99 is not None and p99 <= P99_C32_MS,
            _fmt(p99, ".2f") + " ms",
        ),
    ]
    if log_after_batch and log_after_batch.get("logged_rows") is not None:
        logged, answered = log_after_batch["logged_rows"], log_after_batch["answered_rows"]
        checks.append(
            (
                "every answered row is in the log after the 1,000-row phase",
                logged,
                logged == answered,
                f"{logged:,} logged of {answered:,} answered",
            )
        )
    if event_loop:
        flags = [f for v in event_loop.values() for f in v]
        checks.append(
            (
                "workers run uvloop and httptools",
                sum(flags),
                bool(flags) and all(flags),
                ", ".join(f"{k} in {sum(v)} of {len(v)} workers" for k, v in event_loop.items()),
            )
        )
    if prediction_log and "logged_rows" in prediction_log:
        logged, answered = prediction_log["logged_rows"], prediction_log["answered_rows"]
        checks.append(
            (
                "every answered prediction is in the prediction log",
                logged,
                logged == answered,
                f"{logged:,} logged of {answered:,} answered",
            )
        )
    return [
        {"target": name, "value": value, "met": bool(met), "measured": text}
        for name, value, met, text in checks
    ]


def targets_table(verdicts: list[dict[str, Any]]) -> str:
    """Markdown list of the target verdicts."""
    return "\n".join(
        f"- {'MET' if v['met'] else 'NOT MET'}: {v['target']} (measured {v['measured']})"
        for v in verdicts
    )
