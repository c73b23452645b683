"""Input event threshold: features below it are not sent, by one rule (deployed.network.InputEncoding)
applied identically by the trained float model, the export's float reference, the emulator and Lava."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import trainer
from deployed import netx_h5
from export.float_reference import simulate_float
from export.to_lava import export_checkpoint
from deployed.emulator import emulate
from lava_runtime.lava_graph.graph import run_network
from deployed.activity import outputs_match
from trainer.data import load_dataset
from trainer.evaluate import model_from_checkpoint
from trainer.checkpoint import load_checkpoint_dict

DATA = {"n_train": 120, "n_test": 40, "n_classes": 4}
CFG = {"dataset": "synthetic", "method": "structure", "sparsity": 0.5, "hidden": [24],
       "kernel_size": 8, "epochs": 2, "batch_size": 40, "num_threads": 1, "n_mels": 16,
       "time_steps": 30, "data_options": DATA}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    test = load_dataset("synthetic", "test", n_mels=16, time_steps=30, **DATA)
    x = test.x.numpy()
    th = float(np.quantile(x[x > 0], 0.5))          # drops about half of the input events
    out = tmp_path_factory.mktemp("thr") / "run"
    trainer.train({**CFG, "input_threshold": th}, out=out, progress=False)
    return out, th, x, test.y.numpy()


def test_payloads_drop_exactly_the_events_below_the_threshold(trained, tmp_path):
    out, th, x, _ = trained
    net, report = export_checkpoint(out, "loihi2", evaluation=False)
    assert net.input.event_threshold == th
    pay = net.input.encode(x)
    assert np.all(pay[x < th] == 0)
    assert np.all(pay[x >= th] == np.clip(np.rint(x[x >= th] * net.input.scale), 0, 255))
    assert np.count_nonzero(pay) < 0.6 * np.count_nonzero(x)
    assert report["input_encoding"]["event_threshold"] == th
    netx_h5.save(net, tmp_path / "net.h5")
    assert netx_h5.load(tmp_path / "net.h5").input.event_threshold == th


def test_float_model_and_float_reference_apply_the_same_rule(trained):
    out, th, x, _ = trained
    ck = load_checkpoint_dict(out / "checkpoint.pt")
    model = model_from_checkpoint(ck, "cpu")
    gated = torch.tensor(x * (x >= th))
    with torch.no_grad():
        v = model(torch.tensor(x), hard=True)
        model.input_threshold = 0.0
        v_gated = model(gated, hard=True)
    torch.testing.assert_close(v, v_gated, rtol=0, atol=0)
    # the export's float reference, from the checkpoint's synapse lists, agrees
    ref = simulate_float(out, x).readout_v
    np.testing.assert_allclose(ref, v.numpy().transpose(0, 2, 1), rtol=1e-4, atol=1e-4)


def test_emulator_and_lava_see_the_same_events(trained):
    out, th, x, y = trained
    net, _ = export_checkpoint(out, "loihi2", evaluation=False)
    pay = net.input.encode(x[:3])
    lava = run_network(net, pay, "lava", timeout_s=120)
    assert outputs_match(lava, emulate(net, pay)).all()
    # without the threshold the same network gets more input events and other outputs
    net.input.event_threshold = 0.0
    assert np.count_nonzero(net.input.encode(x[:3])) > np.count_nonzero(pay)


def test_files_without_a_threshold_are_unchanged(tmp_path):
    from helpers.export_checkpoints import make_checkpoint, make_features, save_checkpoint
    path = save_checkpoint(make_checkpoint(), tmp_path / "ck")
    net, _ = export_checkpoint(path, "loihi2", calibration=make_features()[0], evaluation=False)
    netx_h5.save(net, tmp_path / "a.h5")
    import h5py
    with h5py.File(tmp_path / "a.h5") as f:
        assert "event_threshold" not in f["delaysnn/input"].attrs
