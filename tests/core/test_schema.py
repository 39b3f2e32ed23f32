"""The feature schema: one definition of features, label and validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reggaeton.schema import (
    FEATURES,
    FEATURES_BY_NAME,
    MODEL_FEATURES,
    NEGATIVE_LABEL,
    POSITIVE_LABEL,
    REQUIRED_FEATURES,
    ValidationError,
    invalid_matrix,
    label_name,
    validate_record,
)

SONG = {
    "popularity": 68,
    "danceability": 0.826,
    "energy": 0.704,
    "key": 9,
    "loudness": -7.527,
    "mode": 1,
    "speechiness": 0.117,
    "acousticness": 0.189,
    "instrumentalness": 4.8e-05,
    "liveness": 0.0617,
    "valence": 0.741,
    "tempo": 94.013,
    "duration": 205000,
}


def test_label_definition():
    assert (POSITIVE_LABEL, NEGATIVE_LABEL) == (1, 0)
    assert label_name(1) == "reggaeton" and label_name(0) == "other"


def test_model_features_are_the_eleven_original_inputs_in_order():
    # the order the original model was fitted on: a change would feed it the wrong columns
    original = "popularity danceability energy speechiness acousticness instrumentalness "
    original += "liveness valence duration loudness tempo"
    assert tuple(original.split()) == MODEL_FEATURES
    assert all(name in FEATURES_BY_NAME for name in MODEL_FEATURES)
    assert "time_signature" not in REQUIRED_FEATURES


def test_valid_record_returns_floats_and_ignores_extras():
    out = validate_record({**SONG, "id_new": 7})
    assert out["tempo"] == pytest.approx(94.013)
    assert "id_new" not in out and "time_signature" not in out
    assert all(isinstance(v, float) for v in out.values())


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("tempo", None, "is required"),
        ("tempo", "fast", "must be a number"),
        ("tempo", True, "must be a number"),
        ("energy", 1.5, "must be <= 1"),
        ("duration", 0, "must be greater than 0"),
        ("key", 2.5, "whole number"),
        ("loudness", math.nan, "finite"),
        ("popularity", 10**400, "too large"),
    ],
)
def test_invalid_values_name_the_field(field, value, rule):
    record = dict(SONG)
    if value is None:
        del record[field]
    else:
        record[field] = value
    with pytest.raises(ValidationError) as info:
        validate_record(record, index=3)
    assert info.value.field == field
    assert rule in info.value.rule
    assert info.value.location == f"data[3].{field}"


def test_non_mapping_record_is_rejected():
    with pytest.raises(ValidationError, match="JSON object") as info:
        validate_record([1, 2, 3], index=1)  # type: ignore[arg-type]
    assert info.value.location == "data[1]"


@pytest.mark.parametrize("name", sorted(FEATURES_BY_NAME))
def test_the_vectorised_check_refuses_exactly_what_check_refuses(name):
    """``Feature.invalid`` (monitor, batch path) and ``Feature.check`` (requests) share rules."""
    feature = FEATURES_BY_NAME[name]
    low = -100.0 if feature.minimum is None else feature.minimum
    high = 100.0 if feature.maximum is None else feature.maximum
    values = [
        low - 1,
        low - 0.5,
        low,
        low + 0.5,
        low + 1,
        (low + high) / 2,
        high - 0.5,
        high,
        high + 0.5,
        high + 1,
        math.inf,
        -math.inf,
        math.nan,
        1e300,
    ]
    mask = feature.invalid(np.array(values))
    assert mask.tolist() == [feature.check(v) is not None for v in values]
    assert mask.any() and not mask.all()  # the grid holds valid and invalid values


def test_the_batch_check_refuses_exactly_what_check_refuses():
    """``invalid_matrix`` (the service's batch path) and ``Feature.check`` share the rules."""
    rng = np.random.default_rng(0)
    columns = []
    for feature in FEATURES:
        low = -100.0 if feature.minimum is None else feature.minimum
        high = 100.0 if feature.maximum is None else feature.maximum
        values = rng.uniform(low - 1, high + 1, 200)
        values[::3] = np.round(values[::3])  # whole numbers too, for the integer columns
        values[:4] = [low, high, math.nan, -math.inf]
        columns.append(values)
    matrix = np.column_stack(columns)
    expected = [
        [f.check(float(v)) is not None for f, v in zip(FEATURES, row, strict=True)]
        for row in matrix
    ]
    mask = invalid_matrix(matrix)
    assert mask.tolist() == expected
    assert mask.any() and not mask.all()
    subset = (FEATURES_BY_NAME["key"], FEATURES_BY_NAME["tempo"])
    assert invalid_matrix(matrix[:, [3, 11]], subset).tolist() == mask[:, [3, 11]].tolist()
