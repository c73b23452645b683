"""What delays buy, on the default synthetic set (trainer.data.synthetic) at a small size: its
classes differ only in which of four channel groups takes which of four time slots 8 steps
apart, so neurons that forget within a few steps (tau = 2 steps, as in the demo) cannot tell
them apart without delays. Fixed seeds; 40 -> 64 -> 10 (the demo: 40 -> 128 -> 10), 10 epochs
on 400 samples: the no-delay baseline stays near chance, far below learned delays (DCLS) and
learned structure with frozen random delays (sparsity 0.75, as in the demo). Also: rounding
DCLS positions to integer delays costs < 1 percentage point at the end of training, and the
sparse structure is learned: DEEP R + RigL rewire it (the trained synapses differ from those at
initialisation).
"""
import numpy as np
import pytest
import torch

import trainer
from trainer.data.synthetic import class_offsets

TASK = {"dataset": "synthetic", "hidden": [64], "tau": 2.0, "epochs": 10, "batch_size": 32,
        "seed": 0, "num_threads": 1, "data_options": {"n_train": 400, "n_test": 100}}
SPARSITY = {"no-delay": 0.0, "dcls": 0.0, "structure": 0.75}


def test_default_task_only_permutes_groups_over_slots_8_steps_apart():
    o = class_offsets(10, 40, 100, 0)
    assert o.shape == (10, 4)
    assert all(sorted(row) == [0, 8, 16, 24] for row in o.tolist())
    assert len({tuple(row) for row in o.tolist()}) == 10


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("methods")
    out = {m: trainer.train({**TASK, "method": m, "sparsity": s}, out=root / m,
                            progress=False).metrics
           for m, s in SPARSITY.items()}
    out["structure"]["run_dir"] = root / "structure"
    return out


def _synapses(path):
    ck = torch.load(path, map_location="cpu", weights_only=True)
    return [set(zip(L["pre"].tolist(), L["post"].tolist(), L["delay"].tolist()))
            for L in ck["layers"]]


def test_structure_is_learned_sparse(results):
    r = results["structure"]
    assert r["sparsity"] == 0.75
    trained = _synapses(r["run_dir"] / "checkpoint.pt")
    init = _synapses(r["run_dir"] / "checkpoint_init.pt")
    assert [len(s) for s in trained] == [len(s) for s in init] == r["connections"]
    assert sum(len(t - i) for t, i in zip(trained, init)) > 0  # rewiring changed the structure


def test_no_delay_is_clearly_worse(results):
    acc = {m: r["test_accuracy"] for m, r in results.items()}
    assert acc["dcls"] >= 0.8 and acc["structure"] >= 0.8, acc
    assert acc["no-delay"] <= min(acc["dcls"], acc["structure"]) - 0.25, acc
    assert acc["no-delay"] <= 0.3, acc             # near chance (0.1): the task needs delays
    assert np.sum(results["structure"]["connections"]) < 0.3 * np.sum(results["no-delay"]["connections"])


def test_integer_delays_cost_less_than_one_point(results):
    r = results["dcls"]
    assert abs(r["test_accuracy"] - r["test_accuracy_train_kernels"]) < 0.01
