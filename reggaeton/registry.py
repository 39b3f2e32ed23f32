"""Model registry: versions in the BentoML model store plus an auditable promotion record.

Each training run saves one version of ``reggaeton_clf``. A version's folder holds:

* ``pipeline.joblib``: the fitted scikit-learn Pipeline (preprocessing + estimator);
* ``metadata.json``: metrics, threshold, features, data hash, config, versions, ...;
* ``reference/``: the drift reference (whylogs profile and a sample of the training data).

BentoML's ``latest`` ignores labels, and labels cannot be edited after saving, so which
version serves is kept in a separate JSON record (``<home>/promotion/reggaeton_clf.json``,
see :mod:`reggaeton.promotion`) that keeps its whole history for rollback.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reggaeton import MODEL_NAME
from reggaeton.promotion import PromotionError, PromotionRecord

__all__ = ["ModelLoadError", "ModelVersion", "PromotionError", "PromotionRecord", "Registry",
           "home_from_env", "sha256_file"]

PIPELINE_FILE = "pipeline.joblib"
METADATA_FILE = "metadata.json"
REFERENCE_DIR = "reference"
DEFAULT_HOME = Path("var") / "bentoml"


class ModelLoadError(RuntimeError):
    """A version is missing, corrupted or incompatible and must not be served."""


def home_from_env(environ: Mapping[str, str] | None = None) -> Path:
    """Return the model-store home: ``BENTOML_HOME`` or ``var/bentoml`` in the working dir."""
    env = os.environ if environ is None else environ
    return Path(env.get("BENTOML_HOME") or DEFAULT_HOME).resolve()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def sha256_file(path: Path) -> str:
    """SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelVersion:
    """One saved version. ``path`` is its folder in the store."""

    tag: str
    path: Path
    metadata: dict[str, Any]

    @property
    def version(self) -> str:
        """The version part of the tag (after ``reggaeton_clf:``)."""
        return self.tag.split(":", 1)[1]

    @property
    def threshold(self) -> float:
        """Decision threshold chosen at training time (0.5 when none was stored)."""
        return float(self.metadata.get("threshold", 0.5))

    def reference_path(self, name: str) -> Path:
        """Path of a file of the drift reference, e.g. ``profile.bin`` or ``sample.csv``."""
        return self.path / REFERENCE_DIR / name


class Registry:
    """Save, list and load versions of ``reggaeton_clf`` in one BentoML model store.

    Args:
        home: The BentoML home folder (the store lives in ``home/models``).
    """

    def __init__(self, home: Path | str) -> None:
        from bentoml._internal.models import ModelStore  # store bound to this home only

        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self._store = ModelStore(str(self.home / "models"))
        self.promotions = PromotionRecord(self.home / "promotion" / f"{MODEL_NAME}.json")

    def save(
        self,
        pipeline: Any,
        metadata: Mapping[str, Any],
        reference_files: Mapping[str, bytes] | None = None,
    ) -> ModelVersion:
        """Save a fitted pipeline as a new version.

        Args:
            pipeline: The fitted scikit-learn Pipeline.
            metadata: JSON-serialisable metadata (metrics, threshold, features, ...).
            reference_files: File name -> bytes, written under ``reference/``.

        Returns:
            The saved version.
        """
        import bentoml
        import joblib

        meta = dict(metadata)
        meta.setdefault("created_at", _now())
        with bentoml.models.create(
            MODEL_NAME,
            labels={"framework": "sklearn"},
            metadata=_summary(meta),
            _model_store=self._store,
        ) as model:
            folder = Path(model.path)
            joblib.dump(pipeline, folder / PIPELINE_FILE)
            meta["pipeline_sha256"] = sha256_file(folder / PIPELINE_FILE)
            meta["tag"] = str(model.tag)
            ref = folder / REFERENCE_DIR
            ref.mkdir(exist_ok=True)
            for name, content in (reference_files or {}).items():
                (ref / name).write_bytes(content)
            (folder / METADATA_FILE).write_text(json.dumps(meta, indent=2, default=str))
            tag = str(model.tag)
        return self.get(tag)

    def get(self, tag: str) -> ModelVersion:
        """Return a version by tag (``reggaeton_clf:abc`` or just ``abc``).

        Raises:
            ModelLoadError: when the version does not exist or its metadata is unreadable.
        """
        full = tag if ":" in tag else f"{MODEL_NAME}:{tag}"
        try:
            model = self._store.get(full)
            folder = Path(model.path)
            meta = json.loads((folder / METADATA_FILE).read_text())
        except Exception as exc:  # NotFound, missing or corrupted metadata.json
            raise ModelLoadError(f"model version {full} is not usable: {exc}") from exc
        return ModelVersion(tag=str(model.tag), path=folder, metadata=meta)

    def list(self) -> list[ModelVersion]:
        """All readable versions, oldest first."""
        out = []
        for model in self._store.list(MODEL_NAME):
            with contextlib.suppress(ModelLoadError):
                # created_at has second resolution; BentoML's creation_time breaks ties
                out.append((model.info.creation_time, self.get(str(model.tag))))
        out.sort(key=lambda item: (item[1].metadata.get("created_at", ""), item[0]))
        return [version for _, version in out]

    def load_pipeline(self, version: ModelVersion) -> Any:
        """Load a version's pipeline once, checking its checksum and that it can predict.

        Raises:
            ModelLoadError: when the file is missing, altered, or does not load.
        """
        import joblib

        path = version.path / PIPELINE_FILE
        expected = version.metadata.get("pipeline_sha256")
        try:
            if expected and sha256_file(path) != expected:
                raise ModelLoadError(f"{version.tag}: {PIPELINE_FILE} checksum mismatch")
            pipeline = joblib.load(path)
        except ModelLoadError:
            raise
        except Exception as exc:
            raise ModelLoadError(f"{version.tag}: cannot load {PIPELINE_FILE}: {exc}") from exc
        if not hasattr(pipeline, "predict_proba"):
            raise ModelLoadError(f"{version.tag}: loaded object has no predict_proba")
        return pipeline

    def serving_version(self, model_tag: str | None = None) -> ModelVersion:
        """The version to serve: the ``model_tag`` pin if given, else the promoted one.

        Raises:
            ModelLoadError: when nothing is pinned or promoted, or the version is unusable.
        """
        tag = model_tag or self.promotions.current()
        if not tag:
            raise ModelLoadError(f"no promoted version of {MODEL_NAME} in {self.home}")
        return self.get(tag)


def _summary(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The metadata BentoML keeps for ``bentoml models get``: everything a user looks for
    (metrics, threshold, features and dtypes, row counts, data hashes, config, library
    versions, commit), with null values left out (BentoML refuses None). The complete record,
    reference paths included, is ``metadata.json`` inside the model folder."""
    keep = ("created_at", "threshold", "threshold_strategy", "data_sha256", "git_commit",
            "estimator", "imbalance", "positive_rate", "features", "feature_dtypes", "rows",
            "data_files", "cv_metrics", "config", "library_versions")
    out: dict[str, Any] = {k: _no_nulls(meta[k]) for k in keep if meta.get(k) is not None}
    for name, value in (meta.get("metrics") or {}).items():
        if isinstance(value, int | float):
            out[f"metric_{name}"] = float(value)
    return out


def _no_nulls(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _no_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_no_nulls(v) for v in value if v is not None]
    return value
