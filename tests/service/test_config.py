"""Service configuration from the environment."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reggaeton.settings import ConfigError
from service.config import ServiceConfig


def test_defaults():
    config = ServiceConfig.from_env({})
    assert config.home == (Path("var") / "bentoml").resolve()
    assert (config.model_tag, config.api_token) == (None, None)
    assert (config.grpc_port, config.max_batch_rows, config.max_body_bytes) == (
        50051,
        10_000,
        4 * 1024 * 1024,
    )
    assert config.store_uri.startswith("sqlite:///")


def test_values_are_read():
    config = ServiceConfig.from_env(
        {
            "BENTOML_HOME": "/tmp/h",
            "MODEL_TAG": "reggaeton_clf:x",
            "API_TOKEN": "t",
            "GRPC_PORT": "0",
            "MAX_BATCH_ROWS": "5",
            "MAX_BODY_BYTES": "2048",
            "PREDICTION_STORE_URI": "mongomock://db",
            "MODEL_WATCH_INTERVAL": "0",
        }
    )
    assert config.home == Path("/tmp/h") and config.model_tag == "reggaeton_clf:x"
    assert (config.grpc_port, config.max_batch_rows, config.max_body_bytes) == (0, 5, 2048)
    assert config.store_uri == "mongomock://db"
    assert config.watch_interval == 0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GRPC_PORT": "x"}, "GRPC_PORT: input should be a valid integer"),
        (
            {"GRPC_PORT": "70000"},
            "GRPC_PORT: input should be less than or equal to 65535, got '70000'",
        ),
        ({"MAX_BATCH_ROWS": "0"}, "MAX_BATCH_ROWS: input should be greater than or equal to 1"),
        (
            {"MAX_BODY_BYTES": "512"},
            "MAX_BODY_BYTES: input should be greater than or equal to 1024",
        ),
        ({"MAX_BODY_BYTES": "8.388608e+06"}, "MAX_BODY_BYTES: input should be a valid integer"),
        ({"MODEL_WATCH_INTERVAL": "soon"}, "MODEL_WATCH_INTERVAL: input should be a valid number"),
        (
            {"PREDICTION_LOG_DURABILITY": "maybe"},
            "PREDICTION_LOG_DURABILITY: input should be 'async' or 'sync', got 'maybe'",
        ),
        ({"PREDICTION_SPILL_DRAIN_S": "-1"}, "PREDICTION_SPILL_DRAIN_S: input should be greater"),
    ],
)
def test_bad_values_name_the_variable_and_the_problem(env, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        ServiceConfig.from_env(env)


def test_numbers_from_text_and_blank_means_default():
    config = ServiceConfig.from_env(
        {
            "MAX_BODY_BYTES": " 8388608 ",
            "PREDICTION_LOG_FLUSH_S": "0.05",
            "MODEL_TAG": "  ",
            "PREDICTION_LOG_DURABILITY": "SYNC",
            "GRPC_PORT": "",
        }
    )
    assert (config.max_body_bytes, config.log_flush_interval) == (8388608, 0.05)
    assert config.model_tag is None and config.grpc_port == 50051
    assert config.log_durability == "sync"


def test_only_the_given_mapping_is_read(monkeypatch):
    monkeypatch.setenv("MAX_BATCH_ROWS", "7")
    assert ServiceConfig.from_env({}).max_batch_rows == 10_000
    assert ServiceConfig.from_env().max_batch_rows == 7
    assert ServiceConfig().max_batch_rows == 10_000  # no hidden environment read


def test_fields_can_be_set_by_name_and_are_frozen(tmp_path):
    config = ServiceConfig(home=tmp_path, store_uri="mongomock://db", max_batch_rows=3)
    assert (config.home, config.store_uri, config.max_batch_rows) == (tmp_path, "mongomock://db", 3)
    with pytest.raises(ValueError, match="frozen"):
        config.max_batch_rows = 4
    assert "api_token" not in repr(ServiceConfig(api_token="secret"))


def test_grpc_max_connection_age():
    config = ServiceConfig.from_env({})
    assert (config.grpc_max_connection_age, config.grpc_max_connection_age_grace) == (60, 30)
    config = ServiceConfig.from_env(
        {"GRPC_MAX_CONNECTION_AGE_S": "2.5", "GRPC_MAX_CONNECTION_AGE_GRACE_S": "0"}
    )
    assert (config.grpc_max_connection_age, config.grpc_max_connection_age_grace) == (2.5, 0)
    with pytest.raises(ValueError, match="GRPC_MAX_CONNECTION_AGE_S"):
        ServiceConfig.from_env({"GRPC_MAX_CONNECTION_AGE_S": "-1"})
