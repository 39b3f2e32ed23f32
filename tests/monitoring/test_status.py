"""The one status order: what is worse than what, for sections, runs and alert thresholds."""

from __future__ import annotations

import pytest

from monitoring.status import SEVERITY, is_problem, worst


def test_worst_ranks_alert_over_warning_over_ok_over_insufficient_data() -> None:
    assert worst("ok", "alert", "warning") == "alert"
    assert worst("warning", "ok") == "warning"
    assert worst("insufficient_data", "ok") == "ok"  # a judged section says more
    assert worst("insufficient_data") == "insufficient_data"
    assert worst() == "ok"


@pytest.mark.parametrize(
    ("status", "problem"),
    [
        ("ok", False),
        ("insufficient_data", False),
        ("warning", True),
        ("alert", True),
    ],
)
def test_only_warning_and_alert_are_problems(status: str, problem: bool) -> None:
    assert is_problem(status) is problem


def test_every_alert_threshold_the_config_accepts_is_ranked_as_a_problem() -> None:
    from typing import get_args

    from monitoring.config import NotifyStatus

    assert all(is_problem(s) for s in get_args(NotifyStatus))
    assert set(get_args(NotifyStatus)) <= set(SEVERITY)
