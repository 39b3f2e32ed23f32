"""Benchmark of the model evaluators alone: one row and 1,000-row batches, per estimator.

Trains GBM, HGB and RF versions with the trainer's own ``fit_pipeline`` (the default
configuration with the estimator and its parameters set: the original served GBM, and the HGB
and RF candidates ``make experiment`` ranks) and, in one process on one thread, times for each:

- ``fast path``: :func:`service.fastpath.compile_pipeline` (what the service serves now);
- ``before``: the evaluator of commit ``0d4b09a`` (``service/fasttrees.py`` and
  ``service/treecuts.py`` read with ``git show`` into a temporary module, so the private
  scikit-learn call it makes never lives in the package); GBM only, as then;
- ``predict_proba``: the service's generic path (the whole pipeline, validation off).

The sides are measured in interleaved rounds (each round: the median of many calls per side)
and the best round of each side is printed: on a shared machine other work only ever adds
time, so the least disturbed round is the closest to the evaluator's own cost, and
interleaving gives every side the same chances. Prints cost per row in microseconds, the largest
difference from ``predict_proba`` and MET / NOT MET for issue 12: the GBM no slower than
before on single rows and batches, HGB and RF single rows within 2x of the GBM's.
Usage: ``python -m bench.inference_bench [--rounds 5]``.
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
    sys.path.insert(0, str(workdir))
    spec = importlib.util.spec_from_file_location(
        "before_fasttrees", workdir / "before_fasttrees.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
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


def main(argv: list[str] | None = None) -> int:
    """Train, compile, time and print; exit code 0 whether or not the goals are met."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--budget", type=float, default=0.15, help="seconds per side per round")
    args = parser.parse_args(argv)

    from threadpoolctl import threadpool_limits

    from reggaeton.schema import MODEL_FEATURES
    from service.fastpath import compile_pipeline
    from service.inference import generic_proba, probe_matrix

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
            sides[(model, "predict_proba")] = lambda X, p=pipe: generic_proba(p, X, 1)
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
