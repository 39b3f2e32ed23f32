"""OpenAPI documentation of the mounted HTTP routes.

BentoML's OpenAPI page (``/docs.json``, shown at ``/``) documents ``@bentoml.api`` methods and
the routes of mounted *FastAPI* apps. Our routes are a plain Starlette app (FastAPI's request
machinery costs ~80 us per request, about as much as the whole prediction), so their contract is
declared here on a FastAPI app that is mounted *after* the Starlette app: BentoML reads its
OpenAPI schema, but requests never reach it because the Starlette app matches the same paths
first. The declared models come from :mod:`service.schemas`, which derives them from the shared
feature schema, so the documentation cannot drift from the validation.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from service import schemas

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": schemas.ErrorResponse, "description": text}
    for status, text in (
        (400, "Invalid JSON"), (401, "Missing or wrong bearer token (when API_TOKEN is set)"),
        (404, "Unknown request_id"), (413, "Body larger than MAX_BODY_BYTES"),
        (422, "A field breaks the schema (the field and the rule are named)"),
        (503, "No model loaded yet, or a temporary failure"),
    )
}


def _documented_only(*_: Any, **__: Any) -> None:  # pragma: no cover - never routed to
    raise RuntimeError("documentation-only route: the Starlette app serves this path")


def build_docs_app() -> FastAPI:
    """A FastAPI app that only carries the OpenAPI description of the Starlette routes."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    async def predict_song(body: schemas.PredictSongRequest) -> None:
        """Classify one song. `prediction` [1.0] means reggaeton, [0.0] other; `probability`
        is P(reggaeton); the label uses the model's stored threshold. Unknown fields such as
        `id_new` are ignored. Every prediction is logged with its `request_id`."""

    async def predict_songs(body: schemas.PredictSongsRequest) -> None:
        """Classify 1 to MAX_BATCH_ROWS songs (default 10,000); one result per song, in order,
        each with its own `request_id` for later feedback."""

    async def feedback(body: schemas.FeedbackRequest) -> None:
        """Record the true label of an earlier prediction (last feedback wins). Needs
        `Authorization: Bearer <API_TOKEN>` when API_TOKEN is set."""

    async def model() -> None:
        """The model version this worker serves, its metrics, threshold, features, the
        inference path (compiled trees or generic pipeline) and the last reload outcome."""

    async def reload() -> None:
        """Re-read the promotion record (or MODEL_TAG) and switch this worker to that version
        if it loads and verifies; otherwise keep serving and answer 409 with the reason. Other
        workers follow within MODEL_WATCH_INTERVAL. Needs the bearer token when set."""

    for path, func, method, response, codes in (
        ("/predict-song", predict_song, "POST", schemas.Prediction, (400, 413, 422, 503)),
        ("/predict-songs", predict_songs, "POST", schemas.PredictSongsResponse,
         (400, 413, 422, 503)),
        ("/feedback", feedback, "POST", schemas.FeedbackResponse, (400, 401, 404, 422, 503)),
        ("/model", model, "GET", schemas.ModelInfo, (503,)),
        ("/admin/reload", reload, "POST", schemas.ReloadResult, (401,)),
    ):
        func.__annotations__["return"] = None
        app.add_api_route(path, func, methods=[method], response_model=response,
                          responses={c: ERRORS[c] for c in codes}, tags=["Service APIs"],
                          summary=(func.__doc__ or "").split(".")[0].strip())
    return app
