"""Issue 13's batch verdicts: 1,000-row ratios against both MLServer sides, p99 at c=32, the
log counted after the batch phase, and uvloop/httptools really loaded by the workers."""

from __future__ import annotations

from bench import report


def _cell(rps: float, p99: float = 10.0, rows: int = 1) -> dict:
    return {
        "requests_per_s": rps,
        "rows_per_s": rps * rows,
        "p50_ms": 1.0,
        "p99_ms": p99,
        "errors": 0,
        "ok": 1,
    }


def _results(ours: float, batching: float, plain: float, p99: float) -> report.Results:
    return {
        report.SERVICE: {"single_c32": _cell(1000, p99=p99), "batch1000": _cell(ours, rows=1000)},
        report.MLSERVER_BATCHING: {"batch1000": _cell(batching, rows=1000)},
        report.MLSERVER_PLAIN: {"batch1000": _cell(plain, rows=1000)},
    }


def _verdicts(*args, **kwargs) -> dict[str, bool]:
    return {v["target"]: v["met"] for v in report.targets(*args, **kwargs)}


VS_BATCHING = "1,000-row batches >= 1.5x MLServer with adaptive batching"
VS_PLAIN = "1,000-row batches >= 1.2x MLServer without batching"
P99 = "p99 at single-row c=32 <= 50 ms"
AFTER_BATCH = "every answered row is in the log after the 1,000-row phase"
LOOP = "workers run uvloop and httptools"


def test_batch_ratios_are_judged_against_each_mlserver_side() -> None:
    met = _verdicts(_results(ours=150, batching=100, plain=125, p99=50.0))
    assert met[VS_BATCHING] and met[VS_PLAIN] and met[P99]  # 1.5x, 1.2x, 50 ms: all on the line
    missed = _verdicts(_results(ours=149, batching=100, plain=125, p99=50.1))
    assert not missed[VS_BATCHING] and not missed[VS_PLAIN] and not missed[P99]


def test_missing_mlserver_sides_are_not_met() -> None:
    results = _results(ours=150, batching=100, plain=100, p99=10)
    del results[report.MLSERVER_PLAIN]
    met = _verdicts(results)
    assert met[VS_BATCHING] and not met[VS_PLAIN]


def test_the_log_after_the_batch_phase_must_hold_every_answered_row() -> None:
    results = _results(ours=150, batching=100, plain=100, p99=10)
    assert _verdicts(results, log_after_batch={"logged_rows": 5, "answered_rows": 5})[AFTER_BATCH]
    assert not _verdicts(results, log_after_batch={"logged_rows": 4, "answered_rows": 5})[
        AFTER_BATCH
    ]
    assert AFTER_BATCH not in _verdicts(results)  # not measured: no verdict


def test_uvloop_and_httptools_must_be_loaded_in_every_worker() -> None:
    results = _results(ours=150, batching=100, plain=100, p99=10)
    both = {"uvloop": [True, True], "httptools": [True, True]}
    assert _verdicts(results, event_loop=both)[LOOP]
    assert not _verdicts(results, event_loop={**both, "httptools": [True, False]})[LOOP]
    assert not _verdicts(results, event_loop={"uvloop": [], "httptools": []})[LOOP]
