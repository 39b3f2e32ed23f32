"""reggaeton.settings: the helpers every configuration loader shares."""

from __future__ import annotations

import pytest
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from reggaeton.settings import ConfigError, EnvSettings, load_env, read_yaml, set_dotted, validate


class _Inner(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    size: int = Field(1, ge=1)


class _Tree(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = "x"
    inner: _Inner = _Inner()


class _Env(EnvSettings):
    port: int = Field(80, validation_alias="PORT", ge=1)
    region: str = Field("eu", validation_alias=AliasChoices("APP_REGION", "REGION"))


def test_set_dotted_parses_yaml_values_and_creates_sections() -> None:
    raw: dict = {"name": "a"}
    for item in ["inner.size=3", "name=null", "extra.deep.list=[1, two]"]:
        set_dotted(raw, item)
    assert raw == {"name": None, "inner": {"size": 3}, "extra": {"deep": {"list": [1, "two"]}}}


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("nokey", "expected key=value"),
        ("=1", "expected key=value"),
        ("name.x=1", "name is not a section"),
        ("inner.size=[1", "cannot parse value"),
    ],
)
def test_set_dotted_refuses_malformed_items(item, message) -> None:
    with pytest.raises(ConfigError, match=message):
        set_dotted({"name": "a"}, item)


def test_validate_names_every_bad_field() -> None:
    assert validate(_Tree, {"inner": {"size": 2}}) == _Tree(inner=_Inner(size=2))
    with pytest.raises(ConfigError) as info:
        validate(_Tree, {"name": 5, "inner": {"size": 0, "colour": 1}}, "demo config")
    text = str(info.value)
    assert "name: input should be a valid string, got 5" in text
    assert "inner.size: input should be greater than or equal to 1, got 0" in text
    assert "unknown demo config key inner.colour (known under inner: size)" in text
    with pytest.raises(ConfigError, match=r"inner\.size \(SIZE\): input should be"):
        validate(_Tree, {"inner": {"size": 0}}, origins={"inner.size": "SIZE"})


def test_load_env_reads_declared_non_blank_variables_only() -> None:
    env = load_env(_Env, {"PORT": " 8080 ", "REGION": "us", "OTHER": "ignored"})
    assert (env.port, env.region) == (8080, "us")
    assert load_env(_Env, {"APP_REGION": "ap", "REGION": "us"}).region == "ap"
    assert load_env(_Env, {"PORT": "", "REGION": "  "}) == _Env()
    with pytest.raises(
        ConfigError, match="PORT: input should be greater than or equal to 1, got '0'"
    ):
        load_env(_Env, {"PORT": "0"})


def test_read_yaml(tmp_path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text("")
    assert read_yaml(file) == {}
    file.write_text("a: [1")
    with pytest.raises(ConfigError, match="cannot read config"):
        read_yaml(file)
    file.write_text("3")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        read_yaml(file, "demo")
