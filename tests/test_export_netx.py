"""HDF5 export: netx loads and runs it bit-exactly; re-export is byte-identical; round trip."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from deployed import netx_h5
from export.to_lava import export_checkpoint
from helpers.export_checkpoints import make_checkpoint, make_features, save_checkpoint
from deployed.emulator import aligned, emulate
from helpers.netx_runner import run_netx

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("netx")
    path = save_checkpoint(make_checkpoint(seed=11), tmp / "run")
    x, y = make_features(8, seed=12)
    net, report = export_checkpoint(path, "loihi2", calibration=x, evaluation=(x, y),
                                    netx_exact=True)
    out = tmp / "net.h5"
    assert netx_h5.save(net, out) == []
    return net, report, out, x


def test_netx_runs_bit_exact(exported):
    net, report, out, x = exported
    pay = net.input.encode(x[:1])
    T, L = net.input.time_steps, net.latency
    v, spikes = run_netx(out, pay[0], T + L, net.input.num_message_bits, len(net.layers) - 1,
                         reset_interval=T + L + 5)
    act = emulate(net, pay)
    mine_v, mine_s = aligned(act, net)
    assert np.any(net.layers[0].neurons.bias_mant != 0)  # the bias path is exercised
    # Lava time step k (1-based) is row k-1 = window step k-1; layer i starts (resets) at
    # window step i + 1, where netx's per-layer reset offset (reset_offset + 1 + i) puts it
    assert np.array_equal(v[L:L + T], mine_v[0])
    for i, (s_lava, s_mine) in enumerate(zip(spikes, mine_s)):
        assert s_mine.sum() > 0
        assert np.array_equal(s_lava[i + 1:i + 1 + T], s_mine[0])
        # the whole recorded window from the layer's reset step on, not only the aligned part
        assert np.array_equal(s_lava[i + 1:].astype(np.uint8), act.spikes[i][0, i + 1:])


def test_round_trip(exported):
    net, report, out, x = exported
    back = netx_h5.load(out)
    assert back.class_names == net.class_names and back.meta == json.loads(json.dumps(net.meta))
    assert (back.profile_name, back.profile_version) == ("loihi2", "1")
    assert back.input == net.input
    for a, b in zip(net.layers, back.layers):
        for key in ("name", "n_in", "n_out", "weight_exp", "num_weight_bits", "input_message_bits"):
            assert getattr(a, key) == getattr(b, key)
        for key in ("pre", "post", "delay", "weight"):
            assert np.array_equal(getattr(a, key), getattr(b, key))
        for key in ("n", "du", "dv", "vth", "bias_exp", "spiking", "v_scale"):
            assert getattr(a.neurons, key) == getattr(b.neurons, key)
        assert np.array_equal(a.neurons.bias_mant, b.neurons.bias_mant)
    with h5py.File(out, "r") as f:
        assert f.attrs["netx_complete"]
        assert f["layer/0/type"][0] == b"input" and f["layer/1/neuron/iDecay"][()] == 4096
        w = f["layer/1/weight"][()]
        assert w.shape == (net.layers[0].n_out, net.layers[0].n_in) and w.max() <= 127


def test_multi_delay_marks_netx_incomplete(tmp_path):
    path = save_checkpoint(make_checkpoint(seed=13, multi=4), tmp_path / "run")
    x, _ = make_features(6, seed=14)
    net, report = export_checkpoint(path, "loihi2", calibration=x, evaluation=False)
    problems = netx_h5.save(net, tmp_path / "net.h5")
    assert len(problems) == 3 and "structure-multi" in problems[0]
    assert not report["netx"]["complete"] and report["warnings"]
    with h5py.File(tmp_path / "net.h5", "r") as f:
        assert not f.attrs["netx_complete"] and not f["delaysnn"].attrs["netx_complete"]
        # netx layers hold slot 0: one synapse per pair
        n_pairs = np.unique(net.layers[0].post * 12 + net.layers[0].pre).size
        assert np.count_nonzero(f["layer/1/weight"][()]) <= n_pairs
    back = netx_h5.load(tmp_path / "net.h5")
    assert back.layers[0].n_synapses == net.layers[0].n_synapses > n_pairs


def synthetic_checkpoint(folder: Path) -> Path:
    """A hand-made checkpoint whose data recipe rebuilds a tiny synthetic dataset."""
    from trainer.data import load_dataset
    ds = load_dataset("synthetic", "train", n_mels=12, time_steps=30, n_train=60, n_test=20,
                      n_classes=5)
    d = make_checkpoint(sizes=(12, 24, 16, 5), time_steps=30, seed=15, weight_scale=8.0)
    d["data_recipe"] = ds.recipe
    return save_checkpoint(d, folder)


def test_cli_byte_identical_reexport(tmp_path):
    """Two CLI exports of the same checkpoint (fresh interpreters) give identical bytes."""
    path = synthetic_checkpoint(tmp_path / "run")
    outs = []
    for k in range(2):
        outs.append(tmp_path / f"a{k}.h5")
        r = subprocess.run([sys.executable, "-m", "export.to_lava", str(path.parent),
                            "--profile", "loihi2", "--out", str(outs[-1]),
                            "--json", str(tmp_path / f"r{k}.json")],
                           cwd=REPO, timeout=300, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    assert "profile check: PASS" in r.stdout and "accuracy on 5 samples" in r.stdout
    assert outs[0].read_bytes() == outs[1].read_bytes()
    rep = json.loads((tmp_path / "r1.json").read_text())
    assert rep["profile"] == {"name": "loihi2", "version": "1"}
    assert rep["accuracy"]["samples"] == 5 and "emulator" in rep["accuracy"]["quantized_backend"]
    assert [L["name"] for L in rep["layers"]] == ["fc1", "fc2", "fc3"]
    assert sum(rep["layers"][0]["delay"]["histogram"]) == rep["layers"][0]["synapses"]
    assert netx_h5.load(outs[0]).meta["data_recipe"]["dataset"] == "synthetic"
