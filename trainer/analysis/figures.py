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
PANEL_PX = 200  # one receptive-field panel, square
MOSAIC_MARGIN_PX = (170, 70)  # extra width (colour bar, labels), extra height (title)
PLOT_PX = (420, 300)  # one panel of the per-layer plots (width, height)
PLOT_MARGIN_PX = (40, 60)
EXC_COLOUR, INH_COLOUR = "#d62728", "#1f77b4"


def _figure(width_px: int, height_px: int) -> Figure:
    fig = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def mosaic_grid(n_panels: int) -> tuple[int, int]:
    """(rows, cols) of a mosaic of n panels: cols = ceil(sqrt(n)), rows = ceil(n / cols)."""
    if n_panels < 1:
        raise ValueError(f"a mosaic needs at least one panel, got {n_panels}")
    cols = math.ceil(math.sqrt(n_panels))
    return math.ceil(n_panels / cols), cols


def mosaic_size_px(n_panels: int) -> tuple[int, int]:
    """(width, height) in pixels of a receptive-field mosaic with n panels."""
    rows, cols = mosaic_grid(n_panels)
    return cols * PANEL_PX + MOSAIC_MARGIN_PX[0], rows * PANEL_PX + MOSAIC_MARGIN_PX[1]


def per_layer_size_px(n_layers: int, n_rows: int = 1) -> tuple[int, int]:
    """(width, height) in pixels of a figure with one column per layer and n_rows rows."""
    return (n_layers * PLOT_PX[0] + PLOT_MARGIN_PX[0], n_rows * PLOT_PX[1] + PLOT_MARGIN_PX[1])


def receptive_field_mosaic(rfs: np.ndarray, neurons: Sequence[int] | np.ndarray, title: str,
                           path: Path) -> Path:
    """Heat maps of receptive fields (n, n_in, K): y = input channel, x = delay (steps).

    One symmetric colour scale for all panels (+-max |weight| shown), red excitatory, blue
    inhibitory, white 0 (including absent synapses).
    """
    rfs = np.asarray(rfs, dtype=np.float64)
    if rfs.ndim != 3 or rfs.shape[0] != len(neurons) or rfs.shape[0] == 0:
        raise ValueError(f"expected (n>0, n_in, K) receptive fields for {len(neurons)} neurons, "
                         f"got shape {rfs.shape}")
    rows, cols = mosaic_grid(rfs.shape[0])
    fig = _figure(*mosaic_size_px(rfs.shape[0]))
    vmax = float(np.abs(rfs).max()) or 1.0
    w_px, h_px = mosaic_size_px(rfs.shape[0])
    grid = fig.add_gridspec(rows, cols, left=60 / w_px, right=1 - 110 / w_px,
                            bottom=40 / h_px, top=1 - 50 / h_px, wspace=0.25, hspace=0.35)
    image = None
    for p, (rf, j) in enumerate(zip(rfs, neurons)):
        ax = fig.add_subplot(grid[p // cols, p % cols])
        image = ax.imshow(rf, cmap="bwr", vmin=-vmax, vmax=vmax, aspect="auto",
                          origin="lower", interpolation="nearest")
        ax.set_title(f"neuron {int(j)}", fontsize=8)
        ax.tick_params(labelsize=6)
        if p % cols == 0:
            ax.set_ylabel("input channel", fontsize=7)
        if p // cols == rows - 1 or p + cols >= rfs.shape[0]:
            ax.set_xlabel("delay (steps)", fontsize=7)
    cax = fig.add_axes((1 - 90 / w_px, 40 / h_px, 15 / w_px, 1 - 90 / h_px))
    bar = fig.colorbar(image, cax=cax)  # type: ignore[arg-type]
    bar.set_label("weight (+ excitatory, - inhibitory)", fontsize=7)
    bar.ax.tick_params(labelsize=6)
    fig.suptitle(title, fontsize=10)
    return save_figure_atomic(fig, path, DPI)


def delay_histograms(names: Sequence[str], counts: Sequence[dict],
                     before: Sequence[dict] | None, path: Path) -> Path:
    """Per layer: excitatory and inhibitory synapse counts at each delay (steps).

    counts / before: `delay_counts.connections_per_delay` dicts, one per layer; with `before`
    a second row shows the initial checkpoint.
    """
    sets = [("trained", counts)] + ([("before", before)] if before is not None else [])
    fig = _figure(*per_layer_size_px(len(names), len(sets)))
    axes = fig.subplots(len(sets), len(names), squeeze=False)
    for r, (label, per_layer) in enumerate(sets):
        for c, (name, cnt) in enumerate(zip(names, per_layer)):
            ax = axes[r][c]
            d = np.arange(len(cnt["total"]))
            ax.bar(d - 0.2, cnt["excitatory"], width=0.4, color=EXC_COLOUR, label="excitatory")
            ax.bar(d + 0.2, cnt["inhibitory"], width=0.4, color=INH_COLOUR, label="inhibitory")
            ax.set_title(f"{name} ({label})", fontsize=9)
            ax.set_xlabel("delay (steps)", fontsize=8)
            ax.set_ylabel("synapses", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.legend(fontsize=7)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.12, top=0.9, wspace=0.3, hspace=0.5)
    fig.suptitle("delay histograms", fontsize=10)
    return save_figure_atomic(fig, path, DPI)


def connections_per_delay_figure(names: Sequence[str], counts: Sequence[dict],
                                 before: Sequence[dict] | None, path: Path) -> Path:
    """Per layer: number of connections at each delay (steps), trained vs before if given."""
    fig = _figure(*per_layer_size_px(len(names)))
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for c, name in enumerate(names):
        ax = axes[c]
        d = np.arange(len(counts[c]["total"]))
        ax.step(d, counts[c]["total"], where="mid", color="black", label="trained")
        if before is not None:
            ax.step(d, before[c]["total"], where="mid", color="grey", linestyle="--",
                    label="before")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("delay (steps)", fontsize=8)
        ax.set_ylabel("connections", fontsize=8)
        ax.set_ylim(bottom=0)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.18, top=0.82, wspace=0.3)
    fig.suptitle("connections per delay", fontsize=10)
    return save_figure_atomic(fig, path, DPI)


def clustering_figure(names: Sequence[str], trained: Sequence[ClusteringResult],
                      before: Sequence[ClusteringResult] | None, path: Path) -> Path:
    """Per layer: shuffle-null distributions and observed same-sign neighbour fractions."""
    fig = _figure(*per_layer_size_px(len(names)))
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    sets = [("trained", trained, "#ff7f0e")]
    if before is not None:
        sets.append(("before", before, "#7f7f7f"))
    for c, name in enumerate(names):
        ax = axes[c]
        lines = []
        for label, results, colour in sets:
            res = results[c]
            if res.observed is None:
                lines.append(f"{label}: no pairs")
                continue
            ax.hist(res.null, bins=30, color=colour, alpha=0.45, label=f"{label} shuffled")
            ax.axvline(res.observed, color=colour, linewidth=2, label=f"{label} observed")
            z = "undefined" if res.z is None else f"{res.z:.1f}"
            lines.append(f"{label}: {res.observed:.3f}, z={z}")
        ax.set_title(f"{name}\n" + "; ".join(lines), fontsize=8)
        ax.set_xlabel("same-sign neighbour fraction", fontsize=8)
        ax.set_ylabel("shuffles", fontsize=8)
        ax.tick_params(labelsize=7)
        if ax.has_data():
            ax.legend(fontsize=6)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.18, top=0.78, wspace=0.3)
    fig.suptitle("E/I clustering in (channel, delay)", fontsize=10)
    return save_figure_atomic(fig, path, DPI)
