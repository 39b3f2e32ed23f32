"""Plots for the HTML report, rendered with Matplotlib's Agg backend into base64 PNGs."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from monitoring.drift import EcdfAccumulator

REF_COLOR, WIN_COLOR, ALERT_COLOR = "#4C72B0", "#DD8452", "#C44E52"


def _figure(width: float = 7.5, height: float = 2.6) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=80)
    return fig, fig.subplots


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def numeric_plot(name: str, acc: EcdfAccumulator, drifted: bool) -> str:
    """Histogram (density) and ECDF of reference vs window for one numeric feature."""
    fig, subplots = _figure()
    ax_hist, ax_cdf = subplots(1, 2)
    edges = acc.edges
    width = edges[1] - edges[0]
    centers = np.concatenate([[edges[0] - width / 2], (edges[:-1] + edges[1:]) / 2,
                              [edges[-1] + width / 2]])
    ref = acc.reference_hist() / max(acc.reference.size, 1)
    win = acc.hist / max(acc.n, 1)
    ax_hist.bar(centers, ref, width=width, color=REF_COLOR, alpha=0.55, label="reference")
    ax_hist.bar(centers, win, width=width, color=WIN_COLOR, alpha=0.55, label="window")
    ax_hist.set_title(f"{name}: distribution (outer bars = outside ref. range)", fontsize=8)
    ax_hist.legend(fontsize=7)
    grid, f_ref, f_win = acc.ecdfs()
    ax_cdf.step(grid, f_ref, where="post", color=REF_COLOR, label="reference")
    ax_cdf.step(grid, f_win, where="post", color=ALERT_COLOR if drifted else WIN_COLOR,
                label="window")
    ax_cdf.set_title(f"{name}: ECDF at reference values (KS)", fontsize=8)
    ax_cdf.legend(fontsize=7)
    for ax in (ax_hist, ax_cdf):
        ax.tick_params(labelsize=7)
    return _png(fig)


def categorical_plot(name: str, reference: Mapping[int, int], window: Mapping[int, int]) -> str:
    """Side-by-side bars of category proportions."""
    fig, subplots = _figure(5.0, 2.4)
    ax = subplots(1, 1)
    cats = sorted(set(reference) | set(window))
    x = np.arange(len(cats))
    n_ref, n_win = max(sum(reference.values()), 1), max(sum(window.values()), 1)
    ax.bar(x - 0.2, [reference.get(c, 0) / n_ref for c in cats], 0.4, color=REF_COLOR,
           label="reference")
    ax.bar(x + 0.2, [window.get(c, 0) / n_win for c in cats], 0.4, color=WIN_COLOR,
           label="window")
    ax.set_xticks(x, [str(c) for c in cats], fontsize=7)
    ax.set_title(f"{name}: category proportions (chi-square)", fontsize=8)
    ax.legend(fontsize=7)
    return _png(fig)


def pvalue_plot(results: Mapping[str, Mapping[str, Any]], threshold: float) -> str:
    """Horizontal bars of -log10(adjusted p) per feature with the threshold line."""
    names = list(results)
    fig, subplots = _figure(7.5, 0.3 * len(names) + 1.0)
    ax = subplots(1, 1)
    vals = [-np.log10(max(results[n]["p_adjusted"], 1e-300)) for n in names]
    colors = [ALERT_COLOR if results[n]["category"] == "drift" else REF_COLOR for n in names]
    ax.barh(names, vals, color=colors)
    ax.axvline(-np.log10(threshold), color="black", linestyle="--", linewidth=1,
               label=f"threshold p={threshold:g}")
    ax.set_xlabel("-log10(adjusted p-value)  (right of the line = drift)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.invert_yaxis()
    ax.legend(fontsize=7)
    return _png(fig)


def history_plot(runs: Sequence[Mapping[str, Any]]) -> str | None:
    """F1 / precision / recall and the number of drifted features over past runs."""
    points = [(r.get("finished_at", "")[:16], r.get("performance_metrics") or {},
               len(r.get("drifted_features") or [])) for r in reversed(list(runs))]
    if not points:
        return None
    fig, subplots = _figure(7.5, 2.6)
    ax, ax2 = subplots(1, 2)
    x = np.arange(len(points))
    for metric, color in (("f1", ALERT_COLOR), ("precision", REF_COLOR), ("recall", WIN_COLOR)):
        ys = [m.get(metric) if m.get(metric) is not None else np.nan for _, m, _ in points]
        ax.plot(x, ys, marker="o", color=color, label=metric)
    ax.set_ylim(0, 1.05)
    ax.set_title("live performance per run (labelled records)", fontsize=8)
    ax.legend(fontsize=7)
    ax2.bar(x, [d for _, _, d in points], color=ALERT_COLOR)
    ax2.set_title("drifted features per run", fontsize=8)
    step = max(1, len(points) // 6)
    for a in (ax, ax2):
        a.set_xticks(x[::step], [p[0] for p in points][::step], fontsize=6, rotation=20)
        a.tick_params(labelsize=7)
    return _png(fig)
