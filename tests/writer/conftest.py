"""Fixtures for the prediction writer tests (paths of a real SQLite log and its spill)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Path of a fresh SQLite prediction log."""
    return tmp_path / "var" / "predictions.db"


@pytest.fixture
def spill_path(tmp_path: Path) -> Path:
    """Path of the spill file (its folder does not exist yet)."""
    return tmp_path / "var" / "spill" / "predictions.jsonl"
