"""The emulator (hence the Lava graph) runs the trained float model's time axis: every layer
starts from u = v = 0 at its first input step, its bias acting from there on, as
export.float_reference.simulate_float does (docs/design.md section 2).

The network comes from a real short training run (BatchNorm on, so every hidden neuron has a
bias). Two checks:
- exact: the exported integer network, turned back into a float checkpoint whose numbers are
  exactly its integers (leak removed so Lava's decay truncation has nothing to round), gives
  simulate_float == the emulator's aligned view, spike for spike and voltage for voltage;
  the former semantics (every layer from window step 0, bias integrating during the latency
  steps) does not;
- statistical: on the trained network itself (quantization included) the emulator classifies
  like the float model more often than the former semantics did.
"""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from trainer.checkpoint import checkpoint_from_dict, load_checkpoint
from export.float_reference import simulate_float
from export.to_lava import export_checkpoint
from deployed.emulator import aligned, emulate, lif_run, synaptic_input

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-hidden-layer BatchNorm network trained for 3 short epochs on synthetic data."""
    out = tmp_path_factory.mktemp("aligned") / "run"
    cmd = [sys.executable, "-m", "trainer", "train", "--dataset", "synthetic", "--epochs", "3",
           "--out", str(out), "--no-progress", "--set", "hidden=[32, 24]",
           "--set", "batch_size=8", "--set", "kernel_size=12", "--set", "n_mels=16",
           "--set", "time_steps=40",
           # the torch path: the network whose margins the comments below were measured on
           # (the compiled kernel's BatchNorm fold trains one different by float rounding)
           "--set", "lif_kernel=torch",
           "--set", "data_options={n_train=300, n_test=100, n_classes=4}"]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    ck = load_checkpoint(out / "checkpoint.pt")
    assert all(L.bn is not None for L in ck.layers[:-1])
    from trainer.data import dataset_from_recipe
    x = np.concatenate([dataset_from_recipe(ck.data_recipe, s).x.numpy()
                        for s in ("train", "val", "test")])
    return out, ck, x


def preroll_readout(net, payloads):
    """The former semantics: every layer from u = v = 0 at window step 0, so layer i integrates
    its bias alone for i + 1 steps before its first input. Readout (N, T, C) at window steps
    latency..latency+T-1."""
    n, T, _ = payloads.shape
    K = T + net.latency
    x = np.zeros((net.input.n_channels, K, n), np.float32)
    x[:, :T] = payloads.transpose(2, 1, 0)
    for layer in net.layers:
        out = lif_run(layer, synaptic_input(layer, x), start=0)
        if layer.neurons.spiking:
            x = np.ascontiguousarray(out.transpose(1, 0, 2), dtype=np.float32)
    return out.transpose(2, 0, 1)[:, net.latency:net.latency + T]


def scores(v):
    v = v - v.max(axis=-1, keepdims=True)
    e = np.exp(v)
    return (e / e.sum(axis=-1, keepdims=True)).sum(axis=1)


def float_checkpoint_of(net, ck):
    """A checkpoint whose float model computes exactly what the integer network does, in units
    of 1/64 Lava state unit: weight w * 2**weight_exp, BN = identity scale + bias_mant (bias_mant
    << 6 state units), threshold vth, decay 1 - dv/4096 (exact only for dv = 0)."""
    layers = []
    for L in net.layers:
        nr = L.neurons
        assert nr.bias_exp == 6 and nr.du == 4095
        n = L.n_out
        layers.append({
            "name": L.name, "n_in": L.n_in, "n_out": n,
            "pre": torch.tensor(L.pre), "post": torch.tensor(L.post),
            "delay": torch.tensor(L.delay),
            "weight": torch.tensor(L.weight * 2.0 ** L.weight_exp, dtype=torch.float64),
            "bn": {"weight": torch.ones(n, dtype=torch.float64),
                   "bias": torch.tensor(nr.bias_mant, dtype=torch.float64),
                   "running_mean": torch.zeros(n, dtype=torch.float64),
                   "running_var": torch.ones(n, dtype=torch.float64), "eps": 0.0},
            "neuron": {"decay": 1 - nr.dv / 4096, "dv": nr.dv, "threshold": float(nr.vth),
                       "spiking": nr.spiking}})
    return checkpoint_from_dict({
        "format": "delaysnn-checkpoint", "version": 1, "config": {}, "class_names":
        net.class_names, "data_recipe": {"n_channels": net.input.n_channels,
                                          "time_steps": net.input.time_steps},
        "epoch": 0, "val_accuracy": 0.0, "layers": layers, "model_state": {}})


def test_float_model_equals_emulator_exactly_without_rounding(trained):
    run, ck, x = trained
    # netx-exact: weight_exp = -1 with even weights, so every synaptic sum halves exactly
    net, _ = export_checkpoint(run, "loihi2", evaluation=False, netx_exact=True)
    assert all(L.weight_exp == -1 and np.all(L.weight % 2 == 0) for L in net.layers)
    assert all(np.abs(L.neurons.bias_mant).max() > 0 for L in net.layers[:-1])
    # no leak: Lava's truncating decay is then exact (everything else is integer already)
    net = dataclasses.replace(net, layers=[dataclasses.replace(
        L, neurons=dataclasses.replace(L.neurons, dv=0)) for L in net.layers])
    pay = net.input.encode(x[:120])
    fr = simulate_float(float_checkpoint_of(net, ck), pay.astype(np.float64), keep_spikes=True)
    v, spikes = aligned(emulate(net, pay), net)
    assert np.abs(v).max() < 2 ** 23 - 1  # the integer readout did not clip
    for s_float, s_emu in zip(fr.spikes, spikes):
        assert s_emu.sum() > 1000
        assert np.array_equal(s_float, s_emu)
    assert np.array_equal(fr.readout_v * 64, v)  # float units are 1/64 Lava state unit
    # the former semantics (bias acting during the latency steps) is not the float model
    assert not np.array_equal(preroll_readout(net, pay), v)


def test_trained_network_classifies_like_float_better_than_preroll(trained):
    run, ck, x = trained
    net, _ = export_checkpoint(run, "loihi2", evaluation=False)
    pay = net.input.encode(x)
    f_pred = simulate_float(ck, x).predictions()
    assert len(np.unique(f_pred)) > 1  # the float model does not answer one class for all
    new = np.mean(emulate(net, pay).predictions(net) == f_pred)
    old = np.mean(scores(preroll_readout(net, pay) * net.readout.neurons.v_scale).argmax(1)
                  == f_pred)
    # quantization (8-bit weights and input) still flips some spikes of this briefly trained,
    # low-margin network, hence not 100% (measured: 0.925 aligned vs 0.8925 pre-roll on 400)
    assert new >= 0.9 and new > old, (new, old)
