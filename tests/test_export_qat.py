"""Quantization-aware fine-tuning (export.qat) through the export's own fixed point.

On a profile with 3-bit weights (loihi2's file with weight_bits = 3) the exported network loses a
lot against its float model; fine-tuning through that rounding closes most of the gap on the test
split, which it never saw."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import hw_profiles
import trainer
from trainer.checkpoint import load_checkpoint
from export.float_reference import simulate_float
from export.qat import CheckpointNet, finetune, main
from export.to_lava import export_checkpoint
from trainer.data import load_dataset

DATA = {"n_train": 300, "n_test": 100, "n_classes": 5, "data_seed": 79}
TASK = {"dataset": "synthetic", "method": "dcls", "n_mels": 10, "hidden": [16], "tau": 2.0,
        "epochs": 10, "batch_size": 32, "num_threads": 1, "data_options": DATA}


def coarse_profile(folder: Path) -> str:
    """loihi2's profile with 3-bit weights (a made-up chip: a coarse grid makes the gap visible)."""
    text = (Path(hw_profiles.__file__).parent / "loihi2.toml").read_text()
    assert "[limits.weight_bits]\nvalue = 8" in text
    path = folder / "coarse.toml"
    path.write_text(text.replace("[limits.weight_bits]\nvalue = 8", "[limits.weight_bits]\nvalue = 3"))
    return str(path)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("qat")
    trainer.train(TASK, out=root / "run", progress=False)
    profile = coarse_profile(root)
    summary = finetune(root / "run", root / "qat", epochs=3, lr=1e-3, profile=profile,
                       progress=False)
    return root, summary, profile


def test_float_network_equals_the_float_reference(runs):
    root, _, _ = runs
    ck = load_checkpoint(root / "run")
    x = load_dataset("synthetic", "val", n_mels=10, **DATA).x
    with torch.no_grad():
        v = CheckpointNet(ck)(x, None, 1.0, 255, 0.0)
    np.testing.assert_allclose(v.numpy().transpose(0, 2, 1), simulate_float(ck, x.numpy()).readout_v,
                               atol=1e-5)


def test_finetuning_closes_the_fixed_point_gap_on_unseen_test_data(runs):
    root, summary, profile = runs
    gaps = {}
    for name in ("run", "qat"):
        _, rep = export_checkpoint(root / name, profile, eval_split="test")
        gaps[name] = rep["accuracy"]["float"] - rep["accuracy"]["quantized"], rep["accuracy"]
    assert gaps["run"][0] >= 0.1, gaps           # 3-bit weights hurt the plain network
    assert gaps["qat"][0] <= gaps["run"][0] - 0.05, gaps
    assert gaps["qat"][1]["quantized"] >= gaps["run"][1]["quantized"] + 0.05, gaps
    h = summary["history"]
    assert [e["epoch"] for e in h] == [0, 1, 2, 3]
    assert summary["val_fixed_point"] == max(e["val_fixed_point"] for e in h)
    assert json.loads((root / "qat" / "qat.json").read_text())["best_epoch"] == summary["best_epoch"]


def test_bad_input_before_work(tmp_path, capsys):
    assert main([str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
