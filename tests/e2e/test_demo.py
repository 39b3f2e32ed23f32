"""``make demo`` end to end: the demo runs as a real process and its JSON summary is checked."""

from __future__ import annotations

import json
import subprocess
import sys

import psutil
import pytest
from e2e import support

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _processes_using(path: str) -> list[int]:
    """Pids whose environment mentions ``path`` (what the demo started and left behind)."""
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if any(path in value for value in proc.environ().values()):
                found.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def test_demo_closes_the_loop(tmp_path):
    state = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "scripts.demo", "--fast", "--state-dir", str(state)],
        cwd=support.ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert (state / "summary.json").exists(), result.stdout[-3000:] + result.stderr[-3000:]
    s = json.loads((state / "summary.json").read_text())
    assert result.returncode == 0, s.get("error") or result.stderr[-3000:]
    assert "DEMO SUMMARY" in result.stdout

    # 1-2: v1 trained and served; traffic over HTTP and gRPC, with feedback
    v1 = s["v1"]["tag"]
    for phase in ("traffic_clean", "traffic_drifted"):
        counts = s[phase]
        assert counts["failed"] == 0 and counts["answered"] == counts["sent"]
        assert counts["http"] and counts["http_batch"] and counts["grpc"]
        assert counts["feedback"] > 50
        assert counts["versions"] == [v1]
    # 3: clean traffic -> ok
    assert s["monitor_clean"]["status"] == "ok", s["monitor_clean"]["reasons"]
    assert s["monitor_clean"]["drifted_features"] == []
    # 4: drifted traffic -> alert naming exactly the drifted features, webhook received
    drifted = s["monitor_drifted"]
    assert drifted["status"] == "alert"
    assert set(drifted["drifted_features"]) == {"tempo", "loudness"}
    assert s["webhook"]["received"] >= 1
    assert "tempo" in json.dumps(s["webhook"])
    # 5: the trigger trained v2 with production feedback; the gate decided; switch if promoted
    retrain = s["retrain"]
    assert retrain["triggered"] and retrain["tag"] and retrain["tag"] != v1
    assert s["v2"]["rows"]["feedback_train"] > 0
    assert retrain["gate_reason"]
    switch = s["switch"]
    assert switch["failed"] == 0 and switch["requests"] > 0
    if retrain["promoted"]:
        assert switch["switched"] and retrain["tag"] in switch["versions"]
    else:
        assert set(switch["versions"]) == {v1}
    assert set(switch["versions"]) <= {v1, retrain["tag"]}
    # 6: summary, reports, MLflow runs; nothing left running; nothing written outside state
    assert s["failed_requests"] == 0
    assert len(s["reports"]) == 2 and all(p.startswith(str(state)) for p in s["reports"])
    assert s["mlflow"]["runs"] >= 2
    assert s["stopped"]
    assert _processes_using(str(state)) == []
