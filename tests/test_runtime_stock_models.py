"""Lava's stock ProcessModels against this project's: the same outputs on a network trained on
the real FSDD recordings.

Every accuracy this project calls "Lava" runs Lava's simulator with this project's ProcessModels
for the delay connections (lava_runtime/lava_graph/procs/fast_models.py). Lava's stock DelayDense /
DelaySparse models cannot drop their buffers between samples, so they accept only networks whose
hidden neurons cannot spike without input (validate.drains_between_samples). A network trained
with the default BatchNorm has folded biases that can fire alone and is refused; this test
trains one without BatchNorm (short: 2 epochs, 64 hidden neurons) and checks that stock models,
fast models and the emulator give identical hidden spikes and readout voltages.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
N_SAMPLES = 8


@pytest.mark.fsdd
def test_stock_models_equal_this_projects_models_on_trained_fsdd(fsdd_dir, tmp_path):
    from export.to_lava import export_checkpoint
    from deployed.emulator import emulate
    from lava_runtime.lava_graph.graph import run_network
    from lava_runtime.pipeline import load_features
    from deployed.validate import drains_between_samples

    run = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "trainer", "train", "--dataset", "fsdd",
                        "--data-dir", str(fsdd_dir), "--method", "dcls", "--epochs", "2",
                        "--seed", "0", "--out", str(run), "--no-progress",
                        "--set", "hidden=[64]", "--set", "batchnorm=false",
                        "--set", "max_lr=1e-2", "--set", "num_threads=1"],
                       cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    net, _ = export_checkpoint(run, "loihi2", evaluation=False, max_calibration=256)
    assert drains_between_samples(net)  # what the stock models need

    x, y = load_features(net, "fsdd", "test", limit=N_SAMPLES)
    payloads = net.input.encode(x)
    stock = run_network(net, payloads, "lava", fast_models=False, timeout_s=300)
    mine = run_network(net, payloads, "lava", fast_models=True, timeout_s=300)
    emu = emulate(net, payloads)

    assert stock.spikes[0].sum() > 0  # real activity, not an all-silent network
    for a in (mine, emu):
        assert all(np.array_equal(s, t) for s, t in zip(stock.spikes, a.spikes))
        assert np.array_equal(stock.readout_v, a.readout_v)
    assert np.array_equal(stock.predictions(net), mine.predictions(net))
