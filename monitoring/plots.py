"""Charts for the HTML report as inline SVG (no image files, no plotting backend).

Matplotlib needed ~0.5-1 s per figure on this machine (17+ figures per report); these
hand-written SVG charts take milliseconds, scale with the page and keep the report small.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import numpy as np

from monitoring.drift import EcdfAccumulator
from reggaeton.schema import FEATURES_BY_NAME

REF_COLOR, WIN_COLOR, ALERT_COLOR = "#4C72B0", "#DD8452", "#C44E52"
MAX_POINTS = 400
W, H, PAD_L, PAD_R, PAD_T, PAD_B = 360, 170, 44, 8, 22, 30
OTHER_BOUNDS = {"probability": (0.0, 1.0)}
"""Valid ranges of plotted columns that are not schema features."""


def bounds_of(name: str) -> tuple[float | None, float | None]:
    """A column's physically valid range: the schema's bounds (None = unbounded)."""
    feature = FEATURES_BY_NAME.get(name)
    if feature is not None:
        return feature.minimum, feature.maximum
    return OTHER_BOUNDS.get(name, (None, None))


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e5 or abs(v) < 1e-2:
        return f"{v:.2g}"
    return f"{v:.4g}"


class _Panel:
    """One plot area mapping data coordinates to SVG pixels."""

    def __init__(self, x0: float, x1: float, y0: float, y1: float, title: str) -> None:
        self.x0, self.x1 = x0, x1 if x1 > x0 else x0 + 1
        self.y0, self.y1 = y0, y1 if y1 > y0 else y0 + 1
        self.parts = [
            f'<text x="{W / 2}" y="14" text-anchor="middle" font-size="11">{escape(title)}</text>',
            f'<rect x="{PAD_L}" y="{PAD_T}" width="{W - PAD_L - PAD_R}" '
            f'height="{H - PAD_T - PAD_B}" fill="none" stroke="#999"/>',
        ]
        for frac in (0.0, 0.5, 1.0):
            xv = self.x0 + frac * (self.x1 - self.x0)
            yv = self.y0 + frac * (self.y1 - self.y0)
            anchor = {0.0: "start", 0.5: "middle", 1.0: "end"}[frac]  # stay inside the SVG
            self.parts.append(
                f'<text class="xtick" x="{self.px(xv):.1f}" y="{H - PAD_B + 12}" '
                f'font-size="9" text-anchor="{anchor}">{_fmt(xv)}</text>'
            )
            self.parts.append(
                f'<text x="{PAD_L - 3}" y="{self.py(yv) + 3:.1f}" font-size="9" '
                f'text-anchor="end">{_fmt(yv)}</text>'
            )

    def px(self, x: float) -> float:
        return PAD_L + (x - self.x0) / (self.x1 - self.x0) * (W - PAD_L - PAD_R)

    def py(self, y: float) -> float:
        return H - PAD_B - (y - self.y0) / (self.y1 - self.y0) * (H - PAD_T - PAD_B)

    def bar(self, x: float, width: float, y: float, color: str, opacity: float = 0.55) -> None:
        left, right = self.px(x), self.px(x + width)
        top, base = self.py(y), self.py(self.y0)
        self.parts.append(
            f'<rect x="{left:.1f}" y="{top:.1f}" width="{max(right - left, 0.5):.1f}"'
            f' height="{max(base - top, 0):.1f}" fill="{color}" '
            f'fill-opacity="{opacity}"/>'
        )

    def step(self, xs: np.ndarray, ys: np.ndarray, color: str) -> None:
        pts = []
        for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
            if i:
                pts.append(f"{self.px(x):.1f},{self.py(ys[i - 1]):.1f}")
            pts.append(f"{self.px(x):.1f},{self.py(y):.1f}")
        self.parts.append(
            f'<polyline points="{" ".join(pts)}" fill="none" stroke="{color}" stroke-width="1.5"/>'
        )

    def line(self, xs: Sequence[float], ys: Sequence[float], color: str) -> None:
        pts = [f"{self.px(x):.1f},{self.py(y):.1f}" for x, y in zip(xs, ys, strict=True) if y == y]
        self.parts.append(
            f'<polyline points="{" ".join(pts)}" fill="none" stroke="{color}" stroke-width="1.5"/>'
        )

    def legend(self, items: Sequence[tuple[str, str]]) -> None:
        # a white box under the entries keeps them readable over the bars and curves
        self.parts.append(
            f'<rect x="{W - PAD_R - 84}" y="{PAD_T + 1}" width="82" '
            f'height="{12 * len(items) + 4}" fill="white" fill-opacity="0.85"/>'
        )
        for i, (label, color) in enumerate(items):
            y = PAD_T + 10 + 12 * i
            self.parts.append(
                f'<rect x="{W - PAD_R - 80}" y="{y - 7}" width="8" height="8" '
                f'fill="{color}"/><text x="{W - PAD_R - 68}" y="{y}" '
                f'font-size="9">{escape(label)}</text>'
            )

    def x_labels(self, ticks: Sequence[tuple[float, str]]) -> None:
        """Replace the numeric x ticks by labels at data positions (e.g. run times)."""
        self.parts = [p for p in self.parts if 'class="xtick"' not in p]
        for x, label in ticks:
            anchor = "start" if x <= self.x0 else "end" if x >= self.x1 else "middle"
            self.parts.append(
                f'<text class="xtick" x="{self.px(x):.1f}" y="{H - PAD_B + 12}" '
                f'font-size="9" text-anchor="{anchor}">{escape(label)}</text>'
            )

    def svg(self) -> str:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
            f'viewBox="0 0 {W} {H}" font-family="sans-serif">{"".join(self.parts)}</svg>'
        )


def numeric_plot(
    name: str,
    acc: EcdfAccumulator,
    drifted: bool,
    bounds: tuple[float | None, float | None] | None = None,
) -> str:
    """Histogram (density, with under/overflow bins) and ECDFs of reference vs window.

    The outer bins hold window values below / above the reference's range. They are drawn
    one bin wide but clipped to the feature's valid range (``bounds``, default the schema's:
    an axis from -3.3 to 103.3 for a 0..100 feature would show impossible values) and labelled
    ``< min`` / ``> max`` with the reference range they lie outside of.
    """
    edges = acc.edges
    width = edges[1] - edges[0]
    lo, hi = bounds if bounds is not None else bounds_of(name)
    ref = acc.reference_hist() / max(acc.reference.size, 1)
    win = acc.hist / max(acc.n, 1)
    lefts = np.concatenate([[edges[0] - width], edges[:-1], [edges[-1]]])
    rights = np.concatenate([[edges[0]], edges[1:], [edges[-1] + width]])
    if lo is not None:
        lefts[0] = min(max(lefts[0], lo), edges[0])
    if hi is not None:
        rights[-1] = max(min(rights[-1], hi), edges[-1])
    top = float(max(ref.max(), win.max(), 1e-9)) * 1.2  # headroom for the legend
    hist = _Panel(
        float(lefts[0]),
        float(rights[-1]),
        0,
        top,
        f"{name}: distribution (outer bins: outside reference range)",
    )
    for left, right, r, w in zip(lefts, rights, ref, win, strict=True):
        hist.bar(left, right - left, r, REF_COLOR)
        hist.bar(left, right - left, w, ALERT_COLOR if drifted else WIN_COLOR)
    for i, label in ((0, f"< {_fmt(edges[0])}"), (-1, f"> {_fmt(edges[-1])}")):
        if rights[i] > lefts[i] or win[i] > 0:  # an outer bin exists inside the valid range
            x = hist.px((lefts[i] + rights[i]) / 2)
            anchor = "start" if i == 0 else "end"
            hist.parts.append(
                f'<text class="overflow-label" x="{x:.1f}" y="{H - PAD_B - 3}" '
                f'font-size="8" text-anchor="{anchor}">{escape(label)}</text>'
            )
    hist.legend([("reference", REF_COLOR), ("window", ALERT_COLOR if drifted else WIN_COLOR)])
    grid, f_ref, f_win = acc.ecdfs()
    if grid.size > MAX_POINTS:  # thin the curve for drawing (the KS test uses every point)
        keep = np.unique(np.linspace(0, grid.size - 1, MAX_POINTS).astype(int))
        grid, f_ref, f_win = grid[keep], f_ref[keep], f_win[keep]
    cdf = _Panel(float(grid[0]), float(grid[-1]), 0, 1, f"{name}: ECDF (KS compares these)")
    cdf.step(grid, f_ref, REF_COLOR)
    cdf.step(grid, f_win, ALERT_COLOR if drifted else WIN_COLOR)
    return f'<div class="charts">{hist.svg()}{cdf.svg()}</div>'


def categorical_plot(name: str, reference: Mapping[int, int], window: Mapping[int, int]) -> str:
    """Side-by-side bars of category proportions."""
    cats = sorted(set(reference) | set(window))
    n_ref, n_win = max(sum(reference.values()), 1), max(sum(window.values()), 1)
    ref = [reference.get(c, 0) / n_ref for c in cats]
    win = [window.get(c, 0) / n_win for c in cats]
    panel = _Panel(
        0,
        len(cats),
        0,
        max(max(ref + win), 1e-9) * 1.2,
        f"{name}: category proportions (chi-square)",
    )
    panel.parts = [p for p in panel.parts if 'class="xtick"' not in p]  # categories instead
    for i, c in enumerate(cats):
        panel.bar(i + 0.1, 0.4, ref[i], REF_COLOR, 0.9)
        panel.bar(i + 0.5, 0.4, win[i], WIN_COLOR, 0.9)
        panel.parts.append(
            f'<text x="{panel.px(i + 0.5):.1f}" y="{H - PAD_B + 12}" '
            f'font-size="9" text-anchor="middle">{c}</text>'
        )
    panel.legend([("reference", REF_COLOR), ("window", WIN_COLOR)])
    return f'<div class="charts">{panel.svg()}</div>'


def pvalue_plot(results: Mapping[str, Mapping[str, Any]], threshold: float) -> str:
    """Bars of -log10(adjusted p) per feature; the dashed line is the threshold."""
    rows = list(results.items())
    vals = [-np.log10(max(r["p_adjusted"], 1e-300)) for _, r in rows]
    top = max(max(vals, default=1.0), -np.log10(threshold)) * 1.1
    h, left, right = 16 * len(rows) + 40, 110, 620
    parts = []
    for i, ((name, res), v) in enumerate(zip(rows, vals, strict=True)):
        y = 10 + 16 * i
        color = ALERT_COLOR if res["category"] == "drift" else REF_COLOR
        parts.append(
            f'<text x="{left - 4}" y="{y + 10}" font-size="10" text-anchor="end">'
            f'{escape(name)}</text><rect x="{left}" y="{y}" height="12" '
            f'width="{(right - left) * v / top:.1f}" fill="{color}"/>'
        )
    tx = left + (right - left) * -np.log10(threshold) / top
    parts.append(
        f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="5" y2="{h - 25}" stroke="black" '
        f'stroke-dasharray="4,3"/><text x="{left}" y="{h - 8}" font-size="10">'
        f"-log10(adjusted p-value); right of the dashed line (p = {threshold:g}) = "
        "drift</text>"
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{right + 20}" height="{h}" '
        f'font-family="sans-serif">{"".join(parts)}</svg>'
    )


def history_plot(runs: Sequence[Mapping[str, Any]]) -> str | None:
    """F1 / precision / recall and drifted-feature counts over past runs (oldest left)."""
    points = list(reversed(list(runs)))
    if not points:
        return None
    x = list(range(len(points)))
    perf = _Panel(0, max(len(points) - 1, 1), 0, 1, "live performance per run")
    items = []
    for metric, color in (("f1", ALERT_COLOR), ("precision", REF_COLOR), ("recall", WIN_COLOR)):
        ys = [((r.get("performance_metrics") or {}).get(metric)) for r in points]
        perf.line(x, [np.nan if y is None else y for y in ys], color)
        items.append((metric, color))
    perf.legend(items)
    counts = [len(r.get("drifted_features") or []) for r in points]
    drift = _Panel(0, len(points), 0, max(max(counts), 1), "drifted features per run")
    for i, c in enumerate(counts):
        drift.bar(i + 0.15, 0.7, c, ALERT_COLOR, 0.9)
    # x: when each run started ("MM-DD HH:MM"), for the first, middle and last run
    shown = sorted({0, len(points) // 2, len(points) - 1})
    label = [str(r.get("started_at") or "")[5:16].replace("T", " ") for r in points]
    perf.x_labels([(i, label[i]) for i in shown] if len(points) > 1 else [(0, label[0])])
    drift.x_labels([(i + 0.5, label[i]) for i in shown])
    return f'<div class="charts">{perf.svg()}{drift.svg()}</div>'
