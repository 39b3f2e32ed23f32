"""Benchmark of the model evaluators alone: one row and 1,000-row batches, per estimator.

Trains GBM, HGB and RF versions with the trainer's own ``fit_pipeline`` (the default
configuration with the estimator and its parameters set: the original served GBM, and the HGB
and RF candidates ``make experiment`` ranks) and, in one process on one thread, times for each:

- ``fast path``: :func:`reggaeton.fastpath.compile_pipeline` (what the service serves now);
- ``before``: the evaluator of commit ``0d4b09a`` (``service/fasttrees.py`` and
  ``service/treecuts.py`` at that commit, read with ``git show`` into a temporary module, so
  the private scikit-learn call it makes never lives in the package); GBM only, as then;
- ``predict_proba``: the whole pipeline, validation off (what the evaluator must equal).

The sides are measured in interleaved rounds (each round: the median of many calls per side)
and the best round of each side is printed: on a shared machine other work only ever adds
time, so the least disturbed round is the closest to the evaluator's own cost, and
interleaving gives every side the same chances. Prints cost per row in microseconds, the largest
difference from ``predict_proba`` and MET / NOT MET for issue 12: the GBM no slower than
before on single rows and batches, HGB and RF single rows within 2x of the GBM's.

With ``--served`` the same three pipelines are then saved, one promoted version per temporary
model-store home, and each is served in turn by a real ``bentoml serve`` (started as
:class:`scripts.procs.ServiceProcess` starts the service for the demo and the end-to-end
tests); ``GET /model`` must name the expected evaluator, and ``hey`` posts one seed song to
``/predict-song`` at concurrency 1 and 8 for ``--served-seconds`` each, after a warm-up. That is
the cost a client sees (HTTP, validation, logging, model), so the verdict there compares the
p50 latency at concurrency 1. Usage:
``python -m bench.inference_bench [--rounds 5] [--served] [--served-seconds 5]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

BEFORE_COMMIT = "0d4b09a"
ROOT = Path(__file__).resolve().parent.parent
CANDIDATES = {
    "gbm": [  # the original served GBM, whatever the default configuration becomes
        "model.estimator=gbm",
        "model.params={random_state: 0, subsample: 0.8, n_estimators: 300, "
        "min_samples_split: 106, min_samples_leaf: 177}",
    ],
    "hgb": [
        "model.estimator=hgb",
        "imbalance.strategy=class_weight",
        "model.params={random_state: 0, max_iter: 200, learning_rate: 0.05, "
        "max_leaf_nodes: 15, l2_regularization: 1.0}",
    ],
    "rf": [
        "model.estimator=rf",
        "imbalance.strategy=class_weight",
        "model.params={random_state: 0, n_estimators: 300, min_samples_leaf: 3, n_jobs: 1}",
    ],
}


def train_all() -> tuple[dict[str, object], np.ndarray]:
    """Fit one pipeline per candidate on the seed data; returns them and the training matrix."""
    import pandas as pd

    from reggaeton.schema import MODEL_FEATURES
    from training.config import load_config
    from training.pipeline import fit_pipeline, to_matrix

    config = load_config(None, [])
    frames = [
        pd.read_csv(ROOT / config.data.reggaeton_csv).assign(_y=1),
        pd.read_csv(ROOT / config.data.other_csv).assign(_y=0),
    ]
    frame = pd.concat(frames, ignore_index=True).dropna(subset=list(MODEL_FEATURES))
    X, y = to_matrix(frame, MODEL_FEATURES), frame["_y"].to_numpy()
    return {name: fit_pipeline(load_config(None, o), X, y) for name, o in CANDIDATES.items()}, X


def load_before(workdir: Path) -> object | None:
    """The evaluator of :data:`BEFORE_COMMIT` as a temporary module (None if git lacks it)."""
    sources = {}
    for name in ("fasttrees", "treecuts"):
        try:
            sources[name] = subprocess.run(
                ["git", "show", f"{BEFORE_COMMIT}:service/{name}.py"],
                cwd=ROOT,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        except (OSError, subprocess.CalledProcessError):
            return None
    (workdir / "before_treecuts.py").write_text(sources["treecuts"])
    code = sources["fasttrees"].replace("from service.treecuts", "from before_treecuts")
    (workdir / "before_fasttrees.py").write_text(code)
    module = None
    for name in ("before_treecuts", "before_fasttrees"):  # dependency first
        spec = importlib.util.spec_from_file_location(name, workdir / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # found by the import in before_fasttrees and by dataclasses
        spec.loader.exec_module(module)
    return module


def per_row_us(
    fn: Callable[[np.ndarray], np.ndarray], rows: list[np.ndarray], budget: float
) -> float:
    """Median cost per row (µs) of ``fn`` over the inputs ``rows``, for about ``budget`` s."""
    fn(rows[0])
    samples, spent, i = [], 0.0, 0
    while spent < budget or len(samples) < 5:
        X = rows[i % len(rows)]
        start = time.perf_counter()
        fn(X)
        took = time.perf_counter() - start
        samples.append(took / len(X) * 1e6)
        spent += took
        i += 1
    return statistics.median(samples)


SERVED_PATHS = {"gbm": "trees:gbm", "hgb": "trees:hgb", "rf": "trees:rf"}
"""The evaluator ``GET /model`` must report for each served candidate."""


def serve_and_measure(
    pipelines: dict[str, object], seconds: float, workdir: Path
) -> dict[str, dict[int, tuple[float, float, float]]]:
    """Serve each pipeline with ``bentoml serve`` in turn; ``{model: {c: (p50, p99, rps)}}``.

    Raises:
        RuntimeError: when a server does not start or ``GET /model`` names another path.
    """
    import json

    import requests

    from bench.loadgen import run_hey, warm_up
    from bench.payloads import api_body, load_songs, write_body
    from reggaeton.registry import Registry
    from reggaeton.schema import MODEL_FEATURES
    from reggaeton.servable import export
    from scripts.procs import ServiceProcess

    body = write_body(workdir / "single.json", api_body(load_songs(ROOT / "data", 1), True))
    out: dict[str, dict[int, tuple[float, float, float]]] = {}
    for model, pipe in pipelines.items():
        home = workdir / f"home-{model}"
        registry = Registry(home)
        meta = {"threshold": 0.5, "features": list(MODEL_FEATURES)}
        version = registry.save(pipe, meta, servable=export(pipe))
        registry.promotions.promote(version.tag, f"inference bench: {model}")
        env = {
            "BENTOML_HOME": str(home),
            "PREDICTION_STORE_URI": f"sqlite:///{workdir / f'predictions-{model}.db'}",
            "PREDICTION_SPILL_DIR": str(workdir / f"spill-{model}"),
        }
        with ServiceProcess(env=env, log_path=workdir / f"{model}.log", grpc_port=None) as proc:
            proc.wait_ready()
            info = requests.get(f"{proc.url}/model", timeout=10).json()
            path = info.get("inference_path", info.get("path_name"))
            print(f"served {model}: GET /model inference_path={path}", flush=True)
            if path != SERVED_PATHS[model]:
                raise RuntimeError(f"{model}: GET /model says {json.dumps(info)}")
            url = f"{proc.url}/predict-song"
            warm_up(url, body, concurrency=4, requests=300)
            out[model] = {}
            for c in (1, 8):
                cell = run_hey(url, body, c, seconds, 1)
                if cell.errors or cell.p50_ms is None or cell.p99_ms is None:
                    raise RuntimeError(f"{model} c={c}: {cell.to_dict()}")
                out[model][c] = (cell.p50_ms, cell.p99_ms, cell.requests_per_s)
    return out


def print_served(served: dict[str, dict[int, tuple[float, float, float]]]) -> None:
    """The served table and the verdict on single-row latency (p50 at concurrency 1)."""
    print()
    print(f"{'model':<6} {'path':<10} {'c':>2} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
    for model, cells in served.items():
        for c, (p50, p99, rps) in cells.items():
            print(
                f"{model:<6} {SERVED_PATHS[model]:<10} {c:>2} {p50:>8.2f} {p99:>8.2f} {rps:>8.0f}"
            )
    gbm = served["gbm"][1][0]
    worst = max(served[m][1][0] / gbm for m in ("hgb", "rf"))
    verdict = "MET" if worst <= 2 else "NOT MET"
    print(
        f"HGB/RF served single-row within 2x of GBM: {verdict} (p50 at c=1: GBM {gbm:.2f} ms, "
        f"HGB {served['hgb'][1][0]:.2f} ms, RF {served['rf'][1][0]:.2f} ms; worst {worst:.2f}x)"
    )


def main(argv: list[str] | None = None) -> int:
    """Train, compile, time and print; exit code 0 whether or not the goals are met."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--budget", type=float, default=0.15, help="seconds per side per round")
    parser.add_argument(
        "--served", action="store_true", help="also serve each model and time /predict-song"
    )
    parser.add_argument("--served-seconds", type=float, default=5.0, help="per concurrency")
    args = parser.parse_args(argv)

    from threadpoolctl import threadpool_limits

    from reggaeton.fastpath import compile_pipeline
    from reggaeton.schema import MODEL_FEATURES
    from reggaeton.servable import pipeline_proba, probe_matrix

    n = len(MODEL_FEATURES)
    print("training GBM, HGB and RF with training.pipeline.fit_pipeline ...", flush=True)
    pipelines, _ = train_all()
    with tempfile.TemporaryDirectory() as tmp:
        before = load_before(Path(tmp))
        sides: dict[tuple[str, str], Callable[[np.ndarray], np.ndarray]] = {}
        names: dict[str, str] = {}
        for model, pipe in pipelines.items():
            fast = compile_pipeline(pipe, n)
            names[model] = fast.name if fast is not None else "pipeline"
            if fast is not None:
                sides[(model, "fast path")] = fast.raw_proba
            if model == "gbm" and before is not None:
                old = before.compile_pipeline(pipe, n)
                if old is not None:
                    sides[(model, "before")] = old.predict_proba1
            sides[(model, "predict_proba")] = lambda X, p=pipe: pipeline_proba(p, X)
        singles = [probe_matrix(1, seed=s) for s in range(64)]
        batches = [probe_matrix(1000, seed=100 + s) for s in range(4)]
        check = probe_matrix(5000, seed=7)
        results: dict[tuple[str, str], list[tuple[float, float]]] = {k: [] for k in sides}
        with threadpool_limits(limits=1):
            for r in range(args.rounds):
                print(f"round {r + 1}/{args.rounds}", flush=True)
                for key, fn in sides.items():
                    slow = key[1] == "predict_proba" or key == ("hgb", "fast path")
                    budget = args.budget * (0.5 if slow else 1)
                    results[key].append(
                        (per_row_us(fn, singles, budget), per_row_us(fn, batches, budget))
                    )
            diffs = {}
            for (model, side), fn in sides.items():
                expected = pipelines[model].predict_proba(check)[:, 1]
                got = np.concatenate([fn(check[:1]), fn(check[1:])])
                diffs[(model, side)] = float(np.max(np.abs(got - expected)))
        table = {k: tuple(min(v[i] for v in rows) for i in (0, 1)) for k, rows in results.items()}

    print()
    print(
        f"{'model':<6} {'side':<14} {'path':<12} {'1 row µs':>10} {'1,000 rows µs/row':>18} "
        f"{'max |Δp|':>9}"
    )
    for (model, side), (one, many) in table.items():
        path = (
            names[model]
            if side == "fast path"
            else ("trees:gbm@0d4b09a" if side == "before" else "pipeline")
        )
        print(
            f"{model:<6} {side:<14} {path:<12} {one:>10.1f} {many:>18.2f} "
            f"{diffs[(model, side)]:>9.1e}"
        )
    print()
    gbm_one, gbm_many = table[("gbm", "fast path")]
    if ("gbm", "before") in table:
        old_one, old_many = table[("gbm", "before")]
        for label, new, old in (("1 row", gbm_one, old_one), ("1,000 rows", gbm_many, old_many)):
            verdict = "MET" if new <= old * 1.05 else "NOT MET"
            print(
                f"GBM {label}: fast path {new:.2f} µs/row vs before {old:.2f} "
                f"({old / new:.2f}x) -> {verdict} (no slower than before, 5% noise margin)"
            )
    for model in ("hgb", "rf"):
        one = table[(model, "fast path")][0]
        verdict = "MET" if one <= 2 * gbm_one else "NOT MET"
        print(
            f"{model.upper()} 1 row: {one:.1f} µs = {one / gbm_one:.1f}x the GBM's "
            f"{gbm_one:.1f} µs -> {verdict} (within 2x)"
        )
    if args.served:
        with tempfile.TemporaryDirectory() as tmp:
            print_served(serve_and_measure(pipelines, args.served_seconds, Path(tmp)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
