"""What delays buy: on a synthetic task where the class is the time offset between two channel
groups (up to 17 steps) and neurons forget within ~2 steps (tau = 2), the no-delay baseline is
far worse than learned delays (DCLS) and learned structure with frozen random delays. Also:
rounding DCLS positions to integer delays costs < 1 percentage point at the end of training.

Structure learning runs sparse (sparsity 0.5 with twice the hidden neurons, so the same number
of connections as the dense 16-neuron networks): DEEP R + RigL rewire it during training, and
the test checks that they did (the trained synapses differ from those at initialisation).

Task (trainer.data.synthetic): 10 channels = 2 groups, 5 classes, data_seed 79 gives the
group-1-minus-group-0 offsets 17, -17, -1, -6, -11 steps (pairwise >= 5 apart), so a network
with delays can line the groups up, and one without can at best tell 'coincident' (-1) apart.
"""
import pytest
import torch

import trainer
from trainer.data.synthetic import class_offsets

TASK = {"dataset": "synthetic", "n_mels": 10, "hidden": [16], "tau": 2.0, "epochs": 15,
        "batch_size": 32, "seed": 0, "num_threads": 1,
        "data_options": {"n_train": 500, "n_test": 200, "n_classes": 5, "data_seed": 79}}
# per method: overrides of TASK; structure: sparse, same connection count as the dense ones
METHODS = {"no-delay": {}, "dcls": {}, "structure": {"sparsity": 0.5, "hidden": [32]}}


def test_task_offsets_are_as_documented():
    o = class_offsets(5, 10, 100, 79)
    assert (o[:, 1] - o[:, 0]).tolist() == [17, -17, -1, -6, -11]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("methods")
    out = {m: trainer.train({**TASK, **extra, "method": m}, out=root / m, progress=False).metrics
           for m, extra in METHODS.items()}
    out["structure"]["run_dir"] = root / "structure"
    return out


def _synapses(path):
    ck = torch.load(path, map_location="cpu", weights_only=True)
    return [set(zip(L["pre"].tolist(), L["post"].tolist(), L["delay"].tolist()))
            for L in ck["layers"]]


def test_structure_is_learned_sparse(results):
    r = results["structure"]
    assert r["sparsity"] == 0.5
    assert r["connections"] == results["dcls"]["connections"]  # [160, 80]: equal budgets
    trained = _synapses(r["run_dir"] / "checkpoint.pt")
    init = _synapses(r["run_dir"] / "checkpoint_init.pt")
    assert [len(s) for s in trained] == [len(s) for s in init] == r["connections"]
    assert sum(len(t - i) for t, i in zip(trained, init)) > 0  # rewiring changed the structure


def test_no_delay_is_clearly_worse(results):
    acc = {m: r["test_accuracy"] for m, r in results.items()}
    assert acc["dcls"] >= 0.85 and acc["structure"] >= 0.85, acc
    assert acc["no-delay"] <= min(acc["dcls"], acc["structure"]) - 0.25, acc


def test_integer_delays_cost_less_than_one_point(results):
    r = results["dcls"]
    assert abs(r["test_accuracy"] - r["test_accuracy_train_kernels"]) < 0.01
