"""``python -m monitoring.simulate``: write realistic traffic into a prediction log.

Songs are drawn (with replacement) from the unlabelled test songs and the labelled songs of
``data/``, optionally drifted (``--drift tempo=+20 --drift loudness=*1.2``; results are clipped
to the schema bounds so every record stays valid), scored by the serving model so that the
logged probabilities are real, stamped within a time window and written to the store
(``--store`` or ``PREDICTION_STORE_URI``). ``--feedback 0.5`` attaches the true label to half
of the labelled songs (``--flip 0.3`` inverts 30% of those labels to simulate a model whose
performance degraded).

Example::

    python -m monitoring.simulate --n 5000 --drift tempo=+20 --feedback 0.3
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reggaeton.calibration import apply_calibration
from reggaeton.decision import decide
from reggaeton.records.base import PredictionRecord, RecordStore
from reggaeton.registry import Registry
from reggaeton.schema import (
    FEATURES,
    FEATURES_BY_NAME,
    LABEL_COLUMN,
    MODEL_FEATURES,
    REQUIRED_FEATURES,
)
from reggaeton.timeutil import utcnow

DATA_FILES = {"data_reggaeton.csv": 1, "data_todotipo.csv": 0, "data_test.csv": None}


@dataclass(frozen=True)
class Drift:
    """``feature`` shifted (``+``/``-``) or scaled (``*``) by ``value``."""

    feature: str
    op: str
    value: float

    def apply(self, column: pd.Series) -> pd.Series:
        """The drifted column, clipped to the schema bounds (categoricals rounded)."""
        out = column + self.value if self.op == "+" else column * self.value
        feature = FEATURES_BY_NAME[self.feature]
        out = out.clip(lower=feature.minimum, upper=feature.maximum)
        return out.round() if feature.dtype == "int" else out


def parse_drift(spec: str) -> Drift:
    """Parse ``tempo=+20``, ``tempo=-5`` or ``loudness=*1.2``.

    Raises:
        ValueError: naming the bad part of the spec.
    """
    name, sep, rest = spec.partition("=")
    name = name.strip()
    if not sep or name not in FEATURES_BY_NAME:
        raise ValueError(
            f"--drift {spec!r}: expected FEATURE=+N, FEATURE=-N or FEATURE=*F "
            f"with FEATURE one of {', '.join(FEATURES_BY_NAME)}"
        )
    rest = rest.strip()
    try:
        if rest.startswith("*"):
            return Drift(name, "*", float(rest[1:]))
        if rest[:1] in "+-" and rest:
            return Drift(name, "+", float(rest))
    except ValueError:
        pass
    raise ValueError(f"--drift {spec!r}: the change must look like +20, -5 or *1.2")


def load_songs(data_dir: str | Path = "data") -> pd.DataFrame:
    """Every song of the seed CSVs: schema features plus ``label`` (NaN when unlabelled)."""
    frames = []
    for name, label in DATA_FILES.items():
        df = pd.read_csv(Path(data_dir) / name)
        keep = [f.name for f in FEATURES if f.name in df]
        part = df[keep].astype(float)
        part[LABEL_COLUMN] = np.nan if label is None else float(label)
        frames.append(part)
    songs = pd.concat(frames, ignore_index=True)
    required = [f for f in REQUIRED_FEATURES if f in songs]
    return songs.dropna(subset=required).reset_index(drop=True)  # the service rejects them


def build_traffic(
    songs: pd.DataFrame, n: int, seed: int, drifts: Sequence[Drift] = ()
) -> pd.DataFrame:
    """``n`` songs resampled with replacement, with the drifts applied."""
    rng = np.random.default_rng(seed)
    frame = songs.iloc[rng.integers(0, len(songs), size=n)].reset_index(drop=True)
    for d in drifts:
        frame[d.feature] = d.apply(frame[d.feature])
    return frame


def simulate(
    store: RecordStore,
    registry: Registry,
    *,
    n: int = 2000,
    seed: int = 0,
    drifts: Sequence[Drift] = (),
    feedback: float = 0.0,
    flip: float = 0.0,
    start: datetime | None = None,
    end: datetime | None = None,
    model_tag: str | None = None,
    data_dir: str | Path = "data",
    batch: int = 10_000,
    feedback_at: datetime | None = None,
) -> dict[str, Any]:
    """Score and log ``n`` simulated requests; return what was written.

    Args:
        store / registry: Destination log and the model store (serving version scores).
        n / seed: Number of records and the random seed.
        drifts: Changes applied to the inputs.
        feedback: Fraction of labelled songs that receive their label as feedback.
        flip: Fraction of those feedback labels that are inverted.
        start / end: Timestamps are spread uniformly in ``[start, end)`` (default: last hour).
        model_tag: Score with this version (default: the promoted one).
        data_dir: Folder of the seed CSVs.
        batch: Records per ``write_many`` call.
        feedback_at: When the feedback labels arrive (default: now), e.g. a day after the
            predictions, as ground truth usually does.
    """
    for name, value in (("--feedback", feedback), ("--flip", flip)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name}: must be between 0 and 1, got {value}")
    if n < 1:
        raise ValueError("--n: must be >= 1")
    version = registry.serving_version(model_tag)
    pipeline = registry.load_pipeline(version)
    features = list(version.metadata.get("features") or MODEL_FEATURES)
    end = end or utcnow()
    start = start or end - timedelta(hours=1)
    rng = np.random.default_rng(seed + 1)
    frame = build_traffic(load_songs(data_dir), n, seed, drifts)
    raw = pipeline.predict_proba(frame[features].to_numpy(dtype=float))[:, 1]
    # the probability the service serves: the version's calibration map over the raw score
    proba = apply_calibration(raw, version.metadata.get("calibration"))
    pred = decide(proba, version.threshold)
    span_us = max(int((end - start).total_seconds() * 1e6), 1)
    offsets = np.sort(rng.integers(0, span_us, size=n))
    token = uuid.uuid4().hex[:10]
    stamps = [start + timedelta(microseconds=int(o)) for o in offsets]
    written = _write_predictions(store, version.tag, frame, proba, pred, stamps, token, batch)
    labels = frame[LABEL_COLUMN].to_numpy()
    give = (~np.isnan(labels)) & (rng.random(n) < feedback)
    invert = give & (rng.random(n) < flip)
    fed, flipped = 0, 0
    for i in np.flatnonzero(give):
        label = int(labels[i]) ^ int(invert[i])
        if store.add_feedback(f"sim-{token}-{i}", label, at=feedback_at):
            fed += 1
            flipped += int(invert[i])
    return {
        "written": written,
        "feedback": fed,
        "flipped": flipped,
        "model_version": version.tag,
        "positive_rate": float(pred.mean()),
        "since": start.isoformat(),
        "until": end.isoformat(),
        "drifts": [f"{d.feature}{'*' if d.op == '*' else '+'}{d.value:g}" for d in drifts],
    }


def _write_predictions(
    store: RecordStore,
    tag: str,
    frame: pd.DataFrame,
    proba: np.ndarray,
    pred: np.ndarray,
    stamps: Sequence[datetime],
    token: str,
    batch: int,
) -> int:
    """Log one prediction record per row of ``frame``, ``batch`` records per write."""
    feats = [f.name for f in FEATURES if f.name in frame]
    values = frame[feats].to_numpy(dtype=float)
    written = 0
    for lo in range(0, len(frame), batch):
        records = [
            PredictionRecord(
                request_id=f"sim-{token}-{i}",
                model_version=tag,
                features={k: float(v) for k, v in zip(feats, values[i], strict=True) if v == v},
                probability=float(proba[i]),
                prediction=int(pred[i]),
                latency_ms=1.0,
                source="batch",
                timestamp=stamps[i],
            )
            for i in range(lo, min(lo + batch, len(frame)))
        ]
        written += store.write_many(records)
    return written


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    p = argparse.ArgumentParser(
        prog="python -m monitoring.simulate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--store", help="prediction log URI (default PREDICTION_STORE_URI)")
    p.add_argument("--home", help="model store home (default BENTOML_HOME)")
    p.add_argument("--model-tag", help="score with this version (default: promoted)")
    p.add_argument("--n", type=int, default=2000, help="records to write (2000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--drift",
        action="append",
        default=[],
        type=_drift_arg,
        metavar="FEATURE=+N|*F",
        help="inject drift (repeatable)",
    )
    p.add_argument("--feedback", type=float, default=0.0, help="fraction with feedback labels")
    p.add_argument("--flip", type=float, default=0.0, help="fraction of feedback inverted")
    p.add_argument("--hours", type=float, default=1.0, help="spread over the last N hours")
    p.add_argument(
        "--ago-hours",
        type=float,
        default=0.0,
        help="the traffic ends this many hours ago (default 0: now); with "
        "--feedback, labels are stamped now: late ground truth",
    )
    p.add_argument("--data-dir", default="data")
    args = p.parse_args(argv)
    from monitoring.config import MonitoringEnv
    from reggaeton.records.factory import open_store
    from reggaeton.registry import home_from_env
    from reggaeton.settings import load_env

    try:
        env = load_env(MonitoringEnv, os.environ)  # the monitor's reading of the same variables
        store = open_store(args.store or env.store_uri)
        registry = Registry(args.home or env.bentoml_home or home_from_env())
        end = utcnow() - timedelta(hours=args.ago_hours)
        out = simulate(
            store,
            registry,
            n=args.n,
            seed=args.seed,
            drifts=args.drift,
            feedback=args.feedback,
            flip=args.flip,
            start=end - timedelta(hours=args.hours),
            end=end,
            model_tag=args.model_tag or env.model_tag,
            data_dir=args.data_dir,
        )
        store.close()
    except Exception as exc:
        print(f"simulate: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(
        f"simulate: wrote {out['written']:,} predictions of {out['model_version']} "
        f"({out['since']} -> {out['until']}), {out['feedback']:,} feedback labels "
        f"({out['flipped']} flipped), drift: {', '.join(out['drifts']) or 'none'}"
    )
    return 0


def _drift_arg(spec: str) -> Drift:
    try:
        return parse_drift(spec)
    except ValueError as exc:  # argparse shows ArgumentTypeError messages verbatim
        raise argparse.ArgumentTypeError(str(exc)) from exc


if __name__ == "__main__":
    sys.exit(main())
