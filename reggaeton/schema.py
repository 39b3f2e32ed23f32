"""The feature schema: one definition of every input column, its bounds and the label.

Everything that validates, trains on, profiles or serves song features reads it from here.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
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

    @functools.cached_property
    def rules(self) -> tuple[tuple[str, str, float], ...]:
        """The feature's value rules, as ``(what the rule says, kind, bound)`` triples.

        This is the one copy of the bounds and the integrality rule: :meth:`check` (one value,
        a request), :meth:`invalid` (an array, the monitor's quality counts) and
        :func:`invalid_matrix` (a batch) all apply these triples through :data:`BREAKS`.
        Built once per feature (the request path calls :meth:`check` for every value).
        """
        out: list[tuple[str, str, float]] = []
        if self.dtype == "int":
            out.append(("must be a whole number", "whole", 0.0))
        low, high = self.minimum, self.maximum
        if low is not None and self.exclusive_minimum:
            out.append((f"must be greater than {low:g}", "above", float(low)))
        elif low is not None:
            out.append((f"must be >= {low:g}", "min", float(low)))
        if high is not None:
            out.append((f"must be <= {high:g}", "max", float(high)))
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
        for rule, kind, bound in self.rules:
            if BREAKS[kind](value, bound):
                return rule
        return None

    def invalid(self, values: np.ndarray) -> np.ndarray:
        """Boolean mask of the ``values`` that :meth:`check` refuses (NaN and infinities too).

        Args:
            values: Numbers of this feature, any shape (cast to float).
        """
        v = np.asarray(values, dtype=float)
        bad = ~np.isfinite(v)
        with np.errstate(invalid="ignore"):  # inf % 1 is NaN: already refused as not finite
            for _, kind, bound in self.rules:
                bad |= BREAKS[kind](v, bound)
        return bad


BREAKS: dict[str, Callable[[Any, Any], Any]] = {
    "whole": lambda v, _: v % 1 != 0,
    "above": operator.le,
    "min": operator.lt,
    "max": operator.gt,
}
"""Rule kind -> ``breaks(value, bound)``: true where a finite value breaks the rule.

Only arithmetic and comparisons, so one test serves a Python number, a numpy array and a
matrix against a row of per-column bounds alike.
"""


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
OPTIONAL_FEATURES: tuple[str, ...] = tuple(f.name for f in FEATURES if not f.required)
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


def invalid_matrix(matrix: np.ndarray, features: Sequence[Feature] = FEATURES) -> np.ndarray:
    """Boolean mask of the cells :meth:`Feature.check` refuses, for a whole batch at once.

    Args:
        matrix: Shape ``(rows, len(features))``; column ``j`` holds ``features[j]``.
        features: The columns' features (default: every column of :data:`FEATURES`).
    """
    m = np.asarray(matrix, dtype=float)
    bad = ~np.isfinite(m)
    with np.errstate(invalid="ignore"):
        for kind, (columns, bounds) in _rule_columns(tuple(features)).items():
            if columns is None:  # every column: no copy
                bad |= BREAKS[kind](m, bounds)
            else:
                bad[:, columns] |= BREAKS[kind](m[:, columns], bounds)
    return bad


_NEUTRAL = {"above": -math.inf, "min": -math.inf, "max": math.inf}
"""A bound no finite value breaks, for the columns without that rule."""


@functools.cache
def _rule_columns(
    features: tuple[Feature, ...],
) -> dict[str, tuple[np.ndarray | None, np.ndarray]]:
    """Per rule kind: the columns it applies to (None: all) and their bounds, as a row.

    Comparisons get a neutral bound where a column lacks the rule, so they run over the whole
    matrix; the integrality test runs on its few columns only.
    """
    out: dict[str, tuple[np.ndarray | None, np.ndarray]] = {}
    kinds = {kind for feature in features for _, kind, _ in feature.rules}
    for kind in sorted(kinds):
        has = [{k: b for _, k, b in f.rules}.get(kind) for f in features]
        if kind in _NEUTRAL:
            out[kind] = (None, np.array([_NEUTRAL[kind] if b is None else b for b in has]))
        else:
            cols = np.array([j for j, b in enumerate(has) if b is not None], dtype=np.intp)
            out[kind] = (cols, np.array([has[j] for j in cols], dtype=float))
    return out


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
