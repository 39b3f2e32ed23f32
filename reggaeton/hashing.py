"""File hashing, written once: the SHA-256 digest that pins model and data files."""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    """SHA-256 hex digest of a file's bytes, read in 1 MiB chunks (large files stay out of RAM).

    The registry records it for a model's pipeline file and checks it at load; the trainer
    records it for each data file, so a version says exactly what it was trained on.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """SHA-256 hex digest of bytes already in memory (a file read once, then checked and used)."""
    return hashlib.sha256(data).hexdigest()
