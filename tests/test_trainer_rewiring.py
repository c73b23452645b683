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


def test_regrowth_never_picks_dead_candidates_while_live_ones_exist():
    from trainer.rewiring import regrow
    theta = torch.zeros(8)
    mask = torch.tensor([True, True, False, False, False, False, False, False])
    theta[:2] = 0.5
    score = torch.tensor([0.0, 0.0, 0.0, 0.0, -2.0, 0.0, 0.0, 0.3])   # dead: 2, 3, 5, 6
    removed = torch.zeros(8, dtype=torch.bool)
    idx = regrow(theta, mask, 2, removed, score, torch.Generator().manual_seed(0))
    assert sorted(idx.tolist()) == [4, 7]           # both live ones, the negative one too
    idx = regrow(theta, mask, 2, removed, score, torch.Generator().manual_seed(0))
    assert set(idx.tolist()) <= {2, 3, 5, 6} and len(set(idx.tolist())) == 2  # then dead ones
    assert int(mask.sum()) == 6 and theta[idx].eq(REGROW_THETA).all()


def test_random_regrowth_ignores_scores_and_is_seeded():
    from trainer.rewiring import regrow
    picks = []
    for seed in (0, 0, 1):
        theta, mask = torch.zeros(1000), torch.zeros(1000, dtype=torch.bool)
        idx = regrow(theta, mask, 50, torch.zeros(1000, dtype=torch.bool), None,
                     torch.Generator().manual_seed(seed))
        assert len(set(idx.tolist())) == 50 and int(mask.sum()) == 50
        picks.append(sorted(idx.tolist()))
    assert picks[0] == picks[1] != picks[2]
    assert max(picks[0]) > 500                     # not the first indices


def test_drop_smallest_and_cosine_schedule():
    from trainer.rewiring import drop_fraction_at, drop_smallest, is_regrowth_step
    theta = torch.tensor([0.5, 0.1, 0.0, 0.3, 0.2])
    mask = torch.tensor([True, True, False, True, True])
    dropped = drop_smallest(theta, mask, 2)
    assert dropped.tolist() == [False, True, False, False, True]
    assert mask.tolist() == [True, False, False, True, False] and theta[1] == 0 == theta[4]
    assert drop_fraction_at(0, 100, 0.3, 0.75) == pytest.approx(0.3)
    assert drop_fraction_at(75 // 2, 100, 0.3, 0.75) == pytest.approx(0.15, abs=0.01)
    assert drop_fraction_at(75, 100, 0.3, 0.75) == 0 == drop_fraction_at(10, 100, 0.0, 1.0)
    steps = [s for s in range(100) if is_regrowth_step(s, 100, 10, 0.75)]
    assert steps == [0, 10, 20, 30, 40, 50, 60, 70]
    assert all(is_regrowth_step(s, 100, 1, 1.0) for s in range(100))


@pytest.mark.parametrize("method,options", [
    ("structure", {"rewire_interval": 3, "rigl_drop_fraction": 0.3, "rigl_stop_fraction": 0.75}),
    ("structure-multi", {"rewire_interval": 2, "regrow": "random", "deepr_temperature": 1e-3}),
    ("no-delay", {"rewire_interval": 4, "sparse_max_density_no_delay": 1.0, "l1": 0.01})])
def test_scheduled_rewiring_keeps_exact_count(tmp_path, monkeypatch, method, options):
    """Exact counts after every step; the dense candidate gradient is computed on regrowth
    steps only; regrown connections are recorded per epoch."""
    import trainer.sparse_delay as sd
    calls = []
    real = sd.candidate_grad
    monkeypatch.setattr(sd, "candidate_grad", lambda *a: calls.append(1) or real(*a))
    seen, n_sparse_path = [], []

    def on_step(model, epoch, step):
        n_sparse_path.append(sum(c.sparse_path for c in model.connections))
        for c in model.connections:
            assert c.connections() == n_connections(c.theta.numel(), 0.9)
            assert c.theta[~c.mask].eq(0).all() and c.theta[c.mask].gt(0).all()
        seen.append(model.connections[0].mask.clone())

    cfg = {"dataset": "synthetic", "method": method, "sparsity": 0.9, "hidden": [16],
           "epochs": 2, "lr": 0.1, "max_lr": 0.2, "batch_size": 50, "kernel_size": 9,
           "num_threads": 1, "data_options": {"n_train": 200, "n_test": 40}, **options}
    result = trainer.train(cfg, out=tmp_path / "run", progress=False, on_step=on_step)
    total = 8
    assert len(seen) == total
    interval = options["rewire_interval"]
    stop = options.get("rigl_stop_fraction", 1.0)
    regrowth_steps = [s for s in range(total) if s % interval == 0 and s < stop * total]
    if options.get("regrow", "gradient") == "gradient":
        assert len(calls) == len(regrowth_steps) * n_sparse_path[0]
    else:
        assert calls == []                           # random regrowth needs no gradient
    history = result.metrics["history"]
    assert all(len(h["regrown"]) == 2 for h in history)
    assert sum(sum(h["regrown"]) for h in history) > 10
    assert any(not torch.equal(a, b) for a, b in zip(seen, seen[1:]))
    assert n_sparse_path[0] == {"structure": 2, "structure-multi": 0, "no-delay": 2}[method]


def test_auto_interval_is_per_execution_path():
    """rewire_interval 0: the reference's every-step regrowth where the candidate gradient is
    free (dense kernel, e.g. dcls), every SPARSE_PATH_INTERVAL steps on the sparse path."""
    from trainer.layers import DelayConnection
    from trainer.train import SPARSE_PATH_INTERVAL, RewireSchedule
    g = torch.Generator().manual_seed(0)
    dense = DelayConnection(20, 10, 9, "dcls", 0.9, g)
    sparse = DelayConnection(20, 10, 9, "structure", 0.9, g, sparse_max_density=0.05)
    auto, fixed = RewireSchedule(100, interval=0), RewireSchedule(100, interval=3)
    assert auto.layer_interval(dense) == 1 and auto.layer_interval(sparse) == SPARSE_PATH_INTERVAL
    assert fixed.layer_interval(dense) == 3 == fixed.layer_interval(sparse)
    assert [s for s in range(25) if auto.regrowth_step(s, sparse)] == [0, 10, 20]


def test_disconnected_finds_connections_without_a_path_through_the_network():
    from trainer.rewiring import disconnected
    fc1 = torch.tensor([[1, 0], [0, 1], [1, 1]], dtype=torch.bool)     # 3 hidden <- 2 inputs
    out = torch.tensor([[1, 0, 0], [0, 0, 1]], dtype=torch.bool)       # hidden 1 feeds nothing
    d1, d2 = disconnected([fc1, out])
    assert d1.view(3, 2).nonzero().tolist() == [[1, 1]] and not d2.any()
    fc1 = torch.tensor([[1, 0], [0, 0], [1, 1]], dtype=torch.bool)     # hidden 1 gets nothing
    out = torch.tensor([[0, 1, 0], [1, 0, 1]], dtype=torch.bool)
    d1, d2 = disconnected([fc1, out])
    assert not d1.any() and d2.view(2, 3).nonzero().tolist() == [[0, 1]]
    multi = torch.zeros(3, 2, 4, dtype=torch.bool)                     # structure-multi masks
    multi[0, 0, 1] = multi[1, 1, 2] = multi[1, 1, 3] = True
    d1, _ = disconnected([multi, torch.tensor([[1, 0, 0], [0, 0, 1]], dtype=torch.bool)])
    assert d1.view(3, 2, 4).nonzero().tolist() == [[1, 1, 2], [1, 1, 3]]


@pytest.mark.parametrize("method", ["structure", "structure-multi"])
@pytest.mark.parametrize("drop", [False, True])
def test_drop_disconnected_moves_dead_end_synapses_to_useful_neurons(tmp_path, method, drop):
    """At sparsity 0.97 most hidden neurons have no readout connection, so the synapses onto
    them get a zero gradient and DEEP R never frees them. drop_disconnected moves them on the
    first regrowth step (to neurons with a path to the output); the count stays exact."""
    from trainer.rewiring import disconnected
    n_dead = []

    def on_step(model, epoch, step):
        masks = [c.mask for c in model.connections]
        n_dead.append(int(disconnected(masks)[0].sum()))
        for c in model.connections:
            assert c.connections() == n_connections(c.theta.numel(), 0.97)
            assert c.theta[~c.mask].eq(0).all() and c.theta[c.mask].gt(0).all()

    cfg = {"dataset": "synthetic", "method": method, "sparsity": 0.97, "hidden": [64],
           "epochs": 1, "batch_size": 50, "kernel_size": 5, "num_threads": 1,
           "drop_disconnected": drop, "rewire_interval": 2,
           "data_options": {"n_train": 100, "n_test": 20}}
    run = trainer.train(cfg, out=tmp_path / "run", progress=False, on_step=on_step)
    ckpt = torch.load(tmp_path / "run" / "checkpoint_init.pt", weights_only=False)
    masks0 = [v for k, v in ckpt["model_state"].items() if k.endswith(".mask")]
    dead0 = int(disconnected(masks0)[0].sum())
    assert dead0 > 10                        # the network starts with many dead-end synapses
    if drop:
        assert n_dead[0] <= dead0 // 10
    else:
        assert n_dead[0] >= dead0 - 2
    assert run.completed
