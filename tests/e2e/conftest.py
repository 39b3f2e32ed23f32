"""Fixtures of the end-to-end tests (real processes; see ``e2e/support.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e import support


@pytest.fixture(scope="session")
def shared(
    trained_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[support.Deployment]:
    """The session's shared service (API_TOKEN set); see :func:`support.shared_deployment`."""
    yield support.shared_deployment(trained_home, tmp_path_factory)
    support.stop_shared()
