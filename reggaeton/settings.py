"""The one configuration pattern of the project: pydantic models, loaded at entry points.

YAML configurations (training, monitoring) are pydantic ``BaseModel`` trees; environment
settings (service, monitoring overrides) are pydantic-settings ``BaseSettings`` classes whose
fields carry the variable names as aliases. This module holds what every loader shares:
reading a YAML mapping, applying a ``--set a.b=c`` override to it, reading the variables a
settings class declares from an environment mapping, and turning a pydantic
``ValidationError`` into one :class:`ConfigError` whose message names each bad field and its
problem (a user fixing a typo must not have to read a pydantic traceback).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import AliasChoices, BaseModel, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

S = TypeVar("S", bound=BaseSettings)


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the offending key or variable."""


def read_yaml(path: str | Path, what: str = "config") -> dict[str, Any]:
    """Return the top-level mapping of a YAML file (empty file: empty mapping).

    Raises:
        ConfigError: unreadable file, invalid YAML or a top level that is not a mapping.
    """
    file = Path(path)
    try:
        raw = yaml.safe_load(file.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {what} {file}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{what} {file}: top level must be a mapping")
    return raw


def set_dotted(raw: dict[str, Any], item: str) -> None:
    """Apply one ``dotted.key=value`` override to a raw (not yet validated) mapping, in place.

    The value is parsed as YAML, so ``1`` is an int, ``null`` is None and ``[a, b]`` a list;
    the model validating the mapping afterwards decides whether it fits.

    Raises:
        ConfigError: no ``=``, unparsable value, or a path through a non-mapping value.
    """
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected key=value, e.g. cv.folds=3")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {item!r}: cannot parse value: {exc}") from exc
    parts = key.strip().split(".")
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: {part} is not a section")
    node[parts[-1]] = value


def load_env(settings: type[S], environ: Mapping[str, str], what: str = "environment") -> S:
    """Build ``settings`` from the variables of ``environ`` it declares (by alias).

    An empty or blank variable means "use the default", as a Helm value left empty renders
    ``NAME: ""``. The mapping is passed in by the entry point (``os.environ`` there, a dict
    in tests), so what a program reads is visible at its start and nothing else leaks in.

    Raises:
        ConfigError: naming each bad variable and its problem.
    """
    names = []
    for field in settings.model_fields.values():
        alias = field.validation_alias
        names += alias.choices if isinstance(alias, AliasChoices) else [alias]
    values = {n: environ[n] for n in names if isinstance(n, str) and environ.get(n, "").strip()}
    try:
        return settings(**values)
    except ValidationError as exc:
        raise ConfigError(describe(exc, settings, what)) from None


class EnvSettings(BaseSettings):
    """Base of the environment settings: values come only from :func:`load_env`'s mapping.

    Each field names its variable as ``validation_alias``; it can also be set by field name
    (tests, programs building a configuration directly). Strings are stripped, so ``" 8 "``
    reads as 8; numbers are parsed from their decimal text (``"8388608"``, ``"0.5"``); an
    exponent form such as ``8.388608e+06`` is refused for an integer.
    """

    model_config = SettingsConfigDict(
        frozen=True, extra="forbid", validate_by_name=True, str_strip_whitespace=True
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the constructor's values: the process environment is read by entry points."""
        return (init_settings,)


def validate(
    model: type[BaseModel],
    values: Mapping[str, Any],
    what: str = "config",
    origins: Mapping[str, str] | None = None,
) -> Any:
    """``model.model_validate(values)`` with errors turned into one :class:`ConfigError`.

    Args:
        model: The model (tree) to build.
        values: Raw values, e.g. a YAML mapping with overrides applied.
        what: How messages name the configuration (``unknown {what} key ...``).
        origins: Dotted field name -> where its value came from (an environment variable),
            added to that field's message so the user knows what to fix.
    """
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(describe(exc, model, what, origins)) from None


def describe(
    exc: ValidationError,
    model: type[BaseModel],
    what: str = "config",
    origins: Mapping[str, str] | None = None,
) -> str:
    """One line per error: the dotted field (or variable) name, then the problem and value."""
    lines = []
    for error in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in error["loc"])
        if error["type"] == "extra_forbidden":
            section, known = _known_fields(model, error["loc"][:-1])
            lines.append(f"unknown {what} key {loc} (known under {section}: {', '.join(known)})")
            continue
        if error["type"] in ("value_error", "assertion_error"):
            problem = str(error["ctx"]["error"])
        else:
            problem = f"{error['msg'][0].lower()}{error['msg'][1:]}, got {error['input']!r}"
        origin = (origins or {}).get(loc)
        name = f"{loc} ({origin})" if origin else loc
        lines.append(f"{name}: {problem}" if name else problem)
    return "; ".join(lines)


def _known_fields(model: type[BaseModel], path: tuple[Any, ...]) -> tuple[str, list[str]]:
    """The section name and field names at ``path`` of a model tree (for unknown-key hints)."""
    for part in path:
        annotation = model.model_fields[str(part)].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ".".join(map(str, path)), []
        model = annotation
    return ".".join(map(str, path)) or "top level", list(model.model_fields)
