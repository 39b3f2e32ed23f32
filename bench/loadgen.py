"""Drive one benchmark cell with ``hey`` and parse its summary into numbers."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

INSTALL_HINT = "hey (HTTP load generator) is missing: install it with `apt-get install -y hey`"


@dataclass(frozen=True)
class CellResult:
    """What one load run measured. Latencies in milliseconds; rates per second."""

    requests: int
    ok: int
    errors: int
    duration_s: float
    requests_per_s: float
    rows_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    status_codes: dict[str, int]
    error_samples: list[str]

    def to_dict(self) -> dict:
        """Plain dict for the JSON results file."""
        return asdict(self)


def require_hey() -> str:
    """Path of the ``hey`` binary, or SystemExit with the install command."""
    path = shutil.which("hey")
    if not path:
        raise SystemExit(INSTALL_HINT)
    return path


def _number(pattern: str, text: str) -> float | None:
    match = re.search(pattern, text, re.M)
    return float(match.group(1)) if match else None


def parse_hey(text: str, rows_per_request: int) -> CellResult:
    """Parse hey's text summary.

    Requests per second count only 2xx answers over the run's wall time; every non-2xx
    status and every transport error counts as an error.

    Args:
        text: hey's standard output.
        rows_per_request: Songs per request body, to turn requests/s into rows/s.

    Returns:
        The parsed cell.
    """
    total = _number(r"^\s*Total:\s+([\d.]+) secs", text) or 0.0
    codes = {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"^\s*\[(\d{3})\]\s+(\d+) responses", text, re.M)
    }
    error_section = text.split("Error distribution:", 1)[1] if "Error distribution:" in text else ""
    transport = [
        (int(m.group(1)), m.group(2).strip())
        for m in re.finditer(r"^\s*\[(\d+)\]\s+(.+)$", error_section, re.M)
    ]
    ok = sum(n for code, n in codes.items() if code.startswith("2"))
    errors = sum(n for code, n in codes.items() if not code.startswith("2")) + sum(
        n for n, _ in transport
    )
    p50 = _number(r"^\s*50%+ in ([\d.]+) secs", text)
    p99 = _number(r"^\s*99%+ in ([\d.]+) secs", text)
    if p99 is None and ok:  # hey skips the line under ~100 answers: nearest rank = the slowest
        p99 = _number(r"^\s*Slowest:\s+([\d.]+) secs", text)
    rps = ok / total if total else 0.0
    return CellResult(
        requests=ok + errors,
        ok=ok,
        errors=errors,
        duration_s=total,
        requests_per_s=rps,
        rows_per_s=rps * rows_per_request,
        p50_ms=None if p50 is None else p50 * 1000,
        p99_ms=None if p99 is None else p99 * 1000,
        status_codes=codes,
        error_samples=[msg for _, msg in transport[:3]],
    )


def run_hey(
    url: str,
    body: Path,
    concurrency: int,
    seconds: float,
    rows_per_request: int,
    timeout_s: int = 20,
) -> CellResult:
    """POST ``body`` to ``url`` for ``seconds`` with ``concurrency`` connections and parse it."""
    argv = [
        require_hey(),
        "-z",
        f"{seconds}s",
        "-c",
        str(concurrency),
        "-m",
        "POST",
        "-T",
        "application/json",
        "-D",
        str(body),
        "-t",
        str(timeout_s),
        url,
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + timeout_s + 30)
    if out.returncode != 0:
        raise RuntimeError(f"hey failed ({out.returncode}): {out.stderr.strip()[:500]}")
    return parse_hey(out.stdout, rows_per_request)


def warm_up(url: str, body: Path, concurrency: int = 4, requests: int = 200) -> CellResult:
    """Send a fixed number of requests (not reported; the count of 2xx answers is kept)."""
    argv = [
        require_hey(),
        "-n",
        str(requests),
        "-c",
        str(concurrency),
        "-m",
        "POST",
        "-T",
        "application/json",
        "-D",
        str(body),
        url,
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    return parse_hey(out.stdout, 1)
