"""`run` and `budget` read the data the network was trained on unless told otherwise (issue 23
item 1), and take a folder that holds net.h5 (item 6).

The network's recipe names a `folder` dataset of fake audio: without --dataset, both commands
must read that folder through the network's front end, not the synthetic set."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers.data_fakes import write_class_folder

from deployed import netx_h5
from deployed.synthetic import random_network
from lava_runtime.budget.cli import run_budget
from lava_runtime.run_cli import run

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained_on_folder(tmp_path_factory):
    """(run folder holding net.h5, the audio folder): a network whose recipe is the training
    split of a 3-class folder dataset (12 Mel bands, 30 steps)."""
    from trainer.data import load_dataset

    root = tmp_path_factory.mktemp("default_data")
    audio = write_class_folder(root / "audio", per_class=10)
    recipe = load_dataset("folder", "train", audio, n_mels=12, time_steps=30,
                          cache_dir=root / "cache").recipe
    net = random_network((12, 20, 3), time_steps=30, max_delay=6, density=0.3, seed=3,
                         input_weight_exp=0, vth=600)
    net.meta["data_recipe"] = recipe
    (root / "run").mkdir()
    netx_h5.save(net, root / "run" / "net.h5")
    return root / "run", audio


def test_run_defaults_to_the_networks_dataset(trained_on_folder, capsys):
    run_dir, audio = trained_on_folder
    net = run_dir / "net.h5"
    implicit = run(net, backend="emulator")
    explicit = run(net, dataset="folder", data_dir=audio, backend="emulator")
    capsys.readouterr()
    assert implicit["dataset"] == "folder"
    for key in ("samples", "accuracy", "spikes_per_layer"):
        assert implicit[key] == explicit[key]
    # asking for another dataset still works
    assert run(net, dataset="synthetic", backend="emulator", limit=4)["dataset"] == "synthetic"


def test_budget_defaults_to_the_networks_dataset(trained_on_folder, capsys):
    run_dir, audio = trained_on_folder
    net = run_dir / "net.h5"
    implicit = run_budget(net, progress=False)[0]
    explicit = run_budget(net, dataset="folder", data_dir=audio, progress=False)[0]
    synthetic = run_budget(net, dataset="synthetic", progress=False)[0]
    capsys.readouterr()
    assert implicit.synops_per_sample == explicit.synops_per_sample
    assert implicit.synops_per_sample != synthetic.synops_per_sample


def test_a_network_without_a_recipe_asks_for_dataset(tmp_path, capsys):
    net = random_network((12, 20, 3), time_steps=30, max_delay=6, seed=3)
    net.meta.pop("data_recipe", None)
    path = tmp_path / "net.h5"
    netx_h5.save(net, path)
    for call in (lambda: run(path, backend="emulator"), lambda: run_budget(path)):
        with pytest.raises(ValueError, match=r"does not record the dataset it was trained on; "
                                             r"pass --dataset NAME \(.*synthetic"):
            call()
    assert capsys.readouterr().out == ""  # refused before any work


def test_a_folder_holding_net_h5_is_accepted(trained_on_folder, capsys):
    run_dir, _ = trained_on_folder
    via_folder = run_budget(run_dir, limit=3, progress=False)[0]
    via_file = run_budget(run_dir / "net.h5", limit=3, progress=False)[0]
    assert via_folder.synops_per_sample == via_file.synops_per_sample
    assert run(run_dir, backend="emulator", limit=3)["network"] == str(run_dir / "net.h5")
    capsys.readouterr()


def test_a_folder_without_net_h5_says_what_to_pass(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"folder .*empty holds no net.h5; pass an exported "
                                         r"network file \(NET.h5\) or a folder holding net.h5"):
        run_budget(empty)
    trained = tmp_path / "trained"
    trained.mkdir()
    (trained / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"a trained run: export it first, python -m "
                                         r"export.to_lava .*trained --out .*trained/net.h5"):
        run(trained)
    (trained / "report").mkdir()
    (trained / "report" / "net.h5").write_bytes(b"")
    with pytest.raises(ValueError, match=r"the report's export is .*trained/report/net.h5"):
        run_budget(trained)


def test_budget_command_on_a_run_folder(trained_on_folder):
    """The command as the issue typed it: `budget RUN_FOLDER --profile loihi2 --limit 5`."""
    run_dir, _ = trained_on_folder
    r = subprocess.run([sys.executable, "-m", "delaysnn", "budget", str(run_dir), "--profile",
                        "loihi2", "--limit", "5"], cwd=REPO, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert "synaptic" in r.stdout and "does not exist" not in r.stderr
