"""Benchmark of offline scoring (``python -m service.score``) on a generated catalogue.

Generates a Parquet catalogue of valid songs (bounded memory, row groups of
131,072 rows: the CLI's chunk),
then runs the real CLI as child processes and reads their resource usage (``os.wait4``):

- rows/s per core: rows / CPU seconds of the child, minus the CPU of a run on an empty shard
  (interpreter start and model load, paid once per process);
- peak RSS of the child (the chunks are bounded: it must not grow with the input);
- linearity: the same at a tenth of the size (rows per CPU second, the fixed cost excluded,
  and the peak RSS should be about equal; CPU time, unlike wall time, ignores other load);
- processes: ``--processes`` shards of the full file at once (an Indexed Job on one machine).

Prints the numbers and MET / NOT MET for the goals of issue 13 (>= 200k rows/s per core,
< 1 GiB). Usage: ``python -m bench.score_bench [--rows 10000000] [--processes 2]``; needs a
promoted model in ``BENTOML_HOME`` (``make train``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

GOAL_ROWS_PER_CORE = 200_000
GOAL_RSS_BYTES = 1 << 30
ROW_GROUP = 131_072


def generate(path: Path, rows: int, seed: int = 0) -> None:
    """Write ``rows`` random in-bounds songs to ``path`` (Parquet), one row group at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from reggaeton.schema import FEATURES

    rng = np.random.default_rng(seed)
    writer = None
    for start in range(0, rows, ROW_GROUP):
        n = min(ROW_GROUP, rows - start)
        cols: dict[str, object] = {}
        for f in FEATURES:
            low = f.minimum + (1e-3 if f.exclusive_minimum else 0.0)
            values = rng.uniform(low, f.maximum, n)
            cols[f.name] = np.round(values) if f.dtype == "int" else values
        cols["id_new"] = np.arange(start, start + n, dtype=np.int64)
        table = pa.table(cols)
        writer = writer or pq.ParquetWriter(str(path), table.schema)
        writer.write_table(table, row_group_size=ROW_GROUP)
    if writer is not None:
        writer.close()


def run(source: Path, out: Path, index: int = 0, count: int = 1) -> dict:
    """Start one scoring process; return its summary plus CPU seconds and peak RSS."""
    cmd = [
        sys.executable,
        "-m",
        "service.score",
        "--input",
        str(source),
        "--output",
        str(out),
        "--shard-index",
        str(index),
        "--shard-count",
        str(count),
        "--no-progress",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"scoring failed ({proc.returncode}): {' '.join(cmd)}")
    summary = json.loads(output.strip().splitlines()[-1])
    summary.update(cpu=usage.ru_utime + usage.ru_stime, rss=usage.ru_maxrss * 1024)
    return summary


def measure(source: Path, work: Path, rows: int, overhead: float) -> dict:
    """One single-process run over the whole file."""
    result = run(source, work / f"single-{rows}.parquet")
    cpu = max(result["cpu"] - overhead, 1e-9)
    return {
        "rows": rows,
        "scoring_s": result["seconds"],
        "cpu_s": cpu,
        "rows_per_core_s": rows / cpu,
        "rows_per_s": rows / result["seconds"],
        "peak_rss_mib": result["rss"] / 2**20,
    }


def main(argv: list[str] | None = None) -> int:
    """Generate, run, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="catalogue size")
    parser.add_argument("--processes", type=int, default=2, help="shards run at once")
    parser.add_argument("--work", type=Path, help="folder for the files (default: a temp dir)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        work = Path(tmp)
        small, big = work / "small.parquet", work / "big.parquet"
        t0 = time.perf_counter()
        generate(big, args.rows)
        generate(small, max(args.rows // 10, 1))
        print(f"generated {args.rows:,} rows in {time.perf_counter() - t0:.1f} s", flush=True)
        empty = run(small, work / "empty", index=0, count=10**9)  # an empty shard: fixed cost
        overhead = empty["cpu"]
        print(
            f"fixed cost per process (start, model load): {overhead:.2f} CPU s, "
            f"{empty['rss'] / 2**20:.0f} MiB",
            flush=True,
        )
        rows = [
            measure(small, work, max(args.rows // 10, 1), overhead),
            measure(big, work, args.rows, overhead),
        ]
        parallel = _parallel(big, work, args.processes)
    report(rows, parallel, args.processes, overhead)
    return 0


def _parallel(source: Path, work: Path, count: int) -> dict:
    """``count`` shards of one file at once; the wall time and the summed rows."""
    import concurrent.futures as cf

    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(count) as pool:
        parts = list(pool.map(lambda i: run(source, work / "parts", i, count), range(count)))
    wall = time.perf_counter() - t0
    return {
        "rows": sum(p["rows"] for p in parts),
        "wall_s": wall,
        "max_rss_mib": max(p["rss"] for p in parts) / 2**20,
    }


def report(rows: list[dict], parallel: dict, processes: int, overhead: float) -> None:
    """Print the table and the verdicts."""
    print("\n| rows | scoring s | rows/s (1 process) | rows/s per core | peak RSS MiB |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['rows']:,} | {r['scoring_s']:.1f} | {r['rows_per_s']:,.0f} | "
            f"{r['rows_per_core_s']:,.0f} | {r['peak_rss_mib']:.0f} |"
        )
    scale = rows[1]["rows_per_core_s"] / rows[0]["rows_per_core_s"]
    wall = rows[1]["rows_per_s"] / rows[0]["rows_per_s"]
    rate = parallel["rows"] / parallel["wall_s"]
    print(
        f"\nlinearity: rows per CPU second at full size / at a tenth = {scale:.2f} (1.00 = "
        f"linear; wall rows/s ratio {wall:.2f}, load-sensitive); peak RSS "
        f"{rows[1]['peak_rss_mib']:.0f} vs {rows[0]['peak_rss_mib']:.0f} MiB"
    )
    print(
        f"{processes} processes (shards) at once: {parallel['rows']:,} rows in "
        f"{parallel['wall_s']:.1f} s wall (start included) = {rate:,.0f} rows/s, "
        f"{rate / rows[1]['rows_per_s']:.2f}x one process; max RSS "
        f"{parallel['max_rss_mib']:.0f} MiB (cores here: {os.cpu_count()})"
    )
    best = rows[1]["rows_per_core_s"]
    rss = max(r["peak_rss_mib"] for r in rows) * 2**20
    print(
        f"goal >= {GOAL_ROWS_PER_CORE:,} rows/s per core: {best:,.0f} -> "
        f"{'MET' if best >= GOAL_ROWS_PER_CORE else 'NOT MET'}"
    )
    print(
        f"goal peak RSS < 1 GiB: {rss / 2**20:.0f} MiB -> "
        f"{'MET' if rss < GOAL_RSS_BYTES else 'NOT MET'}"
    )
    print(f"goal linear in rows: {scale:.2f} -> {'MET' if 0.8 <= scale <= 1.25 else 'NOT MET'}")


if __name__ == "__main__":
    raise SystemExit(main())
