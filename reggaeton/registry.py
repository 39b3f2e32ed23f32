"""Model registry: versioned model folders in the model-store home plus a promotion record.

Each training run saves one version of ``reggaeton_clf``. A version's folder,
``<home>/models/reggaeton_clf/<version>/``, holds:

* ``pipeline.joblib``: the fitted scikit-learn Pipeline (preprocessing + estimator), a pickle
  read only by the training-side tools that wrote it (the gate, the simulator, the benchmarks);
* ``servable.npz``: what the service and the scoring job load instead, the compiled evaluator
  as plain arrays (:mod:`reggaeton.servable`, no pickle);
* ``metadata.json``: metrics, threshold, features, data hash, config, versions, ...;
* ``reference/``: the drift reference (whylogs profile and a sample of the training data).

Why the registry writes these folders itself instead of calling ``bentoml.models``: BentoML's
public model API (``bentoml.models.create``, ``get``, ``list``) always acts on one store per
process, resolved once from ``BENTOML_HOME`` on first use, and the only way to point it at
another folder is the private ``_model_store=`` argument with the private
``bentoml._internal.models.ModelStore`` class. A :class:`Registry` must be bound to the home
it is given (the trainer, the service, the monitor and the tests each open their own, several
in one process), and everything the project keeps per version is its own files anyway. The
folders sit where BentoML's store keeps them, so versions saved by BentoML-backed releases
(same path, same ``metadata.json``) stay readable; ``bentoml models list`` does not list
versions saved from here on.

Which version serves is kept in a separate JSON record
(``<home>/promotion/reggaeton_clf.json``, see :mod:`reggaeton.promotion`) that keeps its whole
history for rollback.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reggaeton import MODEL_NAME
from reggaeton.fastpath import FastModel
from reggaeton.hashing import sha256_bytes, sha256_file
from reggaeton.promotion import PromotionError, PromotionRecord
from reggaeton.servable import SERVABLE_FILE, NotServable
from reggaeton.servable import load as read_servable
from reggaeton.timeutil import now_iso

__all__ = [
    "ModelLoadError",
    "ModelVersion",
    "PromotionError",
    "PromotionRecord",
    "Registry",
    "home_from_env",
]

PIPELINE_FILE = "pipeline.joblib"
METADATA_FILE = "metadata.json"
REFERENCE_DIR = "reference"
DEFAULT_HOME = Path("var") / "bentoml"


def _metadata_bytes(meta: Mapping[str, Any]) -> bytes:
    """``metadata.json``'s content (dates and paths written as text)."""
    return json.dumps(meta, indent=2, default=str).encode()


class ModelLoadError(RuntimeError):
    """A version is missing, corrupted or incompatible and must not be served."""


def home_from_env(environ: Mapping[str, str] | None = None) -> Path:
    """Return the model-store home: ``BENTOML_HOME`` or ``var/bentoml`` in the working dir."""
    env = os.environ if environ is None else environ
    return Path(env.get("BENTOML_HOME") or DEFAULT_HOME).resolve()


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
    """Save, list and load versions of ``reggaeton_clf`` under one model-store home.

    Args:
        home: The model-store home (versions live in ``home/models/reggaeton_clf``).
    """

    def __init__(self, home: Path | str) -> None:
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.models = self.home / "models" / MODEL_NAME
        self.promotions = PromotionRecord(self.home / "promotion" / f"{MODEL_NAME}.json")

    def save(
        self,
        pipeline: Any,
        metadata: Mapping[str, Any],
        reference_files: Mapping[str, bytes] | None = None,
        servable: bytes | None = None,
    ) -> ModelVersion:
        """Save a fitted pipeline as a new version.

        The folder is written under a temporary name and renamed into place, so readers never
        see a half-written version.

        Args:
            pipeline: The fitted scikit-learn Pipeline.
            metadata: JSON-serialisable metadata (metrics, threshold, features, ...).
            reference_files: File name -> bytes, written under ``reference/``.
            servable: The version's servable file (:func:`reggaeton.servable.export`); without
                it the version can be stored and analysed but not served.

        Returns:
            The saved version.
        """
        import joblib

        meta = dict(metadata)
        meta.setdefault("created_at", now_iso("seconds"))
        meta["saved_ns"] = time.time_ns()  # orders versions saved within the same second
        self.models.mkdir(parents=True, exist_ok=True)
        version = _new_version()
        staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=self.models))
        try:
            joblib.dump(pipeline, staging / PIPELINE_FILE)
            meta["pipeline_sha256"] = sha256_file(staging / PIPELINE_FILE)
            if servable is not None:
                (staging / SERVABLE_FILE).write_bytes(servable)
                meta["servable_sha256"] = sha256_bytes(servable)
            meta["tag"] = f"{MODEL_NAME}:{version}"
            ref = staging / REFERENCE_DIR
            ref.mkdir()
            for name, content in (reference_files or {}).items():
                (ref / name).write_bytes(content)
            (staging / METADATA_FILE).write_bytes(_metadata_bytes(meta))
            os.chmod(staging, 0o755)  # mkdtemp creates it private
            os.rename(staging, self.models / version)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return self.get(meta["tag"])

    def get(self, tag: str) -> ModelVersion:
        """Return a version by tag (``reggaeton_clf:abc`` or just ``abc``).

        Raises:
            ModelLoadError: when the version does not exist or its metadata is unreadable.
        """
        name, _, version = (tag if ":" in tag else f"{MODEL_NAME}:{tag}").partition(":")
        full = f"{name}:{version}"
        folder = self.models / version
        try:
            if name != MODEL_NAME or not _is_version(version):
                raise FileNotFoundError(f"no model {full}")
            meta = json.loads((folder / METADATA_FILE).read_text())
        except Exception as exc:  # missing folder, missing or corrupted metadata.json
            raise ModelLoadError(f"model version {full} is not usable: {exc}") from exc
        return ModelVersion(tag=full, path=folder, metadata=meta)

    def list(self) -> list[ModelVersion]:
        """All readable versions, oldest first."""
        if not self.models.is_dir():
            return []
        out = []
        for folder in self.models.iterdir():
            if folder.is_dir() and _is_version(folder.name):
                try:
                    out.append(self.get(folder.name))
                except ModelLoadError:
                    continue
        out.sort(
            key=lambda v: (
                str(v.metadata.get("created_at", "")),
                int(v.metadata.get("saved_ns", 0)),
                (v.path / METADATA_FILE).stat().st_mtime_ns,
            )
        )
        return out

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

    def load_servable(self, version: ModelVersion) -> FastModel:
        """Load a version's compiled evaluator from its servable file (never the pickle).

        Raises:
            ModelLoadError: when the file is missing, altered, malformed or disagrees with the
                probabilities stored with it.
        """
        path = version.path / SERVABLE_FILE
        expected = version.metadata.get("servable_sha256")
        if not path.is_file() or not expected:
            raise ModelLoadError(
                f"{version.tag}: no {SERVABLE_FILE} (saved before the service stopped loading "
                f"pickles); write it with `python -m training.export {version.version}`"
            )
        data = path.read_bytes()
        if sha256_bytes(data) != expected:
            raise ModelLoadError(f"{version.tag}: {SERVABLE_FILE} checksum mismatch")
        try:
            return read_servable(data)
        except NotServable as exc:
            raise ModelLoadError(f"{version.tag}: {SERVABLE_FILE}: {exc}") from exc

    def add_servable(self, version: ModelVersion, servable: bytes) -> ModelVersion:
        """Write the servable file of a version saved without one (``training.export``).

        The file and then ``metadata.json`` are each written under a temporary name and
        renamed into place, so a reader sees either no servable file or a checked one.
        """
        meta = {**version.metadata, "servable_sha256": sha256_bytes(servable)}
        for name, data in (
            (SERVABLE_FILE, servable),
            (METADATA_FILE, _metadata_bytes(meta)),
        ):
            staged = version.path / f".{name}.tmp"
            staged.write_bytes(data)
            os.replace(staged, version.path / name)
        return self.get(version.tag)

    def serving_version(self, model_tag: str | None = None) -> ModelVersion:
        """The version to serve: the ``model_tag`` pin if given, else the promoted one.

        Raises:
            ModelLoadError: when nothing is pinned or promoted, or the version is unusable.
        """
        tag = model_tag or self.promotions.current()
        if not tag:
            raise ModelLoadError(f"no promoted version of {MODEL_NAME} in {self.home}")
        return self.get(tag)


def _new_version() -> str:
    """A new version id: 16 lowercase base32 characters, time first, then random bits."""
    raw = time.time_ns().to_bytes(8, "big")[:5] + secrets.token_bytes(5)
    return base64.b32encode(raw).decode().lower()


def _is_version(name: str) -> bool:
    """A version folder's name (not a staging folder, not BentoML's ``latest`` file)."""
    return bool(name) and not name.startswith(".") and name.isalnum() and name != "latest"
