"""The vectorised validator accepts and rejects exactly what ``validate_record`` does."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reggaeton.schema import FEATURES, ValidationError, validate_record
from service.schemas import EXAMPLE_SONG
from service.validation import (
    COLUMNS,
    FAST_MIN_ROWS,
    MODEL_INDEX,
    row_features,
    validate_rows,
)

SONG = dict(EXAMPLE_SONG)
ODD_VALUES = [
    None,
    True,
    False,
    "1",
    [],
    {},
    math.nan,
    math.inf,
    -math.inf,
    -1e-9,
    0,
    0.5,
    1,
    1.5,
    -1,
    7,
    11,
    12,
    100,
    100.0001,
    300,
    300.5,
    3_600_000,
    3_600_001,
    -61,
    10**30,
    2**64,
]


def _reference(records, offset_index=True):
    """What the shared row-by-row validator says: matrix or the first error."""
    out = np.full((len(records), len(COLUMNS)), np.nan)
    for i, record in enumerate(records):
        values = validate_record(record, i if offset_index else None)
        for name, value in values.items():
            out[i, COLUMNS.index(name)] = value
    return out


def _outcome(func, records):
    try:
        return ("ok", func(records))
    except ValidationError as err:
        return ("error", (err.field, err.rule, err.index))


def _same(records):
    expected, got = _outcome(_reference, records), _outcome(validate_rows, records)
    assert expected[0] == got[0], (records, expected, got)
    if expected[0] == "ok":
        np.testing.assert_array_equal(expected[1], got[1])
    else:
        assert expected[1] == got[1]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([f.name for f in FEATURES] + ["id_new", "extra"]),
            st.sampled_from(ODD_VALUES),
            st.booleans(),
        ),
        max_size=4,
    ),
    st.sampled_from([1, 2, FAST_MIN_ROWS, FAST_MIN_ROWS + 3]),
    st.integers(0, 12),
)
def test_same_verdict_as_validate_record(mutations, rows, target):
    """Both the row-by-row path (few rows) and the numpy path (FAST_MIN_ROWS+) are covered."""
    records = [dict(SONG) for _ in range(rows)]
    for name, value, delete in mutations:
        record = records[min(target, rows - 1)]
        if delete:
            record.pop(name, None)
        else:
            record[name] = value
    _same(records)


@pytest.mark.parametrize(
    "records",
    [
        [SONG],
        [SONG] * 50,
        [{k: v for k, v in SONG.items() if k != "time_signature"}, SONG],
        [SONG, "not an object"],
        [SONG, [1, 2]],
        [SONG, None],
        [],
        [SONG] * 9 + ["not an object"],
        [SONG] * 9 + [{**SONG, "mode": True}],
        # an optional feature sent as NaN is an error, not an absence (Hypothesis found it in CI)
        [SONG] * 9 + [{**SONG, "time_signature": math.nan}],
    ],
)
def test_edge_batches(records):
    _same(records)


def test_single_song_errors_have_no_index():
    with pytest.raises(ValidationError) as info:
        validate_rows([{**SONG, "tempo": 301}], offset_index=False)
    assert info.value.location == "data.tempo"
    with pytest.raises(ValidationError) as info:
        validate_rows([SONG, {**SONG, "energy": "loud"}])
    assert info.value.location == "data[1].energy"


@pytest.mark.parametrize("rows", [1, FAST_MIN_ROWS + 1])
def test_a_huge_integer_is_a_validation_error_not_a_crash(rows):
    # (validate_record itself raises OverflowError here; the service maps it to the field.)
    with pytest.raises(ValidationError) as info:
        validate_rows([SONG] * (rows - 1) + [{**SONG, "duration": 10**400}])
    assert info.value.field == "duration"


def test_row_features_keep_every_schema_feature_and_drop_absent_optional_ones():
    partial = {k: v for k, v in SONG.items() if k != "time_signature"}
    matrix = validate_rows([SONG, partial])
    first, second = row_features(matrix)
    assert set(first) == set(COLUMNS) and "id_new" not in first
    assert set(second) == set(COLUMNS) - {"time_signature"}
    assert matrix[:, MODEL_INDEX].shape == (2, 11)


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ({3: {"valence": 2}, 7: {"tempo": -1}}, "data[3].valence"),  # two bound errors: the first
        ({5: {"tempo": 301}, 2: {"key": 1.5}}, "data[2].key"),  # order of rows, not of columns
        ({2: {"energy": 9}, 9: {"mode": "1"}}, "data[2].energy"),  # a bound before a type error
        ({4: {"duration": 0}, 6: {"energy": None}}, "data[4].duration"),
    ],
)
def test_a_batch_error_names_the_first_offending_row(bad, expected):
    records = [dict(SONG) for _ in range(FAST_MIN_ROWS + 4)]
    for row, change in bad.items():
        records[row].update(change)
    with pytest.raises(ValidationError) as info:
        validate_rows(records)
    assert info.value.location == expected
    _same(records)


def _edges(feature) -> list:
    """A feature's bounds, the values just beyond them, and a fractional value."""
    out = []
    for bound in (feature.minimum, feature.maximum):
        if bound is not None:
            out += [bound, math.nextafter(bound, -math.inf), math.nextafter(bound, math.inf)]
            out += [int(bound), float(bound) + 0.5]
    return out


@pytest.mark.parametrize("rows", [1, FAST_MIN_ROWS + 1])
@pytest.mark.parametrize("feature", FEATURES, ids=lambda f: f.name)
def test_bounds_are_read_the_same_at_their_edges(feature, rows):
    for value in _edges(feature):
        _same([dict(SONG)] * (rows - 1) + [{**SONG, feature.name: value}])
