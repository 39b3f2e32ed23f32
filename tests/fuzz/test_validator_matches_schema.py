"""The request validator and the OpenAPI document agree: one schema, two readers.

The service checks songs with :func:`service.validation.validate_rows` (numpy over the bounds of
``reggaeton.schema.FEATURES``); clients read the ``Song`` JSON schema that
:mod:`service.schemas` generates from the same features. A JSON Schema validator reading the
published document is the referee: every song, valid or broken, gets the same verdict from both,
and a refusal names the first field (in schema order) that the document also refuses.
"""

from __future__ import annotations

import math

import jsonschema
import pytest
from fuzz_strategies import broken_songs, json_values, songs
from hypothesis import given, settings
from hypothesis import strategies as st

from reggaeton.schema import FEATURES, FEATURES_BY_NAME, ValidationError
from service.openapi import build_docs_app
from service.validation import FAST_MIN_ROWS, validate_rows

CONTRACT = settings(max_examples=300, deadline=None)
ORDER = {f.name: i for i, f in enumerate(FEATURES)}


@pytest.fixture(scope="module")
def song_schema() -> dict:
    """The ``Song`` schema as the OpenAPI document publishes it."""
    from fastapi.openapi.utils import get_openapi

    doc = get_openapi(title="t", version="0", routes=build_docs_app(10).routes)
    return doc["components"]["schemas"]["Song"]


def _document_refuses(schema: dict, song: object) -> set[str]:
    """Fields of ``song`` the document refuses (``""``: the song itself); empty when valid."""
    if not isinstance(song, dict):
        return {""}
    # JSON has no NaN or Infinity, so no schema accepts them: refused wherever a feature is
    bad = {
        k for k, v in song.items() if k in ORDER and isinstance(v, float) and not math.isfinite(v)
    }
    rest = {k: v for k, v in song.items() if k not in bad}
    for error in jsonschema.Draft202012Validator(schema).iter_errors(rest):
        if error.validator == "required":
            bad.add(error.message.split("'")[1])  # "'tempo' is a required property"
        else:
            bad.add(str(error.path[0]) if error.path else "")
    return bad


def _service_refuses(song: object, rows: int) -> str | None:
    """The field the service names for ``song`` sent ``rows`` times (None: accepted)."""
    try:
        validate_rows([song] * rows)
    except ValidationError as err:
        return err.field
    return None


def _agree(schema: dict, song: object, rows: int) -> None:
    refused = _document_refuses(schema, song)
    named = _service_refuses(song, rows)
    if not refused:
        assert named is None, (song, named)
    else:
        assert named == min(refused, key=lambda f: ORDER.get(f, -1)), (song, refused, named)


def test_the_document_states_the_schema_bounds(song_schema):
    props = song_schema["properties"]
    for feature in FEATURES:
        declared = props[feature.name]
        number = next(o for o in declared.get("anyOf", [declared]) if o.get("type") != "null")
        assert number["type"] == ("integer" if feature.dtype == "int" else "number")
        low = "exclusiveMinimum" if feature.exclusive_minimum else "minimum"
        assert number.get(low) == feature.minimum, feature.name
        assert number.get("maximum") == feature.maximum, feature.name
        assert (feature.name in song_schema.get("required", [])) == feature.required


@CONTRACT
@given(
    song=st.one_of(songs(), broken_songs().map(lambda case: case[0])),
    rows=st.sampled_from([1, FAST_MIN_ROWS]),
)
def test_validator_and_document_agree_on_songs(song_schema, song, rows):
    _agree(song_schema, song, rows)


@CONTRACT
@given(
    song=st.one_of(
        json_values,
        st.dictionaries(st.sampled_from(sorted(FEATURES_BY_NAME)), json_values, max_size=16),
    ),
    rows=st.sampled_from([1, FAST_MIN_ROWS]),
)
def test_validator_and_document_agree_on_junk(song_schema, song, rows):
    _agree(song_schema, song, rows)


@pytest.mark.parametrize("value", [True, "1", None, 2.5, 10**400, -1, 12, math.nan, [0]])
def test_examples_the_two_could_read_differently(song_schema, value):
    _agree(song_schema, {**songs_example(), "key": value}, 1)
    _agree(song_schema, {**songs_example(), "key": value}, FAST_MIN_ROWS)


def songs_example() -> dict:
    from service.schemas import EXAMPLE_SONG

    return dict(EXAMPLE_SONG)
