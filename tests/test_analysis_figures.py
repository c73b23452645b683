"""trainer.analysis.figures as the report shows them: readable cells, legends off the data."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers.analysis_checkpoints import K, write_run
from matplotlib.image import imread

from trainer.analysis import figures
from trainer.analyze import analyze


def test_receptive_field_cells_of_a_256_input_readout_are_not_hairlines(tmp_path):
    """One synapse of a 256-input readout neuron is drawn as a block of at least
    MIN_CELL_PX (delay, input) pixels, and the mosaic fits the report's column."""
    rfs = np.zeros((3, 256, K))
    rfs[0, 100, 7] = 1.0   # one excitatory synapse: input 100, delay 7
    rfs[1, 200, 3] = -1.0  # one inhibitory synapse
    rfs[2, 10, 20] = 0.5
    path = figures.receptive_field_mosaic(rfs, [0, 1, 2], "readout", tmp_path / "rf.png",
                                          input_label="fc1 neuron")
    img = imread(path)[..., :3]
    assert img.shape[1::-1] == figures.mosaic_size_px(3, 256, K)
    assert img.shape[1] <= figures.MAX_FIGURE_WIDTH_PX
    red = (img[..., 0] > 0.8) & (img[..., 1] < 0.2) & (img[..., 2] < 0.2)
    blue = (img[..., 2] > 0.8) & (img[..., 0] < 0.2) & (img[..., 1] < 0.2)
    rows, cols = np.nonzero(blue[:, : img.shape[1] - figures.MOSAIC_MARGIN_PX[1]])
    assert rows.size, "the inhibitory synapse is not drawn"
    assert rows.max() - rows.min() + 1 >= figures.MIN_CELL_PX[1]
    assert cols.max() - cols.min() + 1 >= figures.MIN_CELL_PX[0]
    assert red[:, : img.shape[1] - figures.MOSAIC_MARGIN_PX[1]].sum() >= np.prod(
        figures.MIN_CELL_PX)  # the full-weight excitatory one (the half-weight one is pink)


@pytest.mark.parametrize("n_in, k", [(16, 8), (40, 25), (256, 25), (700, 62)])
def test_mosaic_panels_give_every_cell_its_minimum_size_up_to_a_cap(n_in, k):
    w, h = figures.mosaic_panel_px(n_in, k)
    assert w >= min(figures.MAX_PANEL_PX, k * figures.MIN_CELL_PX[0])
    assert h >= min(figures.MAX_PANEL_PX, n_in * figures.MIN_CELL_PX[1])
    assert figures.mosaic_size_px(16, n_in, k)[0] <= figures.MAX_FIGURE_WIDTH_PX


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """analyze() on a hand-built run, keeping every Figure it saves."""
    run = write_run(tmp_path_factory.mktemp("run"))
    kept: dict[str, object] = {}
    save = figures.save_figure_atomic

    def keep(fig, path, dpi):
        kept[Path(path).name] = fig
        return save(fig, path, dpi)

    mp = pytest.MonkeyPatch()
    mp.setattr(figures, "save_figure_atomic", keep)
    try:
        analyze(run, n_shuffles=20, n_neurons=4)
    finally:
        mp.undo()
    return kept


@pytest.mark.parametrize("name", ["delay_histograms.png", "connections_per_delay.png",
                                  "ei_clustering.png"])
def test_one_legend_above_the_plots_covers_no_data(drawn, name):
    fig = drawn[name]
    renderer = fig.canvas.get_renderer()
    assert all(ax.get_legend() is None for ax in fig.axes)
    assert len(fig.legends) == 1
    legend = fig.legends[0].get_window_extent(renderer)
    for ax in fig.axes:
        box = ax.get_window_extent(renderer)
        assert legend.y0 > box.y1, (name, legend, box)  # wholly above every plot
        title = ax.title.get_window_extent(renderer)
        assert not legend.overlaps(title), (name, ax.get_title())


def test_comparison_checkpoint_is_named_initial(drawn):
    """The run's checkpoint_init.pt (epoch 0) is "initial", in titles and legends alike."""
    titles = [ax.get_title() for ax in drawn["delay_histograms.png"].axes]
    assert titles == ["fc1 (trained)", "readout (trained)", "fc1 (initial)", "readout (initial)"]
    labels = [t.get_text() for t in drawn["connections_per_delay.png"].legends[0].get_texts()]
    assert labels == ["trained", "initial"]
    assert drawn["receptive_fields_readout_before.png"]._suptitle.get_text() == \
        "readout: receptive fields (initial), same neurons"
    # the readout's inputs are fc1's neurons, not input channels
    ax = drawn["receptive_fields_readout.png"].axes[0]
    assert ax.get_ylabel() == "fc1 neuron"
