"""Exact two-sample drift tests on a streamed window (pure: numbers in, numbers out).

Why this is exact although the window is never held in memory: the two-sample
Kolmogorov-Smirnov statistic ``D = sup |F_ref(x) - F_win(x)|`` of two step functions is
reached at a jump of one of them. Between two consecutive reference values ``r_i`` and
``r_{i+1}`` the reference ECDF is constant and the window ECDF only grows, so the supremum
on that interval is reached at ``r_i`` or just before ``r_{i+1}``. It is therefore enough to
know, for each distinct reference value, how many window values are ``<= r`` and ``< r``:
two integer vectors the size of the reference sample, updated chunk by chunk with
``searchsorted`` + ``bincount``. The result equals ``scipy.stats.ks_2samp`` on the raw data
(statistic up to float rounding, p-value by the same method: exact for windows <= 10,000 records,
Smirnov's asymptotic distribution above), which ``tests/monitoring/test_drift.py`` checks.

Categorical features use a chi-square test of homogeneity (reference counts vs window counts,
``scipy.stats.chi2_contingency``), pooling rare categories so every expected count is >= 5.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

EXACT_MAX_N = 10_000  # same switch as scipy.stats.ks_2samp(method="auto")
HIST_BINS = 30


@dataclass
class EcdfAccumulator:
    """Streams window values of one numeric column against a reference sample.

    Attributes:
        reference: Sorted, finite reference values.
        grid: Distinct reference values (sorted).
        le: ``le[i]`` = window values in ``(grid[i-1], grid[i]]`` (last bucket: above all).
        lt: ``lt[i]`` = window values in ``[grid[i-1], grid[i])``.
        edges: Histogram edges (for plots), derived from the reference range.
        hist: Window counts per histogram bin, plus one underflow and one overflow bin.
        n: Finite window values seen.
    """

    reference: np.ndarray
    grid: np.ndarray = field(init=False)
    le: np.ndarray = field(init=False)
    lt: np.ndarray = field(init=False)
    edges: np.ndarray = field(init=False)
    hist: np.ndarray = field(init=False)
    n: int = 0

    def __post_init__(self) -> None:
        ref = np.asarray(self.reference, dtype=float)
        self.reference = np.sort(ref[np.isfinite(ref)])
        if self.reference.size == 0:
            raise ValueError("reference sample has no finite values")
        self.grid = np.unique(self.reference)
        self.le = np.zeros(self.grid.size + 1, dtype=np.int64)
        self.lt = np.zeros(self.grid.size + 1, dtype=np.int64)
        lo, hi = float(self.reference[0]), float(self.reference[-1])
        if hi <= lo:
            hi = lo + 1.0
        self.edges = np.linspace(lo, hi, HIST_BINS + 1)
        self.hist = np.zeros(HIST_BINS + 2, dtype=np.int64)

    def update(self, values: np.ndarray) -> None:
        """Add one chunk of window values (NaN/inf are ignored: quality counts them)."""
        v = np.asarray(values, dtype=float)
        v = v[np.isfinite(v)]
        if v.size == 0:
            return
        size = self.grid.size + 1
        self.le += np.bincount(np.searchsorted(self.grid, v, "left"), minlength=size)
        self.lt += np.bincount(np.searchsorted(self.grid, v, "right"), minlength=size)
        self.hist += _bin(self.edges, v)
        self.n += int(v.size)

    def reference_hist(self) -> np.ndarray:
        """Reference counts on the same bins as :attr:`hist`."""
        return _bin(self.edges, self.reference)

    def ecdfs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(grid, F_ref(grid), F_win(grid))`` for plots (requires ``n > 0``)."""
        f_ref = np.searchsorted(self.reference, self.grid, "right") / self.reference.size
        f_win = np.cumsum(self.le)[:-1] / max(self.n, 1)
        return self.grid, f_ref, f_win


def _bin(edges: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Counts per bin: [below, bin_1 .. bin_k (last one closed), above]."""
    idx = np.searchsorted(edges, v, "right")
    idx[v == edges[-1]] = edges.size - 1
    return np.bincount(idx, minlength=edges.size + 1)


def ks_statistic(acc: EcdfAccumulator) -> float:
    """Exact two-sample KS statistic between the reference and the streamed window."""
    if acc.n == 0:
        raise ValueError("window has no finite values")
    m = acc.reference.size
    f_ref = np.searchsorted(acc.reference, acc.grid, "right") / m
    f_ref_before = np.concatenate([[0.0], f_ref[:-1]])
    win_le = np.cumsum(acc.le)[:-1] / acc.n
    win_lt = np.cumsum(acc.lt)[:-1] / acc.n
    return float(max(np.max(np.abs(f_ref - win_le)), np.max(np.abs(f_ref_before - win_lt))))


def ks_pvalue(d: float, n1: int, n2: int) -> float:
    """Two-sided p-value of a two-sample KS statistic by Smirnov's asymptotic ``kstwo``
    distribution with ``en = n1 n2 / (n1 + n2)``, as ``scipy.stats.ks_2samp`` computes it for
    samples of more than :data:`EXACT_MAX_N` values."""
    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = m * n / (m + n)
    return float(np.clip(stats.kstwo.sf(d, np.round(en)), 0.0, 1.0))


def equivalent_window(acc: EcdfAccumulator) -> np.ndarray:
    """A window sample ordered against the reference exactly as the streamed one was.

    The KS statistic and its exact distribution depend only on how the window's values fall
    between and on the reference's distinct values, which ``le`` and ``lt`` record: each
    value equal to a reference value is put back at it, each value strictly between two of
    them (or beyond the ends) at a float strictly inside that gap. ``scipy.stats.ks_2samp`` on
    it therefore gives the streamed window's statistic and p-value through its public API.
    """
    grid = acc.grid
    size = grid.size
    equal = np.empty(size, dtype=np.int64)
    between = np.empty(size + 1, dtype=np.int64)  # below grid[0], inside each gap, above
    carried = 0
    for i in range(size):  # lt[i] = equal[i-1] + between[i]; le[i] = between[i] + equal[i]
        between[i] = acc.lt[i] - carried
        equal[i] = acc.le[i] - between[i]
        carried = equal[i]
    between[size] = acc.le[size]
    inside = np.empty(size + 1, dtype=float)
    inside[0] = np.nextafter(grid[0], -np.inf)
    inside[1:size] = np.nextafter(grid[:-1], np.inf)
    inside[size] = np.nextafter(grid[-1], np.inf)
    return np.concatenate([np.repeat(grid, equal), np.repeat(inside, between)])


def ks_test(acc: EcdfAccumulator) -> dict[str, float | int | str]:
    """KS test result: statistic, p-value and sample sizes."""
    d = ks_statistic(acc)
    if max(acc.reference.size, acc.n) <= EXACT_MAX_N:
        pvalue = float(stats.ks_2samp(acc.reference, equivalent_window(acc), method="exact").pvalue)
    else:
        pvalue = ks_pvalue(d, acc.reference.size, acc.n)
    return {
        "test": "ks",
        "statistic": d,
        "pvalue": pvalue,
        "n_reference": int(acc.reference.size),
        "n_window": int(acc.n),
    }


def count_values(values: np.ndarray) -> dict[int, int]:
    """Counts of each finite integer value (one chunk of a categorical column)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    keys, counts = np.unique(v.astype(np.int64), return_counts=True)
    return {int(k): int(c) for k, c in zip(keys, counts, strict=True)}


def add_counts(total: dict[int, int], chunk: Mapping[int, int]) -> None:
    """Add chunk counts into ``total`` in place."""
    for key, count in chunk.items():
        total[key] = total.get(key, 0) + count


def chi_square_test(
    reference: Mapping[int, int], window: Mapping[int, int], min_expected: float = 5.0
) -> dict[str, object]:
    """Chi-square test of homogeneity between reference and window category counts.

    Categories whose expected count (under "same distribution") is below ``min_expected`` in
    either row are pooled into one ``other`` category so the chi-square approximation holds.
    """
    n_ref, n_win = sum(reference.values()), sum(window.values())
    if n_ref == 0 or n_win == 0:
        raise ValueError("chi-square needs counts in both samples")
    cats = sorted(set(reference) | set(window))
    total = n_ref + n_win
    kept, pooled = [], []
    for c in cats:
        both = reference.get(c, 0) + window.get(c, 0)
        (kept if both * min(n_ref, n_win) / total >= min_expected else pooled).append(c)
    rows = [[reference.get(c, 0) for c in kept], [window.get(c, 0) for c in kept]]
    if pooled:
        rows[0].append(sum(reference.get(c, 0) for c in pooled))
        rows[1].append(sum(window.get(c, 0) for c in pooled))
    table = np.array(rows, dtype=float)
    table = table[:, table.sum(axis=0) > 0]
    out: dict[str, object] = {
        "test": "chi2",
        "n_reference": int(n_ref),
        "n_window": int(n_win),
        "categories": [str(c) for c in kept] + (["other"] if pooled else []),
    }
    if table.shape[1] < 2:
        out.update(statistic=0.0, pvalue=1.0, dof=0)
        return out
    res = stats.chi2_contingency(table)
    out.update(statistic=float(res.statistic), pvalue=float(res.pvalue), dof=int(res.dof))
    return out


def feature_tests(
    numeric: Mapping[str, EcdfAccumulator],
    categorical: Mapping[str, Mapping[int, int]],
    reference_counts: Callable[[str], Mapping[int, int]],
    min_expected: float,
) -> dict[str, dict[str, Any]]:
    """Raw (unadjusted) drift tests per feature: KS for numbers, chi-square for categories.

    The current window and the long window test their counts the same way; features with no
    value in the window are left out (numeric ones first, in the accumulators' order).

    Args:
        numeric: Feature -> ECDF accumulator of the window.
        categorical: Feature -> category counts of the window.
        reference_counts: Feature -> the reference's category counts.
        min_expected: Chi-square's minimum expected count per category.
    """
    results: dict[str, dict[str, Any]] = {}
    for name, acc in numeric.items():
        if acc.n > 0:
            results[name] = ks_test(acc)
    for name, counts in categorical.items():
        if counts:
            results[name] = chi_square_test(reference_counts(name), counts, min_expected)
    return results


def proportion_test(ref_pos: int, ref_n: int, win_pos: int, win_n: int) -> dict[str, float]:
    """Chi-square test that two positive rates are equal (2x2 table)."""
    table = np.array([[ref_pos, ref_n - ref_pos], [win_pos, win_n - win_pos]], dtype=float)
    rate_ref, rate_win = ref_pos / max(ref_n, 1), win_pos / max(win_n, 1)
    if (table.sum(axis=0) == 0).any():
        return {
            "statistic": 0.0,
            "pvalue": 1.0,
            "reference_rate": rate_ref,
            "window_rate": rate_win,
        }
    res = stats.chi2_contingency(table)
    return {
        "statistic": float(res.statistic),
        "pvalue": float(res.pvalue),
        "reference_rate": rate_ref,
        "window_rate": rate_win,
    }


def adjust_pvalues(pvalues: Mapping[str, float], method: str) -> dict[str, float]:
    """Multiple-testing adjusted p-values (compare them with the family-wise threshold).

    Args:
        pvalues: Test name -> raw p-value.
        method: ``none``, ``bonferroni`` or ``holm`` (step-down, uniformly more powerful).
    """
    names = list(pvalues)
    k = len(names)
    if method == "none" or k == 0:
        return dict(pvalues)
    if method == "bonferroni":
        return {n: min(1.0, pvalues[n] * k) for n in names}
    if method == "holm":
        order = sorted(names, key=lambda n: pvalues[n])
        out, running = {}, 0.0
        for rank, name in enumerate(order):
            running = max(running, min(1.0, (k - rank) * pvalues[name]))
            out[name] = running
        return out
    raise ValueError(f"drift.correction: unknown method {method!r}")


def category(p_adjusted: float, threshold: float, possible_factor: float) -> str:
    """``drift`` below the threshold, ``possible_drift`` below ``threshold * factor``."""
    if p_adjusted < threshold:
        return "drift"
    if p_adjusted < threshold * possible_factor:
        return "possible_drift"
    return "no_drift"
