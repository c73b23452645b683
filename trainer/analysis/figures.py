"""PNG figures of the analysis (matplotlib, Agg canvas; no pyplot global state).

Every figure has a pixel size fixed by its layout (see the `*_size_px` functions), saved at
`DPI` without a tight bounding box, through a temp file and `os.replace`.
Colours: receptive fields use 'bwr' with a symmetric scale (red excitatory, blue inhibitory).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from trainer.file_io import save_figure_atomic

from .ei_clustering import ClusteringResult

DPI = 100
PANEL_PX = 170  # smallest side of one receptive-field panel's plot area
MIN_CELL_PX = (5, 2)  # smallest (delay, input) cell of a receptive field: thinner ones vanish
MAX_PANEL_PX = 800
MAX_FIGURE_WIDTH_PX = 1060  # the report's column: wider images are scaled down by the browser
MOSAIC_GAP_PX = (40, 50)  # between panels (tick labels; title and x label)
MOSAIC_MARGIN_PX = (60, 100, 40, 60)  # left, right (colour bar), bottom, top (title)
PLOT_PX = (420, 300)  # one panel of the per-layer plots (width, height)
PLOT_MARGIN_PX = (40, 60)
LEGEND_PX = 30  # a figure-level legend row above the per-layer plots
EXC_COLOUR, INH_COLOUR = "#d62728", "#1f77b4"


def _figure(width_px: int, height_px: int) -> Figure:
    fig = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def mosaic_panel_px(n_in: int = 0, kernel_size: int = 0) -> tuple[int, int]:
    """(width, height) in pixels of one receptive-field panel's plot area: at least
    MIN_CELL_PX per (delay, input) cell, so that a 256-input readout is not drawn in hairlines;
    narrower than PANEL_PX when the panel is tall; at most MAX_PANEL_PX."""
    h = min(MAX_PANEL_PX, max(PANEL_PX, n_in * MIN_CELL_PX[1]))
    w_min = PANEL_PX if h == PANEL_PX else 120
    return min(MAX_PANEL_PX, max(w_min, kernel_size * MIN_CELL_PX[0])), h


def mosaic_grid(n_panels: int, n_in: int = 0, kernel_size: int = 0) -> tuple[int, int]:
    """(rows, cols) of a mosaic of n panels: cols = ceil(sqrt(n)) for square panels, as many
    as fit for tall ones, never wider than MAX_FIGURE_WIDTH_PX; rows = ceil(n / cols)."""
    if n_panels < 1:
        raise ValueError(f"a mosaic needs at least one panel, got {n_panels}")
    pw, ph = mosaic_panel_px(n_in, kernel_size)
    fit = max(1, (MAX_FIGURE_WIDTH_PX - MOSAIC_MARGIN_PX[0] - MOSAIC_MARGIN_PX[1]
                  + MOSAIC_GAP_PX[0]) // (pw + MOSAIC_GAP_PX[0]))
    cols = min(n_panels if ph > pw else math.ceil(math.sqrt(n_panels)), fit)
    return math.ceil(n_panels / cols), cols


def mosaic_size_px(n_panels: int, n_in: int = 0, kernel_size: int = 0) -> tuple[int, int]:
    """(width, height) in pixels of a mosaic of n receptive fields of (n_in, kernel_size)."""
    rows, cols = mosaic_grid(n_panels, n_in, kernel_size)
    pw, ph = mosaic_panel_px(n_in, kernel_size)
    left, right, bottom, top = MOSAIC_MARGIN_PX
    return (cols * pw + (cols - 1) * MOSAIC_GAP_PX[0] + left + right,
            rows * ph + (rows - 1) * MOSAIC_GAP_PX[1] + bottom + top)


def per_layer_size_px(n_layers: int, n_rows: int = 1) -> tuple[int, int]:
    """(width, height) in pixels of a figure with one column per layer and n_rows rows, and
    a legend row above them."""
    return (n_layers * PLOT_PX[0] + PLOT_MARGIN_PX[0],
            n_rows * PLOT_PX[1] + PLOT_MARGIN_PX[1] + LEGEND_PX)


def receptive_field_mosaic(rfs: np.ndarray, neurons: Sequence[int] | np.ndarray, title: str,
                           path: Path, input_label: str = "input channel") -> Path:
    """Heat maps of receptive fields (n, n_in, K): y = input (`input_label`), x = delay (steps).

    One symmetric colour scale for all panels (+-max |weight| shown), red excitatory, blue
    inhibitory, white 0 (including absent synapses). Each (input, delay) cell is at least
    MIN_CELL_PX (mosaic_panel_px).
    """
    rfs = np.asarray(rfs, dtype=np.float64)
    if rfs.ndim != 3 or rfs.shape[0] != len(neurons) or rfs.shape[0] == 0:
        raise ValueError(f"expected (n>0, n_in, K) receptive fields for {len(neurons)} neurons, "
                         f"got shape {rfs.shape}")
    n, n_in, k = rfs.shape
    rows, cols = mosaic_grid(n, n_in, k)
    pw, ph = mosaic_panel_px(n_in, k)
    w_px, h_px = mosaic_size_px(n, n_in, k)
    left, right, bottom, top = MOSAIC_MARGIN_PX
    fig = _figure(w_px, h_px)
    vmax = float(np.abs(rfs).max()) or 1.0
    grid = fig.add_gridspec(rows, cols, left=left / w_px, right=1 - right / w_px,
                            bottom=bottom / h_px, top=1 - top / h_px,
                            wspace=MOSAIC_GAP_PX[0] / pw, hspace=MOSAIC_GAP_PX[1] / ph)
    image = None
    for p, (rf, j) in enumerate(zip(rfs, neurons)):
        ax = fig.add_subplot(grid[p // cols, p % cols])
        image = ax.imshow(rf, cmap="bwr", vmin=-vmax, vmax=vmax, aspect="auto",
                          origin="lower", interpolation="nearest")
        ax.set_title(f"neuron {int(j)}", fontsize=8)
        ax.tick_params(labelsize=6)
        if p % cols == 0:
            ax.set_ylabel(input_label, fontsize=7)
        if p // cols == rows - 1 or p + cols >= n:
            ax.set_xlabel("delay (steps)", fontsize=7)
    cax = fig.add_axes((1 - (right - 25) / w_px, bottom / h_px, 15 / w_px,
                        1 - (bottom + top) / h_px))
    bar = fig.colorbar(image, cax=cax)  # type: ignore[arg-type]
    bar.set_label("weight (+ excitatory, - inhibitory)", fontsize=7)
    bar.ax.tick_params(labelsize=6)
    fig.suptitle(title, fontsize=10, y=1 - 8 / h_px, va="top")
    return save_figure_atomic(fig, path, DPI)


def _legend_row(fig: Figure, handles: list, labels: list[str]) -> None:
    """One legend for the whole figure, in the row above the plots (it covers no data)."""
    h_px = fig.get_figheight() * DPI
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=8,
               frameon=False, bbox_to_anchor=(0.5, 1 - 22 / h_px))


def _per_layer_axes(fig: Figure, n_rows: int, n_cols: int, title: str):
    """(n_rows, n_cols) axes under a title and a legend row (per_layer_size_px)."""
    w_px, h_px = fig.get_figwidth() * DPI, fig.get_figheight() * DPI
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    top, bottom, gap = 65 + LEGEND_PX, 45, 90  # px: title, legend, 2-line axes titles
    axes_h = (h_px - top - bottom - (n_rows - 1) * gap) / n_rows
    fig.subplots_adjust(left=55 / w_px, right=1 - 15 / w_px, bottom=bottom / h_px,
                        top=1 - top / h_px, wspace=0.3, hspace=gap / axes_h)
    fig.suptitle(title, fontsize=10, y=1 - 6 / h_px, va="top")
    return axes


def delay_histograms(names: Sequence[str], counts: Sequence[dict],
                     before: Sequence[dict] | None, path: Path,
                     before_label: str = "before") -> Path:
    """Per layer: excitatory and inhibitory synapse counts at each delay (steps).

    counts / before: `delay_counts.connections_per_delay` dicts, one per layer; with `before`
    a second row shows that checkpoint (titled `before_label`). One legend above the plots.
    """
    sets = [("trained", counts)] + ([(before_label, before)] if before is not None else [])
    fig = _figure(*per_layer_size_px(len(names), len(sets)))
    axes = _per_layer_axes(fig, len(sets), len(names), "delay histograms")
    bars = []
    for r, (label, per_layer) in enumerate(sets):
        for c, (name, cnt) in enumerate(zip(names, per_layer)):
            ax = axes[r][c]
            d = np.arange(len(cnt["total"]))
            bars = [ax.bar(d - 0.2, cnt["excitatory"], width=0.4, color=EXC_COLOUR),
                    ax.bar(d + 0.2, cnt["inhibitory"], width=0.4, color=INH_COLOUR)]
            ax.set_title(f"{name} ({label})", fontsize=9)
            ax.set_xlabel("delay (steps)", fontsize=8)
            ax.set_ylabel("synapses", fontsize=8)
            ax.tick_params(labelsize=7)
    _legend_row(fig, bars, ["excitatory (w > 0)", "inhibitory (w < 0)"])
    return save_figure_atomic(fig, path, DPI)


def connections_per_delay_figure(names: Sequence[str], counts: Sequence[dict],
                                 before: Sequence[dict] | None, path: Path,
                                 before_label: str = "before") -> Path:
    """Per layer: number of connections at each delay (steps), trained (solid) and, if given,
    the `before` checkpoint (dashed, labelled `before_label`). One legend above the plots."""
    fig = _figure(*per_layer_size_px(len(names)))
    axes = _per_layer_axes(fig, 1, len(names), "connections per delay")[0]
    lines: list = []
    for c, name in enumerate(names):
        ax = axes[c]
        d = np.arange(len(counts[c]["total"]))
        lines = ax.step(d, counts[c]["total"], where="mid", color="black")
        if before is not None:
            lines += ax.step(d, before[c]["total"], where="mid", color="grey", linestyle="--")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("delay (steps)", fontsize=8)
        ax.set_ylabel("connections", fontsize=8)
        ax.set_ylim(bottom=0)
        ax.tick_params(labelsize=7)
    _legend_row(fig, lines, ["trained"] + ([before_label] if before is not None else []))
    return save_figure_atomic(fig, path, DPI)


def clustering_figure(names: Sequence[str], trained: Sequence[ClusteringResult],
                      before: Sequence[ClusteringResult] | None, path: Path,
                      before_label: str = "before") -> Path:
    """Per layer: shuffle-null distributions and observed same-sign neighbour fractions."""
    fig = _figure(*per_layer_size_px(len(names)))
    axes = _per_layer_axes(fig, 1, len(names), "E/I clustering in (input, delay)")[0]
    sets = [("trained", trained, "#ff7f0e")]
    if before is not None:
        sets.append((before_label, before, "#7f7f7f"))
    handles: dict[str, object] = {}
    for c, name in enumerate(names):
        ax = axes[c]
        lines = []
        for label, results, colour in sets:
            res = results[c]
            if res.observed is None:
                lines.append(f"{label}: no pairs")
                continue
            handles[f"{label} shuffled"] = ax.hist(res.null, bins=30, color=colour,
                                                   alpha=0.45)[2][0]
            handles[f"{label} observed"] = ax.axvline(res.observed, color=colour, linewidth=2)
            z = "undefined" if res.z is None else f"{res.z:.1f}"
            lines.append(f"{label}: {res.observed:.3f}, z={z}")
        ax.set_title(f"{name}\n" + "; ".join(lines), fontsize=8)
        ax.set_xlabel("same-sign neighbour fraction", fontsize=8)
        ax.set_ylabel("shuffles", fontsize=8)
        ax.tick_params(labelsize=7)
    if handles:
        _legend_row(fig, list(handles.values()), list(handles))
    return save_figure_atomic(fig, path, DPI)
