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
    labels = finetune(root / "run", root / "qat_labels", epochs=3, lr=1e-3, profile=profile,
                      progress=False, objective="labels")
    return root, summary, profile, labels


def test_float_network_equals_the_float_reference(runs):
    root, _, _, _ = runs
    ck = load_checkpoint(root / "run")
    x = load_dataset("synthetic", "val", n_mels=10, **DATA).x
    with torch.no_grad():
        v = CheckpointNet(ck)(x, None, 1.0, 255, 0.0)
    np.testing.assert_allclose(v.numpy().transpose(0, 2, 1), simulate_float(ck, x.numpy()).readout_v,
                               atol=1e-5)


def _test_split(root, name, profile):
    """(float - fixed-point test accuracy, fixed-point test accuracy, agreement of the
    fixed-point predictions with the trained float model's) of RUN root/name."""
    from export.build_network import fixed_point_predictions

    x = load_dataset("synthetic", "test", n_mels=10, **DATA)
    f_pred = simulate_float(load_checkpoint(root / "run"), x.x.numpy()).predictions()
    net, rep = export_checkpoint(root / name, profile, eval_split="test")
    q_pred, _ = fixed_point_predictions(net, x.x.numpy().astype(np.float64))
    acc = rep["accuracy"]
    return acc["float"] - acc["quantized"], acc["quantized"], float(np.mean(q_pred == f_pred))


def test_distillation_makes_the_fixed_point_answer_as_the_trained_model(runs):
    """The default objective: on unseen test data the fine-tuned fixed-point network agrees
    more with the trained float model, and its gap to its float model closes."""
    root, summary, profile, _ = runs
    gap0, acc0, agree0 = _test_split(root, "run", profile)
    gap1, acc1, agree1 = _test_split(root, "qat", profile)
    assert gap0 >= 0.1, (gap0, acc0)              # 3-bit weights hurt the plain network
    assert agree1 >= agree0 + 0.03, (agree0, agree1)   # 3 of the 100 test samples
    assert gap1 <= gap0 - 0.05 and acc1 > acc0, (gap0, gap1, acc0, acc1)
    h = summary["history"]
    assert summary["objective"] == "distill"
    assert [e["epoch"] for e in h] == [0, 1, 2, 3]
    best = max(h, key=lambda e: (e["val_agreement"], e["val_fixed_point"], -e["epoch"]))
    assert summary["best_epoch"] == best["epoch"] and summary["val_agreement"] == best["val_agreement"]
    assert json.loads((root / "qat" / "qat.json").read_text())["best_epoch"] == summary["best_epoch"]


def test_labels_objective_closes_the_fixed_point_gap_on_unseen_test_data(runs):
    root, _, profile, summary = runs
    gap0, acc0, _ = _test_split(root, "run", profile)
    gap1, acc1, _ = _test_split(root, "qat_labels", profile)
    assert gap1 <= gap0 - 0.05 and acc1 >= acc0 + 0.05, (gap0, gap1, acc0, acc1)
    h = summary["history"]
    assert summary["objective"] == "labels"
    assert summary["val_fixed_point"] == max(e["val_fixed_point"] for e in h)


def test_bad_input_before_work(tmp_path, capsys):
    assert main([str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_distill_loss_is_the_per_step_kl_to_the_trained_model():
    from export.qat import distill_loss

    g = torch.Generator().manual_seed(0)
    vt = torch.randn(4, 3, 7, generator=g)
    assert distill_loss(vt.clone(), vt).abs() < 1e-7
    v = torch.randn(4, 3, 7, generator=g)
    p, q = torch.softmax(vt, 1), torch.softmax(v, 1)
    want = (p * (p.log() - q.log())).sum(1).mean()
    assert torch.allclose(distill_loss(v, vt), want, atol=1e-6) and want > 0
