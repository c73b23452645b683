"""experiments.connectivity: disconnected synapses, useful and silent hidden neurons of a run."""
import json

import pytest
import torch

import trainer
from experiments.connectivity import connectivity, main
from trainer.rewiring import disconnected


def test_connectivity_of_a_short_run(tmp_path):
    run = tmp_path / "run"
    trainer.train({"dataset": "synthetic", "method": "structure", "sparsity": 0.95,
                   "hidden": [32], "epochs": 1, "batch_size": 50, "kernel_size": 5,
                   "num_threads": 1, "drop_disconnected": False,
                   "data_options": {"n_train": 100, "n_test": 20}},
                  out=run, progress=False)
    out = tmp_path / "c.json"
    assert main([str(run), "--label", "a", "--command", "cmd", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    r = doc["a"]["runs"][0]
    state = torch.load(run / "checkpoint_init.pt", weights_only=False)["model_state"]
    masks = [state["connections.0.mask"], state["connections.1.mask"]]
    dead = disconnected(masks)
    init = r["init"]
    assert [L["disconnected"] for L in init["layers"]] == [int(d.sum()) for d in dead]
    assert [L["synapses"] for L in init["layers"]] == [int(m.sum()) for m in masks]
    h = init["hidden"][0]
    has_in, has_out = masks[0].any(1), masks[1].any(0)
    assert h["without_input"] == int((~has_in).sum()) > 0
    assert h["with_input_and_output"] == int((has_in & has_out).sum())
    # a neuron without input cannot spike (BatchNorm of a zero current is its bias, 0 at init)
    assert h["silent_fraction"] >= h["without_input"] / h["neurons"]
    assert r["regrown_per_epoch"] and doc["a"]["command"] == "cmd"
    again = connectivity(run / "checkpoint_init.pt")
    assert again["layers"] == init["layers"] and "silent_fraction" not in again["hidden"][0]


def test_connectivity_refuses_unfinished_runs(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([str(tmp_path), "--label", "a", "--command", "c", "--json", str(tmp_path / "o.json")])
    assert "missing" in capsys.readouterr().err and not (tmp_path / "o.json").exists()
