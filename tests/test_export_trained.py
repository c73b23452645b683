"""Export a network from a real (short) training run: CLI report, netx load and run."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deployed import netx_h5
from export.to_lava import export_checkpoint
from deployed.emulator import aligned, emulate
from helpers.netx_runner import run_netx

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "run"
    cmd = [sys.executable, "-m", "trainer", "train", "--dataset", "synthetic", "--epochs", "1",
           "--kernel-size", "8", "--out", str(out), "--no-progress", "--set", "hidden=[32]",
           "--set", "n_mels=16", "--set", "time_steps=30",
           "--set", "data_options={n_train=120, n_test=40, n_classes=4}"]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return out


def test_cli_export_of_trained_run(run_dir, tmp_path):
    h5, js = tmp_path / "net.h5", tmp_path / "report.json"
    r = subprocess.run([sys.executable, "-m", "export.to_lava", str(run_dir), "--profile",
                        "loihi2", "--out", str(h5), "--json", str(js)],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads(js.read_text())
    assert rep["profile_check"]["violations"] == []
    assert rep["accuracy"]["samples"] == 12  # the synthetic val split
    assert 0 <= rep["accuracy"]["quantized"] <= 1
    net = netx_h5.load(h5)
    assert [L.n_out for L in net.layers] == [32, 4] and net.input.n_channels == 16


def test_trained_run_in_netx_bit_exact(run_dir):
    from trainer.data import load_dataset
    ds = load_dataset("synthetic", "val", n_mels=16, time_steps=30, n_train=120, n_test=40,
                      n_classes=4)
    net, _ = export_checkpoint(run_dir, "loihi2", evaluation=False, netx_exact=True)
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "net.h5"
        assert netx_h5.save(net, path) == []
        pay = net.input.encode(ds.x[:1].numpy())
        T, L = net.input.time_steps, net.latency
        v, spikes = run_netx(path, pay[0], T + L, net.input.num_message_bits, 1,
                             reset_interval=T + L + 5)
    mine_v, mine_s = aligned(emulate(net, pay), net)
    assert np.array_equal(v[L:L + T], mine_v[0])
    assert np.array_equal(spikes[0][1:1 + T], mine_s[0][0])
