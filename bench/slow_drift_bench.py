"""Slow drift: detection and false alarms of the current window vs the long window (issue 14).

``python -m bench.slow_drift_bench [--power-trials 50] [--null-trials 300] [--runs 4]
[--window 1500] [--shift 0.5]``

A held-out simulation: in every trial the reference and each window are *fresh, independent*
draws from one population, so no window ever replays the reference's rows (replaying them is a
much easier null, see monitoring/README.md). The population is a smoothed bootstrap of the
2,350 songs in ``data/``: a song drawn at random, each numeric feature jittered by Gaussian
noise of 5% of its standard deviation (clipped to the schema bounds), categorical features as
they are; the reference has the real reference sample's size (1,772 training rows).

Each trial runs the monitor's own code on ``--runs`` consecutive windows of ``--window`` songs:
``VersionScan`` accumulators per window, their stored counts (``encode_counts`` /
``decode_counts``), the long window (``longwindow.merge``) and ``assess_drift`` at the last
window, with the default threshold (0.045) and Bonferroni. It reports, at that last window:

* today's rule: the current window alone, Bonferroni over the 14 features;
* with the long window: the current window and the long window in one family (2 x 14 tests);
  a feature counts as detected when either window flags it.

(a) power: ``loudness + shift`` dB in every window; (b) false alarms: no shift (any alarm on
any feature is false), over ``--null-trials`` runs (>= 200).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

T0 = datetime(2026, 1, 1, tzinfo=UTC)
REFERENCE_ROWS = 1772
JITTER = 0.05


def population(data_dir: str = "data"):
    """A sampler ``(rng, n, shift) -> DataFrame`` of the smoothed-bootstrap population."""
    from monitoring.simulate import load_songs
    from reggaeton.schema import FEATURES

    songs = load_songs(data_dir)
    numeric = [f for f in FEATURES if not f.categorical and f.name in songs]
    scale = {f.name: JITTER * float(songs[f.name].std()) for f in numeric}

    def draw(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
        frame = songs.iloc[rng.integers(0, len(songs), size=n)].reset_index(drop=True)
        for f in numeric:
            v = frame[f.name].to_numpy(float) + rng.normal(0.0, scale[f.name], size=n)
            if f.name == "loudness":
                v = v + shift
            frame[f.name] = np.clip(v, f.minimum, f.maximum)
        frame["prediction"], frame["probability"], frame["feedback_label"] = 0, np.nan, np.nan
        return frame

    return draw


def trial(
    draw, rng: np.random.Generator, runs: int, window: int, shift: float, config
) -> dict[str, set[str]]:
    """One sequence of ``runs`` windows against a fresh reference: the features flagged at the
    last window by today's rule (``short_only``) and, with the long window, by each window."""
    from monitoring.assess import assess_drift
    from monitoring.longwindow import decode_counts, encode_counts, merge
    from monitoring.reference import Reference
    from monitoring.window import VersionScan, WindowScan
    from reggaeton.schema import FEATURES

    ref_frame = draw(rng, REFERENCE_ROWS).drop(
        columns=["prediction", "probability", "feedback_label"]
    )
    present = [f for f in FEATURES if ref_frame[f.name].notna().any()]
    ref = Reference(
        tag="sim",
        sample=ref_frame,
        metadata={},
        numeric=[f.name for f in present if not f.categorical],
        categorical=[f.name for f in present if f.categorical],
    )
    previous = []
    for k in range(runs):
        since, until = T0 + timedelta(hours=k), T0 + timedelta(hours=k + 1)
        vs = VersionScan("sim", ref)
        vs.update(draw(rng, window, shift))
        if k < runs - 1:  # as a run stores them; the newest first
            previous.insert(
                0,
                (
                    f"run{k}",
                    decode_counts(encode_counts(WindowScan(since, until, versions={"sim": vs}))),
                ),
            )
    short_only = assess_drift(vs, config)
    long = merge(vs, until, since, previous)
    both = assess_drift(vs, config, long)
    return {
        "short_only": set(short_only["drifted"]),
        "short": set(both["drifted"]),
        "long": set(both["long_window"]["drifted"]) if long else set(),
    }


def simulate(
    trials: int, runs: int, window: int, shift: float, seed: int, label: str
) -> dict[str, list[set[str]]]:
    """``trials`` independent sequences; progress on stderr every 10%."""
    from monitoring.config import MonitoringConfig

    config = MonitoringConfig()
    draw = population()
    rng = np.random.default_rng(seed)
    out: dict[str, list[set[str]]] = {"short_only": [], "short": [], "long": []}
    t = time.perf_counter()
    for i in range(trials):
        for key, flagged in trial(draw, rng, runs, window, shift, config).items():
            out[key].append(flagged)
        if (i + 1) % max(1, trials // 10) == 0 or i + 1 == trials:
            print(
                f"bench: {label} {i + 1}/{trials} trials {time.perf_counter() - t:.0f}s",
                file=sys.stderr,
                flush=True,
            )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.slow_drift_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--power-trials", type=int, default=50)
    p.add_argument("--null-trials", type=int, default=300)
    p.add_argument("--runs", type=int, default=4, help="runs in the long window")
    p.add_argument("--window", type=int, default=1500, help="songs per run")
    p.add_argument("--shift", type=float, default=0.5, help="loudness shift in dB")
    p.add_argument("--seed", type=int, default=20261201)
    args = p.parse_args(argv)
    print(
        f"slow drift: {args.runs} consecutive windows of {args.window:,} songs, reference "
        f"{REFERENCE_ROWS:,} songs, threshold 0.045, Bonferroni; fresh independent draws"
    )
    if args.power_trials:
        res = simulate(args.power_trials, args.runs, args.window, args.shift, args.seed, "power")
        n = args.power_trials
        hit = {k: sum("loudness" in s for s in v) for k, v in res.items()}
        either = sum("loudness" in a | b for a, b in zip(res["short"], res["long"], strict=True))
        other = sum(
            bool((a | b) - {"loudness"}) for a, b in zip(res["short"], res["long"], strict=True)
        )
        print(
            f"\n(a) loudness +{args.shift:g} dB in every window, {n} trials, at the last "
            f"window (long window = {args.runs} runs, {args.runs * args.window:,} songs):"
        )
        print(
            f"  today's rule (current window, 14 tests): {hit['short_only']}/{n} = "
            f"{hit['short_only'] / n:.0%}"
        )
        print(f"  current window within 2 x 14 tests:      {hit['short']}/{n}")
        print(
            f"  long window within 2 x 14 tests:         {hit['long']}/{n} = {hit['long'] / n:.0%}"
        )
        print(f"  either window (the run's verdict):       {either}/{n} = {either / n:.0%}")
        print(f"  another feature flagged as well:         {other}/{n}")
    if args.null_trials:
        res = simulate(args.null_trials, args.runs, args.window, 0.0, args.seed + 1, "null")
        n = args.null_trials
        today = sum(bool(s) for s in res["short_only"])
        combined = sum(bool(a | b) for a, b in zip(res["short"], res["long"], strict=True))
        long_only = sum(bool(s) for s in res["long"])
        print(f"\n(b) no shift, {n} null runs (any alarm is false; bound: 4.5% per run):")
        print(f"  today's rule (current window, 14 tests): {today}/{n} = {today / n:.1%}")
        print(
            f"  with the long window (2 x 14 tests):     {combined}/{n} = {combined / n:.1%}"
            f" (long window alone {long_only})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
