"""The only module that imports whylogs.

whylogs 1.6.4 is the last release and still refers to ``np.unicode_``, which NumPy 2
removed (it was an alias of ``np.str_``). :func:`_whylogs` restores that alias, once,
right before importing whylogs, so the rest of the project never touches whylogs directly.
Remove the alias when whylogs (or a successor) supports NumPy 2 natively.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd


@functools.cache
def _whylogs() -> ModuleType:
    """Import whylogs with the NumPy 2 compatibility alias applied."""
    if not hasattr(np, "unicode_"):
        np.unicode_ = np.str_  # type: ignore[attr-defined]  # NumPy 2 removed the alias
    import whylogs

    return whylogs


def profile_frame(frame: pd.DataFrame) -> Any:
    """Profile a DataFrame.

    Args:
        frame: Columns to profile (features, probability, prediction, ...).

    Returns:
        A whylogs ``DatasetProfileView`` (small, mergeable, serialisable).
    """
    why = _whylogs()
    return why.log(pandas=frame).view()


def serialize(view: Any) -> bytes:
    """Serialise a profile view to bytes (whylogs' protobuf format)."""
    return view.serialize()


def deserialize(data: bytes) -> Any:
    """Read a profile view written by :func:`serialize`."""
    _whylogs()
    from whylogs.core.view.dataset_profile_view import DatasetProfileView

    return DatasetProfileView.deserialize(data)


def merge(views: Iterable[Any]) -> Any:
    """Merge profile views (e.g. chunks of a window, or runs of a week) into one.

    Raises:
        ValueError: when ``views`` is empty.
    """
    merged = None
    for view in views:
        merged = view if merged is None else merged.merge(view)
    if merged is None:
        raise ValueError("merge() needs at least one profile")
    return merged


def summary(view: Any) -> pd.DataFrame:
    """Per-column summary statistics of a profile (count, mean, quantiles, ...)."""
    return view.to_pandas()
