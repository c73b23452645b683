"""The clustering statistic on a real short structure-learning run versus its initialisation.

Trains `python -m trainer train --dataset synthetic --method structure-multi --sparsity 0.9`
with 32 hidden neurons for 6 epochs (about 10-15 s on 2 cores). The initial checkpoint is
RUN_DIR/checkpoint_init.pt, which the trainer writes at the start of a fresh run.

Measured when this test was written (seed 0): fc1 trained z = 5.8 (observed 0.525 vs shuffled
0.501 +- 0.004), initialisation z = 0.2; the readout (32 inputs, 800 synapses) did not separate
(z = -0.3 trained, -0.8 initial), so only fc1 is asserted.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from trainer.analyze import analyze

REPO = Path(__file__).resolve().parents[1]


def _initial_checkpoint(run: Path) -> Path:
    """The trainer writes the network at initialisation beside the trained one."""
    init = run / "checkpoint_init.pt"
    assert init.is_file(), "trainer did not write RUN_DIR/checkpoint_init.pt"
    assert torch.load(init, map_location="cpu", weights_only=False)["epoch"] == 0
    return init


@pytest.mark.slow
def test_trained_structure_run_separates_from_its_initialisation(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "trainer", "train", "--dataset", "synthetic",
         "--method", "structure-multi", "--sparsity", "0.9", "--epochs", "6", "--seed", "0",
         "--batch-size", "24", "--set", "hidden=[32]",
         "--set", "data_options={n_train=240, n_test=60}", "--no-progress", "--out", str(run)],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    init = _initial_checkpoint(run)
    result = analyze(run, tmp_path / "analysis", before=init, n_neurons=4)
    fc1 = result["layers"][0]
    assert fc1["name"] == "fc1"
    trained, before = fc1["trained"], fc1["before"]
    assert trained["n_synapses"] > 0 and before["n_synapses"] > 0
    # same connection count before and after rewiring (DEEP R + RigL keep it exact)
    assert trained["n_synapses_listed"] == before["n_synapses_listed"]
    assert before["z"] is not None and abs(before["z"]) < 3, before
    assert trained["z"] is not None and trained["z"] > 3, trained
