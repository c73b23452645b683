"""DEEP R + RigL: removal of crossed-zero magnitudes, regrowth by gradient, exact counts, and
in real training runs: the count never changes and unconnected entries stay exactly zero."""
import pytest
import torch

import trainer
from trainer.layers import n_connections
from trainer.rewiring import REGROW_THETA, rewire


def test_rewire_removes_crossed_and_regrows_by_gradient():
    theta = torch.tensor([0.5, -0.1, 0.0, 0.3, 0.0, 0.0, 0.0, 0.2])
    mask = torch.tensor([True, True, True, True, False, False, False, False])
    theta[~mask] = 0
    grad = torch.tensor([0.0, -9.0, -9.0, 0.0, -1.0, 2.0, -3.0, 0.0])
    n, idx = rewire(theta, mask, grad)
    assert n == 2                                   # entries 1 (negative) and 2 (zero)
    assert sorted(idx.tolist()) == [4, 6]           # largest -grad among fresh candidates
    assert mask.tolist() == [True, False, False, True, True, False, True, False]
    assert theta.tolist() == pytest.approx([0.5, 0, 0, 0.3, REGROW_THETA, 0, REGROW_THETA, 0])
    assert int(mask.sum()) == 4


def test_rewire_falls_back_to_removed_when_no_fresh_candidates():
    theta = torch.tensor([[0.5, -0.2], [0.1, 0.0]])
    mask = torch.tensor([[True, True], [True, False]])
    n, idx = rewire(theta, mask, torch.zeros(2, 2))
    assert n == 1 and int(mask.sum()) == 3 and mask[1, 1] and theta[1, 1] == REGROW_THETA
    n, idx = rewire(theta, mask, torch.zeros(2, 2))
    assert n == 0 and int(mask.sum()) == 3


def test_rewire_shape_check():
    with pytest.raises(ValueError, match="must have the same shape"):
        rewire(torch.zeros(3), torch.zeros(3, dtype=torch.bool), torch.zeros(4))


@pytest.mark.parametrize("method", ["structure", "structure-multi", "dcls", "no-delay"])
def test_training_keeps_count_and_zeros(tmp_path, method):
    counts, removals, checked, prev = [], [0], [], {}

    def on_step(model, epoch, step):
        for i, c in enumerate(model.connections):
            assert c.connections() == n_connections(c.theta.numel(), 0.9)
            assert c.theta[~c.mask].eq(0).all()
            assert c.theta[c.mask].gt(0).all()
            assert (c.sign * c.theta).abs().eq(c.theta).all()
            if i in prev:
                removals[0] += int((prev[i] & ~c.mask).sum())
            prev[i] = c.mask.clone()
            counts.append((i, c.connections()))
        checked.append(1)

    result = trainer.train({"dataset": "synthetic", "method": method, "sparsity": 0.9,
                            "hidden": [16], "epochs": 2, "lr": 0.1, "max_lr": 0.2, "batch_size": 50, "kernel_size": 9,
                            "num_threads": 1,
                            "data_options": {"n_train": 200, "n_test": 40}},
                           out=tmp_path / "run", progress=False, on_step=on_step)
    assert len(checked) == 2 * 4
    assert removals[0] > 10        # rewiring really happened (a high lr makes it frequent)
    first = dict(counts[:2])
    assert all(first[i] == n for i, n in counts)
    assert result.metrics["connections"] == [first[0], first[1]]
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert [len(l["weight"]) for l in ckpt["layers"]] == [first[0], first[1]]
