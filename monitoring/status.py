"""The monitoring statuses and their order, written once.

Every section (drift, performance, quality), the run as a whole and the alert channels speak
of the same four statuses; ranking them in one place keeps "worse than" from meaning one thing
in the assessment and another in the alert threshold.
"""

from __future__ import annotations

SEVERITY = {"ok": 0, "insufficient_data": 0, "warning": 1, "alert": 2}
"""Status -> rank: ``warning`` and ``alert`` are problems, ``ok`` and ``insufficient_data`` not."""


def worst(*statuses: str) -> str:
    """The most severe of ``statuses`` (``ok`` when none).

    ``insufficient_data`` ranks just below ``ok``: a section that could be judged says more than
    one that could not.
    """
    return max(statuses, key=lambda s: (SEVERITY[s], s != "insufficient_data"), default="ok")


def is_problem(status: str) -> bool:
    """True for ``warning`` and ``alert``: a status that goes into the run's reasons."""
    return SEVERITY[status] > 0
