"""Benchmark this service against MLServer (with and without adaptive batching) and the naive
baseline, one side at a time on this machine, and print the table (``make bench``).

Usage: ``python -m bench.run [--seconds 10] [--sides service,baseline,...] [--workers N]``.
Results: ``bench/results/<timestamp>.json`` and ``.md`` (ignored by git); table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from bench import envs, payloads, report, servers
from bench.baseline import artifacts as baseline_artifacts
from bench.loadgen import require_hey
from bench.matrix import Bodies, check_answers, loaded_libs, run_side
from reggaeton.calibration import apply_calibration
from reggaeton.registry import Registry, home_from_env
from reggaeton.schema import MODEL_FEATURES

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WORKERS = 2


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="load time per cell")
    parser.add_argument("--warmup", type=int, default=200, help="single-row warm-up requests")
    parser.add_argument("--batch-concurrency", type=int, default=4)
    parser.add_argument(
        "--sides",
        default=",".join(report.SIDES),
        help=f"comma-separated subset of {','.join(report.SIDES)}",
    )
    parser.add_argument(
        "--cells",
        default="",
        help="comma-separated subset of single_c1,single_c8,single_c32,batch100,"
        "batch1000 (default: all)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="workers for baseline and MLServer (default: the service's)",
    )
    parser.add_argument("--mlserver-venv", type=Path, default=REPO / "var/bench/venv-mlserver")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    return parser.parse_args(argv)


def service_workers() -> int:
    """Worker count declared by ``@bentoml.service`` (the same count is given to the others)."""
    try:
        from service.service import ReggaetonService

        workers = ReggaetonService.config.get("workers")
        return workers if isinstance(workers, int) and workers > 0 else DEFAULT_WORKERS
    except Exception as exc:  # noqa: BLE001 - the bench still runs with the default
        print(
            f"[bench] could not read the service's worker count ({exc}); using {DEFAULT_WORKERS}",
            flush=True,
        )
        return DEFAULT_WORKERS


def served_model(home: Path):
    """The promoted version and its pipeline; trains a first model if the store is empty."""
    registry = Registry(home)
    try:
        version = registry.serving_version()
    except Exception:  # noqa: BLE001 - empty store: train like `make serve` does
        print(f"[bench] no serving version in {home}: training one", flush=True)
        subprocess.run(
            [sys.executable, "-m", "training.train", "--if-empty"],
            cwd=REPO,
            check=True,
            env={**os.environ, "BENTOML_HOME": str(home)},
        )
        version = registry.serving_version()
    return version, registry.load_pipeline(version)


def baseline_folder(run_root: Path, data_dir: Path, version, pipeline) -> Path:
    """Baseline pickles for this model version (built once, cached under var/bench)."""
    folder = run_root / f"baseline-{version.version}"
    arts = baseline_artifacts.BaselineArtifacts(folder)
    if not arts.exists():
        print("[bench] fitting the baseline's scalers and estimator", flush=True)
        baseline_artifacts.build(data_dir, folder, estimator=pipeline.steps[-1][1])
    return folder


def main(argv: list[str] | None = None) -> int:
    """Run the whole matrix and print the markdown table; return 0 when every side ran."""
    args = _args(argv)
    require_hey()
    sides = [s for s in args.sides.split(",") if s]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_root = REPO / "var" / "bench"
    run_dir = run_root / f"run-{stamp}"
    run_dir.mkdir(parents=True, exist_ok=True)
    data_dir = REPO / "data"
    home = home_from_env()
    version, pipeline = served_model(home)
    workers = args.workers or service_workers()
    cells = [
        c
        for c in report.default_cells(args.batch_concurrency)
        if not args.cells or c.key in args.cells.split(",")
    ]
    songs = payloads.load_songs(data_dir, max([100] + [c.rows for c in cells]))
    bodies = Bodies(run_dir, songs)
    matrix = payloads.model_matrix(songs)
    frame = pd.DataFrame(matrix, columns=list(MODEL_FEATURES))
    # MLServer serves the raw pipeline; the service answers the version's calibrated probability.
    raw_expected = pipeline.predict_proba(matrix)[:, 1]
    expected = apply_calibration(raw_expected, version.metadata.get("calibration"))
    store_uri = f"sqlite:///{run_dir / 'predictions.db'}"
    side_uris = {
        report.SERVICE: store_uri,
        report.SERVICE_SYNC: f"sqlite:///{run_dir / 'predictions-sync.db'}",
    }
    print(
        f"[bench] model {version.tag}, {workers} workers per side, {args.seconds:g}s per "
        f"cell, run dir {run_dir}",
        flush=True,
    )

    launches = {}
    if report.SERVICE in sides:
        launches[report.SERVICE] = lambda: servers.service_launch(REPO, run_dir, home, store_uri)
    if report.SERVICE_SYNC in sides:
        launches[report.SERVICE_SYNC] = lambda: servers.service_launch(
            REPO,
            run_dir,
            home,
            side_uris[report.SERVICE_SYNC],
            name=report.SERVICE_SYNC,
            extra_env={"PREDICTION_LOG_DURABILITY": "sync"},
        )
    for side, batching in ((report.MLSERVER_BATCHING, True), (report.MLSERVER_PLAIN, False)):
        if side in sides:
            launches[side] = lambda b=batching: servers.mlserver_launch(
                envs.ensure_mlserver_venv(args.mlserver_venv),
                run_dir,
                version.path / "pipeline.joblib",
                workers,
                b,
            )
    if report.BASELINE in sides:
        folder = baseline_folder(run_root, data_dir, version, pipeline)
        launches[report.BASELINE] = lambda: servers.baseline_launch(REPO, run_dir, folder, workers)
        baseline_expected = baseline_artifacts.expected_probabilities(folder, frame)

    results: report.Results = {}
    meta: dict = {
        "started": stamp,
        "model": version.tag,
        "workers": workers,
        "seconds_per_cell": args.seconds,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "checks": {},
        "loadavg_before": {},
        "mlserver_requirements": envs.mlserver_requirements(),
        **_git_state(),
    }
    failed = []
    for side, make in launches.items():
        meta["loadavg_before"][side] = os.getloadavg()
        try:
            with servers.running(make()) as launch:
                if side == report.BASELINE:
                    want = baseline_expected
                else:
                    want = expected if side in side_uris else raw_expected
                meta["checks"][side] = check_answers(launch, bodies, want)
                print(f"[bench] {side} ready; answer check: {meta['checks'][side]}", flush=True)
                hook = None
                if side in side_uris:
                    libs = meta.setdefault("event_loop", {})[side] = loaded_libs(launch)
                    print(
                        f"[bench] {side} workers: "
                        + ", ".join(f"{k} loaded in {sum(v)} of {len(v)}" for k, v in libs.items()),
                        flush=True,
                    )
                    hook = _batch_phase_check(side, side_uris[side], run_dir, meta)
                results[side], warm_rows = run_side(
                    launch, bodies, cells, args.seconds, args.warmup, after_cell=hook
                )
                if side in side_uris:
                    uri = side_uris[side]
                    settle = _settle(uri, run_dir / f"spill-{side}")
                    meta.setdefault("log_settle_s", {})[side] = settle
                    print(
                        f"[bench] {side}: prediction log settled {settle:.1f} s after the "
                        "load (queues written, spill replayed)",
                        flush=True,
                    )
        except Exception as exc:  # noqa: BLE001 - report the side as failed, run the others
            print(f"[bench] {side} FAILED: {exc}", flush=True)
            failed.append(side)
            meta["checks"][side] = {"ok": False, "detail": str(exc)}
            continue
        if side in side_uris:
            uri = side_uris[side]
            meta.setdefault("prediction_log", {})[side] = _logged(
                uri, results[side], cells, warm_rows
            )

    verdicts = report.targets(
        results,
        meta.get("prediction_log", {}).get(report.SERVICE),
        meta.get("log_after_batch", {}).get(report.SERVICE),
        meta.get("event_loop", {}).get(report.SERVICE),
    )
    text = "\n\n".join(
        [
            f"Commit {meta['git_commit']}"
            + (" (service/ has uncommitted changes)" if meta["service_uncommitted"] else "")
            + f"; model {version.tag}; {workers} workers per side; {args.seconds:g} s per cell; "
            f"{os.cpu_count()} CPUs shared with hey and any other work (1-minute load average "
            f"before each side: "
            + ", ".join(f"{k} {v[0]:.1f}" for k, v in meta["loadavg_before"].items())
            + ").",
            report.table(results, cells),
            report.targets_table(verdicts),
            report.durability_cost(results, cells),
            f"Prediction log: {meta.get('prediction_log', 'n/a')}",
        ]
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stamp}.json").write_text(
        json.dumps({"meta": meta, "results": results, "targets": verdicts}, indent=2, default=str)
    )
    (args.out / f"{stamp}.md").write_text(text + "\n")
    print(text)
    return 1 if failed else 0


def _git_state() -> dict:
    """The commit measured and whether service/ had uncommitted changes (shared checkout)."""

    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return out.stdout.strip()

    return {
        "git_commit": git("rev-parse", "--short", "HEAD"),
        "service_uncommitted": git("status", "--porcelain", "--", "service"),
    }


CHECK_ROWS = 1 + 100
"""Rows of the correctness check's two requests (answered before the warm-up)."""


def _batch_phase_check(side: str, store_uri: str, run_dir: Path, meta: dict):
    """A hook for :func:`bench.matrix.run_side`: right after the 1,000-row cell, with the
    server still up, wait for its log writers to settle and compare the log's row count with
    the rows answered so far (``meta["log_after_batch"][side]``)."""

    def after_cell(cell, answered: int) -> None:
        if cell.key != "batch1000":
            return
        settle = _settle(store_uri, run_dir / f"spill-{side}")
        logged = _count(store_uri)
        answered += CHECK_ROWS
        meta.setdefault("log_after_batch", {})[side] = {
            "logged_rows": logged,
            "answered_rows": answered,
            "settle_s": round(settle, 1),
        }
        print(
            f"[bench] {side}: after the 1,000-row phase the log holds {logged:,} rows of "
            f"{answered:,} answered (settled in {settle:.1f} s)",
            flush=True,
        )

    return after_cell


def _count(store_uri: str) -> int | None:
    from reggaeton.records.factory import open_store

    try:
        store = open_store(store_uri)
        try:
            return store.count()
        finally:
            store.close()
    except Exception as exc:  # noqa: BLE001 - the table still prints
        print(f"[bench] could not count the prediction log {store_uri}: {exc}", flush=True)
        return None


def _settle(store_uri: str, spill_dir: Path, timeout: float = 180.0) -> float:
    """Wait until the service's writers caught up after the load: spill files empty and the
    log's row count unchanged for 1 s. Returns the seconds waited (``timeout`` at most)."""
    from reggaeton.records.factory import open_store

    started = time.monotonic()
    store = open_store(store_uri)
    try:
        last = -1
        while time.monotonic() - started < timeout:
            spilled = (
                sum(p.stat().st_size for p in spill_dir.glob("*.jsonl"))
                if spill_dir.exists()
                else 0
            )
            count = store.count()
            if spilled == 0 and count == last:
                break
            last = count
            time.sleep(1.0)
    finally:
        store.close()
    return time.monotonic() - started


def _logged(store_uri: str, cells: dict, cell_defs, warm_rows: int) -> dict:
    """Rows in the prediction log after the service stopped vs rows it answered with 2xx."""
    from reggaeton.records.factory import open_store

    answered = warm_rows + sum(cells[c.key]["ok"] * c.rows for c in cell_defs if c.key in cells)
    answered += CHECK_ROWS  # the correctness check's two requests
    try:
        store = open_store(store_uri)
        logged = store.count()
        store.close()
    except Exception as exc:  # noqa: BLE001 - the table still prints
        return {"error": str(exc), "answered_rows": answered}
    return {"logged_rows": logged, "answered_rows": answered, "equal": logged == answered}


if __name__ == "__main__":
    raise SystemExit(main())
