"""Run the matrix against one started side: check the answers, warm up, load every cell."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import payloads
from bench.loadgen import run_hey, warm_up
from bench.report import Cell
from bench.servers import Launch, post_json


@dataclass(frozen=True)
class Bodies:
    """Request body files per protocol and row count."""

    folder: Path
    songs: list[dict[str, Any]]

    def path(self, protocol: str, rows: int) -> Path:
        """Body file for ``protocol`` ("api" or "v2") with ``rows`` songs (written once)."""
        path = self.folder / f"body_{protocol}_{rows}.json"
        if not path.exists():
            songs = self.songs[:rows]
            body = (
                payloads.v2_body(songs)
                if protocol == "v2"
                else payloads.api_body(songs, single=rows == 1)
            )
            payloads.write_body(path, body)
        return path

    def body(self, protocol: str, rows: int) -> dict[str, Any]:
        """The decoded body (for the correctness check)."""
        import json

        return json.loads(self.path(protocol, rows).read_text())


def check_answers(
    launch: Launch, bodies: Bodies, expected: np.ndarray, rows: int = 100
) -> dict[str, Any]:
    """Send one single-row and one batch request; compare probabilities with ``expected``.

    Returns:
        ``{"ok": bool, "max_abs_diff": float, "detail": str}``.
    """
    diffs: list[float] = []
    for n, path in ((1, launch.single_path), (rows, launch.batch_path)):
        status, answer = post_json(launch.url(path), bodies.body(launch.protocol, n))
        if status != 200:
            return {"ok": False, "max_abs_diff": None, "detail": f"{path} -> {status}: {answer}"}
        decode = (
            payloads.v2_probabilities if launch.protocol == "v2" else payloads.api_probabilities
        )
        got = np.asarray(decode(answer), dtype=float)
        if got.shape != (n,):
            return {
                "ok": False,
                "max_abs_diff": None,
                "detail": f"{path}: {got.shape[0]} results for {n} rows",
            }
        diffs.append(float(np.max(np.abs(got - expected[:n]))))
    worst = max(diffs)
    return {"ok": worst < 1e-6, "max_abs_diff": worst, "detail": "single and batch checked"}


def process_cpu(launch: Launch) -> dict[int, float]:
    """CPU seconds (user + system) used so far by the side's process and its descendants,
    by pid: shows how the load spread over the workers."""
    import psutil

    out: dict[int, float] = {}
    for pid in [launch.pid, *launch.worker_pids()] if launch.pid else []:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        out[pid] = times.user + times.system
    return out


EVENT_LOOP_LIBS = {"uvloop": "uvloop/loop.", "httptools": "httptools/parser/"}
"""Native modules whose presence in a worker's memory map shows uvicorn picked them."""


def loaded_libs(launch: Launch) -> dict[str, list[bool]]:
    """For uvloop and httptools, whether each worker process has it loaded (read from
    ``/proc/<pid>/maps``): uvicorn's ``auto`` loop and parser fall back to asyncio and h11
    silently, so the bench checks what the server really runs."""
    import psutil

    out: dict[str, list[bool]] = {name: [] for name in EVENT_LOOP_LIBS}
    for pid in launch.worker_pids():
        try:
            if "worker" not in " ".join(psutil.Process(pid).cmdline()):
                continue  # BentoML's HTTP workers only
            maps = Path(f"/proc/{pid}/maps").read_text()
        except (OSError, psutil.Error):
            continue
        for name, marker in EVENT_LOOP_LIBS.items():
            out[name].append(marker in maps)
    return out


def run_side(
    launch: Launch,
    bodies: Bodies,
    cells: list[Cell],
    seconds: float,
    warmup_requests: int,
    after_cell: Callable[[Cell, int], None] | None = None,
) -> tuple[dict[str, dict[str, Any]], int]:
    """Warm each endpoint, then load every cell for ``seconds``.

    Args:
        launch: The started side.
        bodies: Request bodies.
        cells: Cells to load, in order.
        seconds: Load time per cell.
        warmup_requests: Single-row warm-up requests (batches get a twentieth, at least 10).
        after_cell: Called after each cell with it and the rows answered with 2xx so far
            (warm-up included; the caller adds its own check requests), e.g. to count the
            prediction log right after the batch phase.

    Returns:
        (cell key -> CellResult dict, rows answered with 2xx during the warm-up).
    """
    warm_rows = 0
    for rows in sorted({c.rows for c in cells}):
        path = launch.single_path if rows == 1 else launch.batch_path
        count = warmup_requests if rows == 1 else max(10, warmup_requests // 20)
        warm = warm_up(launch.url(path), bodies.path(launch.protocol, rows), requests=count)
        warm_rows += warm.ok * rows
    out: dict[str, dict[str, Any]] = {}
    for cell in cells:
        path = launch.single_path if cell.rows == 1 else launch.batch_path
        before = process_cpu(launch)
        result = run_hey(
            launch.url(path),
            bodies.path(launch.protocol, cell.rows),
            cell.concurrency,
            seconds,
            cell.rows,
        )
        cpu = [round(process_cpu(launch).get(pid, t) - t, 2) for pid, t in before.items()]
        out[cell.key] = {**result.to_dict(), "process_cpu_s": cpu}
        print(
            f"[bench] {launch.name:22s} {cell.label:18s} {result.requests_per_s:9,.0f} req/s "
            f"{result.rows_per_s:11,.0f} rows/s p50 {result.p50_ms or 0:.2f} ms "
            f"p99 {result.p99_ms or 0:.2f} ms "
            f"errors {result.errors}; CPU s per server process "
            f"{'/'.join(f'{c:.1f}' for c in cpu if c >= 0.05) or '-'}",
            flush=True,
        )
        if after_cell is not None:
            answered = warm_rows + sum(out[c.key]["ok"] * c.rows for c in cells if c.key in out)
            after_cell(cell, answered)
    return out, warm_rows
