"""The whylogs wrapper: NumPy-2 alias, profiles, serialisation round trip, merge, drift scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from reggaeton import profiles


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)

    def make(n: int, shift: float = 0.0) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "tempo": rng.normal(120 + shift, 25, n),
                "energy": rng.uniform(0, 1, n),
                "key": rng.integers(0, 12, n),
            }
        )

    return make(3000), make(2000), make(2000, shift=20)


def test_numpy2_alias_applied_and_profile_counts(frames) -> None:
    view = profiles.profile_frame(frames[0])
    assert np.unicode_ is np.str_  # type: ignore[attr-defined]
    assert profiles.column_names(view) == ["energy", "key", "tempo"]
    assert profiles.row_count(view, "tempo") == 3000
    assert profiles.row_count(view, "absent") == 0
    summary = profiles.summary(view)
    assert summary.loc["tempo", "distribution/mean"] == pytest.approx(
        frames[0]["tempo"].mean(), rel=1e-9
    )


def test_serialize_round_trip_and_merge(frames) -> None:
    a, b = profiles.profile_frame(frames[0]), profiles.profile_frame(frames[1])
    back = profiles.deserialize(profiles.serialize(a))
    assert profiles.row_count(back, "energy") == 3000
    pd.testing.assert_frame_equal(profiles.summary(back), profiles.summary(a))
    merged = profiles.merge([back, b])
    assert profiles.row_count(merged, "tempo") == 5000
    both = pd.concat([frames[0], frames[1]])
    assert profiles.summary(merged).loc["tempo", "distribution/mean"] == pytest.approx(
        both["tempo"].mean(), rel=1e-9
    )
    with pytest.raises(ValueError, match="at least one"):
        profiles.merge([])


def test_drift_scores_flag_only_the_shifted_column(frames) -> None:
    ref = profiles.profile_frame(frames[0])
    same = profiles.drift_scores(profiles.profile_frame(frames[1]), ref)
    assert set(same) == {"tempo", "energy", "key"}
    # Sketch-based KS (KLL quantiles, randomised) approximates the exact statistic.
    exact = stats.ks_2samp(frames[0]["tempo"], frames[1]["tempo"]).statistic
    assert same["tempo"]["statistic"] == pytest.approx(exact, abs=0.015)
    shifted = profiles.drift_scores(
        profiles.profile_frame(frames[2]), ref, columns=["tempo", "energy"]
    )
    assert set(shifted) == {"tempo", "energy"}
    assert shifted["tempo"]["drift_category"] == "DRIFT" and shifted["tempo"]["pvalue"] < 1e-6
    assert shifted["energy"]["drift_category"] == "NO_DRIFT"
    assert shifted["tempo"]["algorithm"] == "ks"
