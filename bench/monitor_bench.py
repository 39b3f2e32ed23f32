"""Benchmark of the monitoring job: profile + compare windows of 10k .. 1M logged predictions.

``python -m bench.monitor_bench [--sizes 10000,100000,1000000] [--db PATH] [--home PATH]``
``python -m bench.monitor_bench --false-alarms 300`` (drift-test false-alarm rates instead)

1. Trains a fast model into ``--home`` when it holds no promoted version.
2. Writes ``max(sizes)`` simulated predictions (real model probabilities, 2% with feedback)
   into one SQLite log (``--db``, reused when it already holds enough records), at uniformly
   random times over ``max(sizes)`` seconds, so the window ``[T0, T0 + n s)`` holds about
   ``n`` records.
3. For each size, runs ``monitoring.monitor.run`` over that window in a fresh subprocess and
   prints wall time (scan = read + profile + accumulate; total = scan + tests + report +
   store) and the subprocess' peak RSS (``VmHWM``), next to its RSS after imports.

Target (issue): 1,000,000 records in < 60 s with < 1 GiB peak memory.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def ensure_model(home: Path) -> None:
    """Train a fast model into ``home`` unless one is promoted there."""
    from reggaeton.registry import Registry

    registry = Registry(home)
    if registry.promotions.current():
        return
    from training.config import ORIGINAL_CONFIG, load_config
    from training.train import run_training

    print(f"bench: training a fast model into {home}", flush=True)
    run_training(
        load_config(ORIGINAL_CONFIG, ["model.params.n_estimators=40", "cv.folds=3"]),
        registry,
        tracking_uri=None,
    )


def ensure_log(db: Path, home: Path, n: int) -> None:
    """Fill the SQLite log with ``n`` simulated records at one per second from T0."""
    from monitoring.simulate import simulate
    from reggaeton.records.sqlite import SQLiteStore
    from reggaeton.registry import Registry

    if db.exists():
        store = SQLiteStore(db)
        have = store.count()
        store.close()
        if have >= n:
            return
        for suffix in ("", "-wal", "-shm"):  # too small: start over
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    store = SQLiteStore(db)
    print(f"bench: writing {n:,} simulated predictions into {db} (one-off)", flush=True)
    t = time.perf_counter()
    out = simulate(
        store,
        Registry(home),
        n=n,
        seed=7,
        feedback=0.02,
        start=T0,
        end=T0 + timedelta(seconds=n),
        batch=20_000,
    )
    store.close()
    print(
        f"bench: wrote {out['written']:,} records, {out['feedback']:,} feedback labels in "
        f"{time.perf_counter() - t:.0f}s",
        flush=True,
    )


def _status_mib(field: str) -> float:
    """A memory field of /proc/self/status in MiB (``VmHWM`` = peak RSS of this process).

    ``ru_maxrss`` is not used: Linux carries it over ``fork``/``exec`` from the parent.
    """
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure_one(db: Path, home: Path, n: int, workdir: Path) -> dict[str, float]:
    """Run the monitor over the first ``n`` records (call in a fresh process)."""
    from monitoring.config import MonitoringConfig
    from monitoring.monitor import run
    from reggaeton.records.sqlite import SQLiteStore
    from reggaeton.registry import Registry

    rss_imports = _status_mib("VmRSS")
    config = MonitoringConfig(
        reports_dir=str(workdir / "reports"), state_dir=str(workdir / "state")
    )
    store = SQLiteStore(db)
    t = time.perf_counter()
    summary = run(
        config, store, Registry(home), since=T0, until=T0 + timedelta(seconds=n), progress=None
    )
    wall = time.perf_counter() - t
    store.close()
    return {
        "records": summary["window"]["rows"],
        "scan_s": summary["timings_s"]["scan"],
        "total_s": wall,
        "rss_after_imports_mib": rss_imports,
        "peak_rss_mib": _status_mib("VmHWM"),
        "status": summary["status"],
    }


def false_alarms(trials: int, seed: int = 0) -> None:
    """False-alarm rate of the drift tests under a true null, with each correction.

    Each trial splits the labelled songs at random into a reference (80%) and a disjoint
    window (20%): two independent samples of one population, so every alarm is false.
    """
    import numpy as np

    from monitoring import drift
    from monitoring.simulate import load_songs
    from reggaeton.schema import FEATURES

    songs = load_songs()
    songs = songs[songs["label"].notna()].reset_index(drop=True)
    rng = np.random.default_rng(seed)
    alarms = {"none": 0, "bonferroni": 0, "holm": 0}
    per_test = tests = 0
    for _ in range(trials):
        order = rng.permutation(len(songs))
        cut = int(0.8 * len(songs))
        ref, win = songs.iloc[order[:cut]], songs.iloc[order[cut:]]
        pvalues = {}
        for f in FEATURES:
            r, w = ref[f.name].to_numpy(float), win[f.name].to_numpy(float)
            if np.isfinite(r).sum() == 0 or np.isfinite(w).sum() == 0:
                continue
            if f.categorical:
                res = drift.chi_square_test(drift.count_values(r), drift.count_values(w))
            else:
                acc = drift.EcdfAccumulator(r)
                acc.update(w)
                res = drift.ks_test(acc)
            pvalues[f.name] = res["pvalue"]
        per_test += sum(p < 0.045 for p in pvalues.values())
        tests += len(pvalues)
        for method in alarms:
            adjusted = drift.adjust_pvalues(pvalues, method)
            alarms[method] += any(p < 0.045 for p in adjusted.values())
    print(
        f"\nfalse alarms under a true null ({trials} random 80/20 splits of the labelled "
        f"songs, {len(pvalues)} features, threshold 0.045):"
    )
    print(f"  per single test: {per_test / tests:.3%}")
    for method, count in alarms.items():
        print(f"  per run, correction {method:<10}: {count}/{trials} = {count / trials:.1%}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.monitor_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--sizes", default="10000,100000,1000000")
    p.add_argument("--db", default="var/bench/monitor_bench.db")
    p.add_argument("--home", default="var/bench/bentoml")
    p.add_argument("--workdir", default="var/bench/monitor")
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: measure one size
    p.add_argument(
        "--false-alarms",
        type=int,
        metavar="TRIALS",
        help="instead: false-alarm rate of the drift tests over TRIALS null splits",
    )
    args = p.parse_args(argv)
    if args.false_alarms:
        false_alarms(args.false_alarms)
        return 0
    db, home, workdir = Path(args.db), Path(args.home), Path(args.workdir)
    if args.one:
        print(json.dumps(measure_one(db, home, args.one, workdir)))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    ensure_model(home)
    ensure_log(db, home, max(sizes))
    rows = []
    for n in sizes:
        cmd = [
            sys.executable,
            "-m",
            "bench.monitor_bench",
            "--one",
            str(n),
            "--db",
            str(db),
            "--home",
            str(home),
            "--workdir",
            str(workdir),
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(
            f"bench: {r['records']:>9,} records  scan {r['scan_s']:6.1f}s  total "
            f"{r['total_s']:6.1f}s  peak RSS {r['peak_rss_mib']:6.0f} MiB",
            flush=True,
        )
    print("\nmonitoring job: profile + compare a window of the SQLite prediction log")
    print(
        f"{'records':>10} {'scan s':>8} {'total s':>8} {'rec/s':>10} {'RSS imports':>12} "
        f"{'peak RSS':>9}  status"
    )
    for r in rows:
        print(
            f"{r['records']:>10,} {r['scan_s']:>8.1f} {r['total_s']:>8.1f} "
            f"{r['records'] / r['total_s']:>10,.0f} {r['rss_after_imports_mib']:>9.0f} MiB "
            f"{r['peak_rss_mib']:>5.0f} MiB  {r['status']}"
        )
    big = rows[-1]
    ok = big["total_s"] < 60 and big["peak_rss_mib"] < 1024
    print(
        f"\ntarget (1,000,000 records < 60 s, < 1 GiB): "
        f"{'met' if ok else 'NOT met'} at {big['records']:,} records"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
