"""Hypothesis strategies for songs, built from the shared schema (never a copied list)."""

from __future__ import annotations

import math

from hypothesis import strategies as st

from reggaeton.schema import FEATURES, FEATURES_BY_NAME, Feature


def valid_value(feature: Feature) -> st.SearchStrategy:
    """Values a feature accepts."""
    low = feature.minimum if feature.minimum is not None else -1e6
    high = feature.maximum if feature.maximum is not None else 1e6
    if feature.dtype == "int":
        return st.integers(int(math.ceil(low)), int(math.floor(high)))
    return st.floats(
        low, high, allow_nan=False, allow_infinity=False, exclude_min=feature.exclusive_minimum
    )


def invalid_value(feature: Feature, numeric_only: bool = False) -> st.SearchStrategy:
    """Values a feature must reject (wrong type, non-finite, out of range, fractional int).

    ``numeric_only`` keeps the numbers (what a protobuf double field can carry).
    """
    options = [st.sampled_from([math.nan, math.inf, -math.inf])]
    if not numeric_only:
        options += [
            st.text(max_size=5),
            st.booleans(),
            st.lists(st.integers(), max_size=2),
            st.dictionaries(st.text(max_size=3), st.integers(), max_size=1),
        ]
    if feature.maximum is not None:
        options.append(
            st.floats(
                feature.maximum + 1e-6,
                1e12,
                exclude_min=True,
                allow_nan=False,
                allow_infinity=False,
            )
        )
    if feature.minimum is not None:
        if feature.exclusive_minimum:
            options.append(st.floats(-1e12, feature.minimum, allow_nan=False, allow_infinity=False))
        else:
            options.append(
                st.floats(
                    -1e12,
                    feature.minimum - 1e-6,
                    allow_nan=False,
                    allow_infinity=False,
                    exclude_max=True,
                )
            )
    if feature.dtype == "int":
        low = feature.minimum if feature.minimum is not None else -100
        options.append(st.just(low + 0.5))
    return st.one_of(options)


@st.composite
def songs(draw: st.DrawFn, optional: bool = True) -> dict:
    """A valid song as a JSON object (optional columns sometimes left out, ``id_new`` sometimes
    present, unknown extras sometimes present)."""
    song = {}
    for feature in FEATURES:
        if not feature.required and optional and draw(st.booleans()):
            continue
        song[feature.name] = draw(valid_value(feature))
    if draw(st.booleans()):
        song["id_new"] = draw(st.integers(0, 10**6))
    if draw(st.booleans()):
        song["extra_" + draw(st.text("abcxyz", min_size=1, max_size=4))] = draw(st.integers())
    return song


@st.composite
def broken_songs(draw: st.DrawFn, numeric_only: bool = False) -> tuple[dict, str]:
    """A song with exactly one bad field, and that field's name."""
    song = draw(songs(optional=False))
    name = draw(st.sampled_from(sorted(FEATURES_BY_NAME)))
    feature = FEATURES_BY_NAME[name]
    if feature.required and draw(st.booleans()):
        del song[name]
    else:
        song[name] = draw(invalid_value(feature, numeric_only))
    return song, name


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
"""Arbitrary JSON-like values (NaN and Infinity included)."""
