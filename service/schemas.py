"""Pydantic models of the HTTP API, generated from the shared feature schema.

They describe the API in the OpenAPI page (types, bounds, descriptions, examples). Requests are
*validated* by :mod:`service.validation` with the same schema, which is faster and reports the
field and the rule in one consistent error shape.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from reggaeton.schema import FEATURES, Feature

EXAMPLE_SONG: dict[str, Any] = {
    "popularity": 60, "danceability": 0.607, "energy": 0.875, "key": 0, "loudness": -4.434,
    "mode": 1, "speechiness": 0.0605, "acousticness": 0.00114, "instrumentalness": 0.00765,
    "liveness": 0.467, "valence": 0.457, "tempo": 131.058, "duration": 264520,
    "time_signature": 4, "id_new": 2301,
}
"""The first song of ``data/data_test.csv`` in the original request shape."""


def _field(feature: Feature) -> tuple[Any, Any]:
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


class PredictSongsRequest(BaseModel):
    """Body of ``POST /predict-songs``: 1 to MAX_BATCH_ROWS songs (default 10,000)."""

    model_config = ConfigDict(json_schema_extra={"example": {"data": [EXAMPLE_SONG]}})
    data: list[Song] = Field(..., min_length=1, max_length=10_000)  # type: ignore[valid-type]


class Prediction(BaseModel):
    """One result. ``prediction`` keeps the original one-element list: [1.0] is reggaeton."""

    model_config = ConfigDict(json_schema_extra={"example": {
        "prediction": [1.0], "label": "reggaeton", "probability": 0.93,
        "model_version": "reggaeton_clf:abc123", "request_id": "5f0c...e1"}})
    prediction: list[float]
    label: Literal["reggaeton", "other"]
    probability: float = Field(..., ge=0, le=1)
    model_version: str
    request_id: str


class PredictSongsResponse(BaseModel):
    """Results of a batch, in the order of the request."""

    results: list[Prediction]
    count: int
    model_version: str


class FeedbackRequest(BaseModel):
    """Ground truth for an earlier prediction; the last feedback for a request wins."""

    model_config = ConfigDict(json_schema_extra={"example": {"request_id": "5f0c...e1",
                                                             "label": 1}})
    request_id: str = Field(..., min_length=1, max_length=200,
                            description="The request_id returned with the prediction")
    label: Literal[0, 1] = Field(..., description="1 = reggaeton, 0 = other")


class FeedbackResponse(BaseModel):
    """Acknowledgement of recorded feedback."""

    request_id: str
    label: int
    recorded: bool


class ErrorResponse(BaseModel):
    """Every 4xx/5xx answer: what went wrong, which field, which rule."""

    model_config = ConfigDict(json_schema_extra={"example": {
        "error": "validation_error", "detail": "data.tempo: must be <= 300",
        "field": "data.tempo", "rule": "must be <= 300"}})
    error: str
    detail: str
    field: str
    rule: str


class ModelInfo(BaseModel):
    """The version this worker serves and how it got there."""

    model_version: str
    created_at: str | None = None
    threshold: float
    features: list[str] | None = None
    metrics: dict[str, Any] | None = None
    estimator: str | None = None
    inference_path: Literal["compiled-trees", "pipeline"]
    worker: int | None = None
    pinned: str | None = None
    promoted: str | None = None
    reload: dict[str, Any]


class ReloadResult(BaseModel):
    """Outcome of ``POST /admin/reload``."""

    changed: bool
    model_version: str | None
    error: str | None
