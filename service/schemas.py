"""The typed request and response bodies of the HTTP API, built from the shared feature schema.

The OpenAPI document (:mod:`service.openapi`) is generated from these types. Requests are checked
by :mod:`service.validation`, which reads the same bounds from :data:`reggaeton.schema.FEATURES`
into numpy arrays (a per-request pydantic model would cost more than the model itself on a
1,000-row batch); ``tests/fuzz/test_validator_matches_schema.py`` proves that both accept
and refuse the same songs. Answers are built as plain dicts and
``tests/service/test_app_inprocess.py`` checks them against these types.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from reggaeton.schema import FEATURES, LABEL_NAMES, NEGATIVE_LABEL, POSITIVE_LABEL, Feature

EXAMPLE_SONG: dict[str, Any] = {
    "popularity": 60,
    "danceability": 0.607,
    "energy": 0.875,
    "key": 0,
    "loudness": -4.434,
    "mode": 1,
    "speechiness": 0.0605,
    "acousticness": 0.00114,
    "instrumentalness": 0.00765,
    "liveness": 0.467,
    "valence": 0.457,
    "tempo": 131.058,
    "duration": 264520,
    "time_signature": 4,
    "id_new": 2301,
}
"""The first song of ``data/data_test.csv`` in the original request shape."""
LabelName = Literal[LABEL_NAMES[POSITIVE_LABEL], LABEL_NAMES[NEGATIVE_LABEL]]  # type: ignore[valid-type]
"""The ``label`` of a result: the names of :data:`reggaeton.schema.LABEL_NAMES`."""
LABELS_TEXT = ", ".join(f"{k} = {LABEL_NAMES[k]}" for k in (POSITIVE_LABEL, NEGATIVE_LABEL))
REQUEST_ID_MAX = 200
"""Longest feedback ``request_id`` accepted (ours are 32 to 38 characters)."""


def _field(feature: Feature) -> tuple[Any, Any]:
    """One feature as a pydantic field: its type, bounds, requiredness and description."""
    bounds: dict[str, float] = {}
    if feature.minimum is not None:
        bounds["gt" if feature.exclusive_minimum else "ge"] = feature.minimum
    if feature.maximum is not None:
        bounds["le"] = feature.maximum
    kind: Any = int if feature.dtype == "int" else float
    if feature.required:
        return kind, Field(..., description=feature.description, **bounds)
    return kind | None, Field(None, description=feature.description, **bounds)


Song = create_model(
    "Song",
    __config__=ConfigDict(extra="allow", json_schema_extra={"example": EXAMPLE_SONG}),
    __doc__="One song's Spotify audio features. Unknown extra keys (e.g. id_new) are ignored.",
    **{f.name: _field(f) for f in FEATURES},
)


class PredictSongRequest(BaseModel):
    """Body of ``POST /predict-song`` (the original API's shape)."""

    model_config = ConfigDict(json_schema_extra={"example": {"data": EXAMPLE_SONG}})
    data: Song  # type: ignore[valid-type]


@cache
def predict_songs_request(max_rows: int) -> type[BaseModel]:
    """Body of ``POST /predict-songs`` for a service that accepts at most ``max_rows`` songs.

    A function, not a constant: the limit is the service's ``MAX_BATCH_ROWS`` setting, so the
    document states the limit the server enforces.
    """
    return create_model(
        "PredictSongsRequest",
        __config__=ConfigDict(json_schema_extra={"example": {"data": [EXAMPLE_SONG]}}),
        __doc__=f"Body of ``POST /predict-songs``: 1 to {max_rows} songs (MAX_BATCH_ROWS).",
        data=(list[Song], Field(..., min_length=1, max_length=max_rows)),  # type: ignore[valid-type]
    )


class Prediction(BaseModel):
    """One result. ``prediction`` keeps the original one-element list: [1.0] is reggaeton."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "prediction": [1.0],
                "label": "reggaeton",
                "probability": 0.93,
                "model_version": "reggaeton_clf:abc123",
                "request_id": "5f0c...e1",
            }
        }
    )
    prediction: list[float]
    label: LabelName
    probability: float = Field(..., ge=0, le=1)
    model_version: str
    request_id: str


class PredictSongsResponse(BaseModel):
    """Results of a batch, in the order of the request."""

    results: list[Prediction]
    count: int
    model_version: str


class FeedbackRequest(BaseModel):
    """Ground truth for an earlier prediction; the last feedback for a request wins.

    The ``/feedback`` route validates its body with this model (strict: ``true`` is not 1).
    """

    model_config = ConfigDict(
        strict=True, json_schema_extra={"example": {"request_id": "5f0c...e1", "label": 1}}
    )
    request_id: str = Field(
        ...,
        min_length=1,
        max_length=REQUEST_ID_MAX,
        description="A non-empty string, the request_id returned with the prediction",
    )
    label: int = Field(..., ge=NEGATIVE_LABEL, le=POSITIVE_LABEL, description=LABELS_TEXT)


class FeedbackResponse(BaseModel):
    """Acknowledgement of recorded feedback."""

    request_id: str
    label: int
    recorded: bool


class ModelInfo(BaseModel):
    """The version this worker serves and how it got there."""

    model_version: str
    created_at: str | None = None
    threshold: float
    features: list[str] | None = None
    metrics: dict[str, Any] | None = None
    estimator: str | None = None
    inference_path: str
    worker: int | None = None
    pinned: str | None = None
    promoted: str | None = None
    reload: dict[str, Any]


class ReloadResult(BaseModel):
    """Outcome of ``POST /admin/reload``."""

    changed: bool
    model_version: str | None
    error: str | None
