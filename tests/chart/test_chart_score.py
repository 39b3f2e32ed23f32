"""The optional scoring Indexed Job (score.*): off by default, a hardened Indexed Job when on."""

from __future__ import annotations

import chart_helpers
import pytest
from chart_helpers import KUBE_VERSIONS, helm_template, validate_strict

ON = {
    "score": {
        "enabled": True,
        "completions": 3,
        "parallelism": 2,
        "volume": {"existingClaim": "catalogue"},
        "input": "in/songs.csv",
        "outputDir": "out",
        "format": "csv",
    }
}


def score_jobs(objects: list[dict]) -> list[dict]:
    return [
        o
        for o in objects
        if o["kind"] == "Job"
        and o["metadata"]["labels"].get("app.kubernetes.io/component") == "score"
    ]


def render(helm: str, values: dict) -> list[dict]:
    return chart_helpers.render(helm, None, values)


def test_off_by_default(helm: str) -> None:
    assert score_jobs(render(helm, {})) == []


def test_enabled_renders_a_hardened_indexed_job(helm: str) -> None:
    objects = render(helm, ON)
    (job,) = score_jobs(objects)
    for version in KUBE_VERSIONS:
        validate_strict(job, version)
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 3, 2)
    assert job["metadata"]["name"].startswith("reggaeton-score-")
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == [
        "python",
        "-m",
        "service.score",
        "--input",
        "/data/in/songs.csv",
        "--output",
        "/data/out/",
        "--format",
        "csv",
        "--no-progress",
    ]
    env = {e["name"]: e for e in container["env"]}
    assert env["SCORE_SHARD_COUNT"]["value"] == "3"
    assert "PREDICTION_STORE_URI" not in env and "API_TOKEN" not in env  # least privilege
    bootstrap = next(o for o in objects if o["kind"] == "Job" and o is not job)
    other = bootstrap["spec"]["template"]["spec"]
    assert container["securityContext"] == other["containers"][0]["securityContext"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"] == other["securityContext"]
    assert pod["automountServiceAccountToken"] is False and pod["restartPolicy"] == "Never"
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["model-store"]["readOnly"] is True
    assert mounts["score-data"]["mountPath"] == "/data"
    claims = {v["name"]: v.get("persistentVolumeClaim") for v in pod["volumes"]}
    assert claims["score-data"] == {"claimName": "catalogue"}


def test_log_predictions_gets_only_the_store_key(helm: str) -> None:
    values = {
        "score": {**ON["score"], "logPredictions": True},
        "secret": {"apiToken": "t0ken", "smtpPassword": "pw"},
    }
    (job,) = score_jobs(render(helm, values))
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["SCORE_LOG_PREDICTIONS"]["value"] == "true"
    secret_keys = {n for n, e in env.items() if "secretKeyRef" in e.get("valueFrom", {})}
    assert secret_keys == {"PREDICTION_STORE_URI"}


def test_name_changes_with_the_spec(helm: str) -> None:
    first = score_jobs(render(helm, ON))[0]["metadata"]["name"]
    second = score_jobs(render(helm, {"score": {**ON["score"], "completions": 4}}))[0]
    assert first != second["metadata"]["name"] and len(first) <= 63


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"score": {"enabled": True}}, "score.volume.existingClaim"),
        (
            {"score": {"enabled": True, "volume": {"existingClaim": "c"}, "shards": 2}},
            "additional properties 'shards'",
        ),
        ({"score": {"completions": "2"}}, "completions"),
        ({"score": {"completions": 0}}, "completions"),
        ({"score": {"format": "json"}}, "format"),
        ({"score": {"input": "songs.xlsx"}}, "input"),
    ],
)
def test_refused_values(helm: str, values: dict, message: str) -> None:
    proc = helm_template(helm, values)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr


def test_podrunner_refuses_job_fields_it_does_not_implement() -> None:
    from podrunner import PodRunner

    runner = PodRunner([], "unused", "mlops")
    job = {
        "spec": {
            "completionMode": "Indexed",
            "suspend": True,
            "template": {"spec": {"restartPolicy": "Never"}},
        }
    }
    with pytest.raises(NotImplementedError, match="suspend"):
        runner.run_job("j", job)
