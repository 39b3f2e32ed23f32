"""Property-based tests of the request schema (``reggaeton.schema.validate_record``)."""

from __future__ import annotations

import pytest
from fuzz_strategies import broken_songs, json_values, songs
from hypothesis import given, settings
from hypothesis import strategies as st

from reggaeton.schema import FEATURES_BY_NAME, REQUIRED_FEATURES, ValidationError, validate_record

FUZZ = settings(max_examples=300, deadline=None)


@FUZZ
@given(songs())
def test_every_valid_song_is_accepted_and_returned_as_floats(song):
    out = validate_record(song)
    assert set(REQUIRED_FEATURES) <= set(out) <= set(FEATURES_BY_NAME)
    for name, value in out.items():
        assert isinstance(value, float)
        assert value == float(song[name])
    assert "id_new" not in out


@FUZZ
@given(broken_songs(), st.one_of(st.none(), st.integers(0, 9999)))
def test_one_bad_field_is_rejected_naming_exactly_that_field(case, index):
    song, name = case
    with pytest.raises(ValidationError) as info:
        validate_record(song, index=index)
    err = info.value
    assert err.field == name
    assert err.rule
    assert name in str(err)
    expected = f"data[{index}].{name}" if index is not None else f"data.{name}"
    assert err.location == expected


@FUZZ
@given(json_values)
def test_arbitrary_json_never_raises_anything_but_a_validation_error(value):
    try:
        out = validate_record(value)
    except ValidationError as err:
        assert err.field == "" or err.field in FEATURES_BY_NAME
        assert err.rule
    else:
        assert set(REQUIRED_FEATURES) <= set(out)


@FUZZ
@given(st.dictionaries(st.sampled_from(sorted(FEATURES_BY_NAME)), json_values, max_size=16))
def test_partial_songs_with_junk_values_name_a_schema_field(song):
    try:
        validate_record(song)
    except ValidationError as err:
        assert err.field in FEATURES_BY_NAME
