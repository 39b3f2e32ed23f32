"""``make experiment``: search the trainer's estimators, estimate honestly, maybe promote.

``python -m training.experiment [--config FILE] [--set k=v ...] [--budget SECONDS] [--jobs N]
[--quick] [--promote] [--out DIR] [--default-config FILE]``

1. Nested CV of an Optuna search over every estimator and imbalance strategy the trainer
   offers (:mod:`training.search`), plus one search on the whole training split that picks
   the winner, all within ``--budget`` seconds (``search.budget_seconds``).
2. The original configuration (``--config``, default ``training/configs/original.yaml``), the
   winner and the best configuration of every other estimator are scored under the protocol
   (:mod:`training.protocol`: repeated stratified CV, calibration and threshold fitted inside
   each fit). Everything uses the training part of the seeded split: the hold-out is left to
   the gate.
3. The leaderboard (mean and 95% interval of F1, PR-AUC, Brier and ECE) is printed, written
   to ``DIR/leaderboard.md`` and logged to MLflow (experiment ``reggaeton_clf-experiments``,
   one run per row with its reliability plot); the winner's config goes to
   ``DIR/winner.yaml``, every per-fold score to ``DIR/results.json``.
4. If the winner beats the original (higher mean F1 and PR-AUC under the protocol, and the
   nested estimate of the search not below the original on the same outer folds), it is
   written to ``--default-config`` (``training/configs/default.yaml``). ``--promote``
   (``make experiment PROMOTE=1``) then trains it through the usual gate.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from reggaeton.schema import LABEL_COLUMN, MODEL_FEATURES
from training import leaderboard, tracking
from training.config import (
    DEFAULT_CONFIG,
    ORIGINAL_CONFIG,
    ConfigError,
    TrainConfig,
    apply_override,
    from_dict,
    load_raw,
)
from training.data import DataError, load_labelled, split_holdout
from training.leaderboard import Row, describe_config
from training.pipeline import to_matrix
from training.protocol import ProtocolResult, evaluate
from training.search import OuterFold, SearchResult, nested_search

log = logging.getLogger("training.experiment")
OUT_DIR = Path("var/experiments")
QUICK = [
    "protocol.repeats=1",
    "protocol.folds=3",
    "protocol.inner_folds=2",
    "search.outer_folds=2",
    "search.inner_folds=2",
    "search.budget_seconds=20",
]
"""``--quick``: a smoke run of every step in well under a minute (numbers not meaningful)."""


def training_split(config: TrainConfig, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """The training part of the seeded split, as the model matrix and labels."""
    labelled, _ = load_labelled(
        root / config.data.reggaeton_csv, root / config.data.other_csv, list(MODEL_FEATURES)
    )
    train, _ = split_holdout(labelled, config.split.test_size, config.seed)
    return to_matrix(train, MODEL_FEATURES), train[LABEL_COLUMN].to_numpy(dtype=int)


def score(config: TrainConfig, X: np.ndarray, y: np.ndarray, n_jobs: int) -> ProtocolResult:
    """``config`` under the protocol of its ``protocol`` and ``calibration`` sections."""
    p = config.protocol
    return evaluate(
        config,
        X,
        y,
        repeats=p.repeats,
        folds=p.folds,
        inner_folds=p.inner_folds,
        method=config.calibration.method,
        n_jobs=n_jobs,
    )


def candidates(
    base: dict[str, Any], final: SearchResult
) -> list[tuple[str, dict[str, Any], float | None]]:
    """Rows to score: the original, the winner, the best of every other estimator."""
    rows: list[tuple[str, dict[str, Any], float | None]] = [("original", base, None)]
    rows.append(("winner", final.best_raw, final.best_value))
    winner_estimator = final.best_raw["model"]["estimator"]
    for estimator, best in final.best_by_estimator.items():
        if estimator != winner_estimator:
            rows.append((f"best {estimator}", best["config"], best["value"]))
    return rows


def beats(
    winner: ProtocolResult, original: ProtocolResult, outer: list[OuterFold]
) -> tuple[bool, str]:
    """Does the winner beat the original? Higher mean F1 and PR-AUC under the protocol (same
    splits), and the nested-CV estimate of the search not below the original's PR-AUC on the
    same outer folds (guards against the winner's selection optimism)."""
    w_f1, o_f1 = winner.interval("f1").mean, original.interval("f1").mean
    w_pr, o_pr = winner.interval("pr_auc").mean, original.interval("pr_auc").mean
    nested = float(np.mean([f.winner["pr_auc"] - f.original["pr_auc"] for f in outer]))
    text = (
        f"protocol F1 {w_f1:.3f} vs {o_f1:.3f}, PR-AUC {w_pr:.3f} vs {o_pr:.3f}; nested PR-AUC "
        f"difference {nested:+.3f}"
    )
    ok = w_f1 > o_f1 and w_pr > o_pr and nested >= 0
    return ok, (
        "winner beats the original: " if ok else "winner does not beat the original: "
    ) + text


def write_config(path: Path, raw: dict[str, Any], header: str) -> None:
    """A raw config as YAML with a comment header."""
    path.parent.mkdir(parents=True, exist_ok=True)
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    path.write_text(comment + yaml.safe_dump(raw, sort_keys=False))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line arguments of ``python -m training.experiment``."""
    p = argparse.ArgumentParser(
        prog="python -m training.experiment", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--config",
        type=Path,
        default=ORIGINAL_CONFIG,
        help="the original configuration, also the base of every trial",
    )
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--budget", type=float, help="seconds for the search (search.budget_seconds)")
    p.add_argument("--jobs", type=int, help="processes side by side (search.n_jobs)")
    p.add_argument("--quick", action="store_true", help="smoke run (" + ", ".join(QUICK) + ")")
    p.add_argument(
        "--promote",
        action="store_true",
        help="train the winner through the gate if it beats the original",
    )
    p.add_argument("--out", type=Path, default=OUT_DIR, help="leaderboard.md and winner.yaml")
    p.add_argument(
        "--default-config",
        type=Path,
        default=DEFAULT_CONFIG,
        help="where a winner that beats the original is written",
    )
    return p.parse_args(argv)


def load_base(args: argparse.Namespace) -> dict[str, Any]:
    """The original's raw config with ``--quick``, ``--budget``, ``--jobs`` and ``--set``."""
    base = load_raw(args.config)
    extra = list(QUICK if args.quick else [])
    if args.budget is not None:
        extra.append(f"search.budget_seconds={args.budget}")
    if args.jobs is not None:
        extra.append(f"search.n_jobs={args.jobs}")
    for item in extra + args.overrides:
        apply_override(base, item)
    return base


def run(args: argparse.Namespace) -> int:
    """The whole experiment (see the module docstring); returns the exit code."""
    base = load_base(args)
    original = from_dict(base)
    s = original.search
    X, y = training_split(original, Path.cwd())
    start = time.perf_counter()
    print(
        f"search: {s.outer_folds}-fold nested CV + final search, {s.budget_seconds:.0f}s budget, "
        f"{s.n_jobs} process(es), on the training split ({len(y)} rows, {int(y.sum())} "
        "reggaeton; hold-out excluded)",
        flush=True,
    )
    outer, final = nested_search(
        base,
        original,
        X,
        y,
        outer_folds=s.outer_folds,
        budget_seconds=s.budget_seconds,
        max_trials=s.max_trials,
        inner_folds=s.inner_folds,
        method=original.calibration.method,
        seed=original.seed,
        n_jobs=s.n_jobs,
    )
    trials = sum(len(f.search.trials) for f in outer) + len(final.trials)
    print(f"search: {trials} trials in {time.perf_counter() - start:.0f}s", flush=True)
    rows = []
    for name, raw, value in candidates(base, final):
        print(f"protocol: scoring {name} ({describe_config(raw)})", flush=True)
        result = score(from_dict(raw), X, y, s.n_jobs)
        rows.append(Row(name, describe_config(raw), raw, result, value))
        print(
            f"protocol: {name}: f1 {result.interval('f1')}, pr_auc "
            f"{result.interval('pr_auc')} ({result.seconds:.0f}s)",
            flush=True,
        )
    by_name = {r.name: r for r in rows}
    ok, reason = beats(by_name["winner"].result, by_name["original"].result, outer)
    p = original.protocol
    text = "\n\n".join(
        [
            leaderboard.markdown(
                rows,
                f"Protocol: {rows[0].result.description} "
                f"({len(y)} training rows; mean [95% interval])",
            ),
            f"### Nested CV of the search ({s.outer_folds} outer folds, calibrated)\n\n"
            + leaderboard.nested_markdown(
                [f.winner for f in outer],
                [f.original for f in outer],
                [describe_config(f.search.best_raw) for f in outer],
                s.outer_folds,
            ),
            f"Decision: {reason}.",
        ]
    )
    print(text, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "leaderboard.md").write_text(text + "\n")
    _write_results(args.out / "results.json", rows, outer)
    winner_file = args.out / "winner.yaml"
    header = (
        f"Winner of make experiment ({p.repeats}x{p.folds} protocol): "
        f"{describe_config(final.best_raw)}\n{reason}"
    )
    write_config(winner_file, final.best_raw, header)
    if ok:
        write_config(args.default_config, final.best_raw, header)
        print(f"default: winner written to {args.default_config}")
    else:
        print(f"default: {args.default_config} unchanged")
    _log_mlflow(rows, text, ok, reason)
    return _promote(args, winner_file, ok)


def _write_results(path: Path, rows: list[Row], outer: list[OuterFold]) -> None:
    """Every per-fold score behind the tables, for a later look (intervals, paired tests)."""
    data = {
        "protocol": {r.name: {"config": r.raw_config, "folds": r.result.folds} for r in rows},
        "nested": [
            {
                "pick": f.search.best_raw,
                "search": f.winner,
                "original": f.original,
                "trials": len(f.search.trials),
            }
            for f in outer
        ],
    }
    path.write_text(json.dumps(data, indent=1, default=float))


def _log_mlflow(rows: list[Row], text: str, ok: bool, reason: str) -> None:
    uri = tracking.tracking_uri_from_env()
    try:
        leaderboard.log_rows(uri, rows, {r.name: copy.deepcopy(r.raw_config) for r in rows})
        metrics = {
            f"{r.name.replace(' ', '_')}_{k}": v
            for r in rows
            for k, v in r.result.flat().items()
            if k.split("_")[0] in ("f1", "pr")
        }
        leaderboard.log_summary(
            uri, text, metrics | {"winner_beats_original": float(ok)}, {"decision": reason[:500]}
        )
        print(f"mlflow: {len(rows)} runs + leaderboard in {uri} ({leaderboard.EXPERIMENT})")
    except Exception as exc:  # noqa: BLE001 - the leaderboard is printed and written already
        log.error("mlflow: logging to %s failed (%s: %s)", uri, type(exc).__name__, exc)


def _promote(args: argparse.Namespace, winner_file: Path, ok: bool) -> int:
    command = f'make train ARGS="--config {winner_file}"'
    if not args.promote:
        print(f"promote: {'make experiment PROMOTE=1, or ' if ok else ''}{command}")
        return 0
    if not ok:
        print("promote: skipped, the winner does not beat the original")
        return 0
    from reggaeton.registry import Registry, home_from_env
    from training.config import load_config
    from training.train import run_training

    result = run_training(
        load_config(winner_file), Registry(home_from_env()), tracking.tracking_uri_from_env()
    )
    m = result.metrics
    print(
        f"promote: trained {result.tag}: hold-out f1 {m['f1']:.4f} pr_auc {m['pr_auc']:.4f} "
        f"brier {m['brier']:.4f} ece {m['ece']:.4f}"
    )
    print(f"gate: {'PROMOTED' if result.promoted else 'NOT PROMOTED'}: {result.decision.reason}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code (2 for a bad config or data)."""
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "True")
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    try:
        return run(args)
    except (ConfigError, DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
