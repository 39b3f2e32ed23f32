"""Service configuration from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import ServiceConfig


def test_defaults():
    config = ServiceConfig.from_env({})
    assert config.home == (Path("var") / "bentoml").resolve()
    assert (config.model_tag, config.api_token) == (None, None)
    assert (config.grpc_port, config.max_batch_rows, config.max_body_bytes) == (
        50051, 10_000, 4 * 1024 * 1024)
    assert config.store_uri.startswith("sqlite:///") and config.fast_path


def test_values_are_read():
    config = ServiceConfig.from_env({
        "BENTOML_HOME": "/tmp/h", "MODEL_TAG": "reggaeton_clf:x", "API_TOKEN": "t",
        "GRPC_PORT": "0", "MAX_BATCH_ROWS": "5", "MAX_BODY_BYTES": "2048",
        "PREDICTION_STORE_URI": "mongomock://db", "INFERENCE_FAST_PATH": "0",
        "MODEL_WATCH_INTERVAL": "0"})
    assert config.home == Path("/tmp/h") and config.model_tag == "reggaeton_clf:x"
    assert (config.grpc_port, config.max_batch_rows, config.max_body_bytes) == (0, 5, 2048)
    assert config.store_uri == "mongomock://db" and not config.fast_path
    assert config.watch_interval == 0


@pytest.mark.parametrize("env,name", [
    ({"GRPC_PORT": "x"}, "GRPC_PORT"), ({"GRPC_PORT": "70000"}, "GRPC_PORT"),
    ({"MAX_BATCH_ROWS": "0"}, "MAX_BATCH_ROWS"), ({"MODEL_WATCH_INTERVAL": "soon"},
                                                   "MODEL_WATCH_INTERVAL"),
])
def test_bad_values_name_the_variable(env, name):
    with pytest.raises(ValueError, match=name):
        ServiceConfig.from_env(env)


def test_grpc_max_connection_age():
    config = ServiceConfig.from_env({})
    assert (config.grpc_max_connection_age, config.grpc_max_connection_age_grace) == (60, 30)
    config = ServiceConfig.from_env({"GRPC_MAX_CONNECTION_AGE_S": "2.5",
                                     "GRPC_MAX_CONNECTION_AGE_GRACE_S": "0"})
    assert (config.grpc_max_connection_age, config.grpc_max_connection_age_grace) == (2.5, 0)
    with pytest.raises(ValueError, match="GRPC_MAX_CONNECTION_AGE_S"):
        ServiceConfig.from_env({"GRPC_MAX_CONNECTION_AGE_S": "-1"})
