"""`python -m lava_runtime run`: a real Lava run compared with the emulator; refusals."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deployed import netx_h5
from deployed.synthetic import random_network

REPO = Path(__file__).resolve().parents[1]


def cli(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "lava_runtime", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def net_file(tmp_path_factory):
    net = random_network((12, 20, 4), time_steps=30, max_delay=10, vth=40, seed=3)
    net.meta["data_recipe"] = {"dataset": "synthetic", "data_dir": None, "seed": 0,
                               "n_mels": 12, "time_steps": 30, "val_fraction": 0.1,
                               "options": {"n_classes": 4, "n_train": 20, "n_test": 8,
                                           "data_seed": 0}}
    path = tmp_path_factory.mktemp("cli") / "net.h5"
    netx_h5.save(net, path)
    return path


def test_run_lava_compare_emulator(net_file, tmp_path):
    out = tmp_path / "r.json"
    r = cli("run", net_file, "--dataset", "synthetic", "--limit", 6, "--compare", "emulator",
            "--json", out)
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.read_text())
    assert rep["backend"] == "lava" and rep["samples"] == 6 and rep["split"] == "test"
    assert rep["compare"]["backend"] == "emulator"
    assert rep["compare"]["exact_match_fraction"] == 1.0
    assert rep["compare"]["accuracy"] == rep["accuracy"]
    assert rep["spikes_per_layer"][0] > 0 and rep["steps_per_second"] > 0
    assert "outputs identical on 100.0% of samples" in r.stdout
    # lanes chosen automatically: all 6 samples side by side, one window of Lava steps
    assert rep["lanes"] == 6 and rep["samples_per_second"] > 0
    window = 30 + netx_h5.load(net_file).padding_steps()
    assert rep["total_steps"] == window and f"6 lanes, {window} steps" in r.stdout


def test_run_lanes_option(net_file, tmp_path):
    out = tmp_path / "r.json"
    r = cli("run", net_file, "--dataset", "synthetic", "--limit", 5, "--lanes", 2,
            "--compare", "emulator", "--json", out)
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.read_text())
    window = 30 + netx_h5.load(net_file).padding_steps()
    assert rep["lanes"] == 2 and rep["total_steps"] == 3 * window  # 5 samples: 3 rounds
    assert rep["compare"]["exact_match_fraction"] == 1.0


def test_run_refusals(net_file, tmp_path):
    r = cli("run", tmp_path / "missing.h5")
    assert r.returncode == 2 and "network file" in r.stderr and "does not exist" in r.stderr
    r = cli("run", net_file, "--limit", 0)
    assert r.returncode == 2 and "--limit must be a positive integer, got 0" in r.stderr
    r = cli("run", net_file, "--json", tmp_path / "nope" / "r.json")
    assert r.returncode == 2 and "--json must be a .json file in an existing folder" in r.stderr
    r = cli("run", net_file, "--stock-models", "--lanes", 2)
    assert r.returncode == 2 and "stock delay models (--stock-models) run one lane" in r.stderr
    r = cli("run", net_file, "--lanes", 0)
    assert r.returncode == 2 and "lanes must be a positive integer" in r.stderr
    r = cli("run", net_file, "--backend", "gpu")
    assert r.returncode == 2 and "invalid choice: 'gpu'" in r.stderr
