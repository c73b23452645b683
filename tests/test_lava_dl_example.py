"""experiments.lava_dl_example on a tiny task: a SLAYER network trained and written by lava-dl
(lava_runtime.lava_graph.slayer_train), converted, run by the emulator, this project's Lava graph
and lava-dl's netx in Lava (lava_runtime.lava_graph.netx_reference) on the same spikes; the
record holds what the README's "Bring your lava-dl network" block is made from."""
from __future__ import annotations

import json

import numpy as np

from experiments.lava_dl_example import example, main


def test_tiny_example_every_backend_agrees(tmp_path):
    js = tmp_path / "example.json"
    r = example(tmp_path / "out", js, classes=3, channels=8, time_steps=30, hidden=10,
                epochs=2, n_train=60, n_test=12, samples=3, command="test")
    assert json.loads(js.read_text()) == json.loads(json.dumps(r))
    assert r["agreement"]["netx_vs_emulator_every_layer"] == 1.0
    assert r["agreement"]["lava_vs_emulator_exact"] == 1.0
    acc = r["accuracy"]
    assert acc["emulator"] == acc["lava"] == acc["netx_lava"]
    assert r["network"]["layers"][0]["delay_layout"] == "per post neuron"
    assert r["budget"]["fits"] and r["budget"]["synops_per_sample"] > 0
    assert r["seconds"]["samples"] == 3 and r["seconds"]["netx_lava"] > 0
    out = tmp_path / "out"
    for name in ("net.net", "net.h5", "events.npy", "labels.npy", "activity.npz",
                 "net_report.html"):
        assert (out / name).is_file(), name
    ev = np.load(out / "events.npy")
    assert ev.shape == (3, 30, 8) and set(np.unique(ev)) <= {0, 1}


def test_json_folder_checked_first(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "o"), "--json", str(tmp_path / "no" / "x.json")]) == 2
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "o").exists()
