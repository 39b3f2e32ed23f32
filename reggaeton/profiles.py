"""The only module that imports whylogs.

whylogs 1.6.4 is the last release and still refers to ``np.unicode_``, which NumPy 2
removed (it was an alias of ``np.str_``). :func:`_whylogs` restores that alias, once,
right before importing whylogs, so the rest of the project never touches whylogs directly.
Remove the alias when whylogs (or a successor) supports NumPy 2 natively.
"""

from __future__ import annotations

import functools
import os
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
    # whylogs sends usage statistics to its (defunct) hosted service unless opted out.
    os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "True")
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


def column_names(view: Any) -> list[str]:
    """Names of the columns a profile holds."""
    return sorted(view.get_columns())


def row_count(view: Any, column: str) -> int:
    """Number of values (including nulls) a profile saw in ``column`` (0 when absent)."""
    col = view.get_column(column)
    if col is None:
        return 0
    counts = col.get_metric("counts")
    return int(counts.n.value) if counts is not None else 0


def drift_scores(
    target: Any, reference: Any, columns: Iterable[str] | None = None
) -> dict[str, dict[str, Any]]:
    """whylogs' own drift scores between two profiles (sketch-based, approximate).

    whylogs picks KS on the KLL quantile sketches for numbers and chi-square on the
    frequent-items sketches for discrete values (``whylogs.viz.drift``, the ``viz`` extra).
    The monitoring job uses exact tests on the raw window; these scores are a cross-check
    that needs nothing but two stored profiles (e.g. a merged week vs the reference).

    Args:
        target: Profile of the window (``DatasetProfileView``).
        reference: Profile of the training data.
        columns: Restrict to these columns (default: every column both profiles share).

    Returns:
        Column -> ``{"algorithm", "pvalue", "statistic", "drift_category"}``; columns whose
        metrics do not suit any algorithm are left out.
    """
    _whylogs()
    from whylogs.viz.drift.column_drift_algorithms import calculate_drift_scores

    wanted = set(columns) if columns is not None else None
    shared = set(target.get_columns()) & set(reference.get_columns())
    if wanted is not None:
        shared &= wanted
    target_view = target if wanted is None else _select(target, shared)
    reference_view = reference if wanted is None else _select(reference, shared)
    scores = calculate_drift_scores(
        target_view=target_view, reference_view=reference_view, with_thresholds=True
    )
    out: dict[str, dict[str, Any]] = {}
    for name, score in scores.items():
        if name in shared and score:
            out[name] = {
                "algorithm": score.get("algorithm"),
                "pvalue": _float(score.get("pvalue")),
                "statistic": _float(score.get("statistic")),
                "drift_category": score.get("drift_category"),
            }
    return out


def _select(view: Any, columns: set[str]) -> Any:
    """A copy of ``view`` restricted to ``columns``."""
    from whylogs.core.view.dataset_profile_view import DatasetProfileView

    kept = {name: col for name, col in view.get_columns().items() if name in columns}
    return DatasetProfileView(
        columns=kept,
        dataset_timestamp=view.dataset_timestamp,
        creation_timestamp=view.creation_timestamp,
    )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
