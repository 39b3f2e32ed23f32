"""The feature schema: one definition of every input column, its bounds and the label.

Everything that validates, trains on, profiles or serves song features reads it from here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

LABEL_COLUMN = "label"
POSITIVE_LABEL = 1  # reggaeton
NEGATIVE_LABEL = 0  # any other genre
LABEL_NAMES = {POSITIVE_LABEL: "reggaeton", NEGATIVE_LABEL: "other"}


@dataclass(frozen=True)
class Feature:
    """One input column.

    Attributes:
        name: Column name, as in the seed CSVs and the HTTP API.
        dtype: ``"float"`` or ``"int"``.
        minimum: Smallest physically valid value (inclusive), or None.
        maximum: Largest physically valid value (inclusive), or None.
        categorical: True when the values are categories (drift uses chi-square).
        required: True when every request must carry it.
        exclusive_minimum: True when ``minimum`` itself is invalid (e.g. duration > 0).
        description: What the column means, with its unit.
    """

    name: str
    dtype: str
    minimum: float | None
    maximum: float | None
    categorical: bool = False
    required: bool = True
    exclusive_minimum: bool = False
    description: str = ""

    @cached_property
    def rules(self) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
        """The feature's value rules, as ``(what the rule says, test that breaks it)`` pairs.

        This is the one copy of the bounds and the integrality rule. Each test takes finite
        values and uses only arithmetic and comparisons, so it answers for one number
        (:meth:`check`, a request) and elementwise for a numpy array (:meth:`invalid`, the
        monitor's quality counts and the service's batch check) alike. Built once per feature
        (the request path calls :meth:`check` for every value).
        """
        out: list[tuple[str, Callable[[Any], Any]]] = []
        if self.dtype == "int":
            out.append(("must be a whole number", lambda v: v % 1 != 0))
        low, high = self.minimum, self.maximum
        if low is not None and self.exclusive_minimum:
            out.append((f"must be greater than {low:g}", lambda v: v <= low))
        elif low is not None:
            out.append((f"must be >= {low:g}", lambda v: v < low))
        if high is not None:
            out.append((f"must be <= {high:g}", lambda v: v > high))
        return tuple(out)

    def check(self, value: Any) -> str | None:
        """Return None when ``value`` is valid for this feature, else the rule it breaks."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be a number, got {type(value).__name__}"
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an int too large for a float, e.g. 10**400
            return "is out of range (too large)"
        if not finite:
            return "must be a finite number (NaN and Infinity are not accepted)"
        for rule, breaks in self.rules:
            if breaks(value):
                return rule
        return None

    def invalid(self, values: np.ndarray) -> np.ndarray:
        """Boolean mask of the ``values`` that :meth:`check` refuses (NaN and infinities too).

        Args:
            values: Numbers of this feature, any shape (cast to float).
        """
        v = np.asarray(values, dtype=float)
        finite = np.isfinite(v)
        bad = ~finite
        for _, breaks in self.rules:
            bad[finite] |= breaks(v[finite])
        return bad


FEATURES: tuple[Feature, ...] = (
    Feature("popularity", "float", 0, 100, description="Spotify popularity, 0-100"),
    Feature("danceability", "float", 0, 1, description="How suitable for dancing, 0-1"),
    Feature("energy", "float", 0, 1, description="Perceived intensity, 0-1"),
    Feature(
        "key",
        "int",
        -1,
        11,
        categorical=True,
        description="Pitch class (0 = C ... 11 = B, -1 = none detected)",
    ),
    Feature("loudness", "float", -60, 5, description="Average loudness in dB (typically -60..0)"),
    Feature("mode", "int", 0, 1, categorical=True, description="1 = major, 0 = minor"),
    Feature("speechiness", "float", 0, 1, description="Presence of spoken words, 0-1"),
    Feature("acousticness", "float", 0, 1, description="Confidence the track is acoustic, 0-1"),
    Feature("instrumentalness", "float", 0, 1, description="Likelihood of no vocals, 0-1"),
    Feature("liveness", "float", 0, 1, description="Presence of an audience, 0-1"),
    Feature("valence", "float", 0, 1, description="Musical positiveness, 0-1"),
    Feature("tempo", "float", 0, 300, description="Estimated tempo in beats per minute"),
    Feature(
        "duration",
        "float",
        0,
        3_600_000,
        exclusive_minimum=True,
        description="Track length in milliseconds (> 0, at most one hour)",
    ),
    Feature(
        "time_signature",
        "int",
        0,
        7,
        categorical=True,
        required=False,
        description="Estimated beats per bar (optional in requests)",
    ),
)
"""Every column a request may carry (``id_new`` is an identifier, accepted and ignored)."""

FEATURES_BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}

MODEL_FEATURES: tuple[str, ...] = (
    "popularity",
    "danceability",
    "energy",
    "speechiness",
    "acousticness",
    "instrumentalness",
    "liveness",
    "valence",
    "duration",
    "loudness",
    "tempo",
)
"""The 11 features the original model used, in the order the model sees them."""

REQUIRED_FEATURES: tuple[str, ...] = tuple(f.name for f in FEATURES if f.required)
CATEGORICAL_FEATURES: tuple[str, ...] = tuple(f.name for f in FEATURES if f.categorical)
IDENTIFIER_COLUMNS: tuple[str, ...] = ("id_new",)


class ValidationError(ValueError):
    """A record breaks the schema. ``field`` names the column, ``rule`` the broken rule."""

    def __init__(self, field: str, rule: str, index: int | None = None) -> None:
        self.field = field
        self.rule = rule
        self.index = index
        super().__init__(f"{self.location}: {rule}")

    @property
    def location(self) -> str:
        """Dotted path of the bad field, e.g. ``data[3].tempo`` (``data[3]`` for the record)."""
        where = f"data[{self.index}]" if self.index is not None else "data"
        return f"{where}.{self.field}" if self.field else where


def validate_record(
    record: Mapping[str, Any], index: int | None = None, features: tuple[str, ...] | None = None
) -> dict[str, float]:
    """Validate one song and return its known features as floats.

    Unknown extra keys (``id_new`` among them) are ignored. Optional features that are
    absent are left out of the result.

    Args:
        record: A mapping of column name to value, e.g. one JSON object from a request.
        index: Position of the record in a batch, used in error messages.
        features: Columns to check; defaults to every column of :data:`FEATURES`.

    Returns:
        The validated values keyed by feature name.

    Raises:
        ValidationError: naming the first field that is missing or breaks its rule.
    """
    if not isinstance(record, Mapping):
        raise ValidationError(
            "", f"each song must be a JSON object, got {type(record).__name__}", index
        )
    out: dict[str, float] = {}
    for name in features or FEATURES_BY_NAME:
        feature = FEATURES_BY_NAME[name]
        value = record.get(name)
        if value is None:
            if feature.required:
                raise ValidationError(name, "is required", index)
            continue
        problem = feature.check(value)
        if problem:
            raise ValidationError(name, problem, index)
        out[name] = float(value)
    return out


def label_name(label: int) -> str:
    """Human name of a label: 1 -> ``"reggaeton"``, 0 -> ``"other"``."""
    return LABEL_NAMES[int(label)]
