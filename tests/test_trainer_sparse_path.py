"""The sparse execution path (trainer.sparse_delay) gives the dense-kernel path's currents,
input gradients, weight gradients and RigL candidate gradients on the same weights; the path is
chosen per layer by kernel density; it runs on CUDA too."""
import pytest
import torch

import trainer
from trainer.layers import DelayConnection
from trainer.sparse_delay import build_plan, sparse_delay


def _pair(method, K, sparsity, n_in, n_out, seed=1):
    """The same layer twice: on the sparse path and on the dense-kernel path."""
    a = DelayConnection(n_in, n_out, K, method, sparsity, torch.Generator().manual_seed(seed),
                        sparse_max_density=1.0)
    b = DelayConnection(n_in, n_out, K, method, sparsity, torch.Generator().manual_seed(seed),
                        sparse_max_density=0.0)
    assert a.sparse_path and not b.sparse_path
    return a.double(), b.double()


def _run(layer, x, gy, want):
    x = x.clone().requires_grad_()
    layer.theta.grad = None
    layer.want_candidate_grad(want)
    y = layer(x)
    y.backward(gy)
    return y.detach(), x.grad, layer.theta.grad.clone(), layer.candidate_grad()


@pytest.mark.parametrize("method,K", [("structure", 62), ("structure", 7), ("structure", 1),
                                      ("structure-multi", 62), ("structure-multi", 5),
                                      ("no-delay", 9)])
@pytest.mark.parametrize("batch,T", [(1, 70), (3, 64)])
def test_sparse_path_equals_dense_kernel(method, K, batch, T):
    a, b = _pair(method, K, 0.6, n_in=13, n_out=7)
    if method == "structure-multi":      # several delays for one (post, pre) pair
        assert int(a.mask.sum(-1).max()) > 1
    g = torch.Generator().manual_seed(5)
    x = torch.rand(batch, 13, T, generator=g, dtype=torch.float64)
    gy = torch.randn(batch, 7, T, generator=g, dtype=torch.float64)
    ya, gxa, gta, ca = _run(a, x, gy, True)
    yb, gxb, gtb, cb = _run(b, x, gy, True)
    assert ya.shape == (batch, 7, T)
    assert torch.allclose(ya, yb, atol=1e-12)
    assert torch.allclose(gxa, gxb, atol=1e-12)
    # weight gradient: existing synapses only on the sparse path, all candidates on the dense
    assert torch.allclose(gta, gtb * b.mask, atol=1e-10)
    assert gta[~a.mask].eq(0).all()
    assert torch.allclose(ca, cb, atol=1e-10)       # RigL score at every candidate
    assert cb[~b.mask].abs().max() > 0              # ... which is not trivially zero


def test_sparse_path_float32_and_after_rewiring():
    a, b = _pair("structure", 25, 0.9, n_in=40, n_out=31)
    a.float(), b.float()
    x = torch.rand(5, 40, 100, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(a(x), b(x), atol=1e-5)
    with torch.no_grad():               # move some connections, as rewiring does (in place)
        for layer in (a, b):
            idx = torch.nonzero(layer.mask.view(-1)).view(-1)[:20]
            layer.mask.view(-1)[idx] = False
            free = torch.nonzero(~layer.mask.view(-1)).view(-1)[:20]
            layer.mask.view(-1)[free] = True
            layer.theta.view(-1)[free] = 0.3
            layer.theta.mul_(layer.mask)
    assert torch.allclose(a(x), b(x), atol=1e-5)     # the plan followed the new mask


def test_empty_and_single_synapse_plans():
    x = torch.rand(2, 3, 10, dtype=torch.float64)
    z = torch.zeros(0, dtype=torch.int64)
    plan = build_plan(z, z, z, 3, 4, 5)
    assert sparse_delay(x, torch.zeros(0, dtype=torch.float64), plan).abs().sum() == 0
    one = torch.tensor([2])
    plan = build_plan(one, torch.tensor([1]), torch.tensor([4]), 3, 4, 5)
    y = sparse_delay(x, torch.tensor([0.5], dtype=torch.float64), plan)
    assert torch.equal(y[:, 2, 4:], 0.5 * x[:, 1, :6]) and y[:, 2, :4].eq(0).all()
    with pytest.raises(ValueError, match=r"must be \(B, 3, T\)"):
        sparse_delay(x[:, :2], torch.tensor([0.5], dtype=torch.float64), plan)


def test_path_choice_by_kernel_density():
    g = torch.Generator().manual_seed(0)
    # structure: connections / (n_out * n_in * K); K = 10 -> density 0.05 at sparsity 0.5
    assert DelayConnection(20, 10, 10, "structure", 0.5, g, sparse_max_density=0.05).sparse_path
    assert not DelayConnection(20, 10, 10, "structure", 0.5, g,
                               sparse_max_density=0.04).sparse_path
    # no-delay counts one tap; dcls and dense layers always use the dense kernel
    assert DelayConnection(20, 10, 10, "no-delay", 0.9, g, sparse_max_density=0.1).sparse_path
    assert not DelayConnection(20, 10, 10, "no-delay", 0.5, g, sparse_max_density=0.1).sparse_path
    assert not DelayConnection(20, 10, 10, "dcls", 0.99, g, sparse_max_density=1.0).sparse_path
    assert not DelayConnection(20, 10, 10, "structure", 0.0, g, sparse_max_density=1.0).sparse_path


def test_candidate_grad_needs_asking():
    a, _ = _pair("structure", 5, 0.8, 6, 4)
    a(torch.rand(2, 6, 9, dtype=torch.float64)).sum().backward()
    with pytest.raises(RuntimeError, match="want_candidate_grad"):
        a.candidate_grad()


def test_training_same_connections_on_both_paths(tmp_path):
    """The reference rule (rewire_interval 1) on the sparse and on the dense path: the same
    rewiring decisions and nearly the same weights after a short run."""
    cfg = {"dataset": "synthetic", "method": "structure", "sparsity": 0.9, "hidden": [16],
           "epochs": 1, "lr": 0.05, "max_lr": 0.1, "batch_size": 50, "kernel_size": 9,
           "num_threads": 1, "rewire_interval": 1, "data_options": {"n_train": 200, "n_test": 40}}
    runs = {}
    for d in (0.0, 1.0):
        trainer.train({**cfg, "sparse_max_density": d}, out=tmp_path / str(d), progress=False)
        runs[d] = torch.load(tmp_path / str(d) / "last.pt", weights_only=True)["model_state"]
    for k, v in runs[0.0].items():
        if v.dtype == torch.bool:
            assert torch.equal(v, runs[1.0][k]), k
        else:
            assert torch.allclose(v, runs[1.0][k], atol=1e-4), k


@pytest.mark.cuda
@pytest.mark.parametrize("method", ["structure", "structure-multi", "no-delay"])
def test_sparse_path_on_cuda(cuda_device, method):
    a, b = _pair(method, 25, 0.9, n_in=40, n_out=33)
    x = torch.rand(3, 40, 80, dtype=torch.float64)
    gy = torch.randn(3, 33, 80, dtype=torch.float64)
    ref = _run(b, x, gy, True)
    got = _run(a.to(cuda_device), x.to(cuda_device), gy.to(cuda_device), True)
    for r, g in zip(ref[:2] + ref[3:], got[:2] + got[3:]):
        assert torch.allclose(r, g.cpu(), atol=1e-10)


def test_model_defaults_choose_the_faster_path():
    """Defaults: sparse structure layers at K = 25 take the sparse path, structure-multi from
    density 0.03, no-delay never (sparse_max_density_no_delay = 0); old configs without the
    keys get the defaults."""
    from trainer.config import resolve_config
    from trainer.model import DelaySNN

    def paths(**kw):
        cfg = resolve_config(overrides={"hidden": [64], **kw})
        return [c.sparse_path for c in DelaySNN(40, 10, cfg).connections]
    assert paths(method="structure", sparsity=0.5) == [True, True]
    assert paths(method="structure-multi", sparsity=0.9) == [False, False]
    assert paths(method="structure-multi", sparsity=0.97) == [True, True]
    assert paths(method="no-delay", sparsity=0.99) == [False, False]
    assert paths(method="no-delay", sparsity=0.99, sparse_max_density_no_delay=0.05) == [True] * 2
    old = resolve_config(overrides={"method": "structure", "sparsity": 0.9})
    del old["sparse_max_density"], old["sparse_max_density_no_delay"]
    assert all(c.sparse_path for c in DelaySNN(40, 10, old).connections)


@pytest.mark.parametrize("method,dropout", [("structure", 0.0), ("structure", 0.3),
                                            ("structure-multi", 0.2)])
def test_network_on_sparse_path_equals_dense_kernel_network(method, dropout):
    """The whole network (delay layers, BatchNorm, LIF, dropout, readout) on the sparse path,
    whose activations stay laid out (N, T, B) in memory, gives the dense-kernel network's
    output, spikes, loss gradients and BatchNorm running statistics."""
    from trainer.config import resolve_config
    from trainer.model import DelaySNN, loss_fn
    cfg = resolve_config(overrides={"method": method, "sparsity": 0.8, "hidden": [24, 16],
                                    "kernel_size": 9, "dropout": dropout})
    nets = {d: DelaySNN(12, 5, {**cfg, "sparse_max_density": d}).double() for d in (1.0, 0.0)}
    assert [c.sparse_path for c in nets[1.0].connections] == [True] * 3
    assert [c.sparse_path for c in nets[0.0].connections] == [False] * 3
    g = torch.Generator().manual_seed(0)
    x = torch.rand(7, 60, 12, generator=g, dtype=torch.float64)
    y = torch.randint(0, 5, (7,), generator=g)
    got = {}
    for d, net in nets.items():
        net.train()
        masks = net.dropout_masks(7, torch.Generator().manual_seed(1), "cpu")
        masks = None if masks is None else [m.double() for m in masks]
        v, spikes = net(x, dropout_masks=masks, return_spikes=True)
        loss_fn(v, y).backward()
        got[d] = (v.detach(), [s.detach() for s in spikes],
                  [c.theta.grad.clone() * c.mask for c in net.connections],
                  [p.grad.clone() for n in net.norms for p in n.parameters()],
                  [n.running_var.clone() for n in net.norms])
    (va, sa, ta, na, ra), (vb, sb, tb, nb, rb) = got[1.0], got[0.0]
    assert torch.allclose(va, vb, atol=1e-10)
    assert all(torch.equal(a, b) for a, b in zip(sa, sb)) and sum(s.sum() for s in sa) > 0
    for a, b in zip(ta + na + ra, tb + nb + rb):
        assert torch.allclose(a, b, atol=1e-9), (a - b).abs().max()
    assert all(t.abs().sum() > 0 for t in ta)


def test_plan_rebuilt_only_when_the_connections_change():
    """Rewiring writes the mask in place every step; the synapse plan is rebuilt only when the
    mask's content (or the delays) changed, and the output always follows the mask."""
    a, b = _pair("structure", 9, 0.9, n_in=20, n_out=15)
    x = torch.rand(2, 20, 30, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a(x)
    first = a.plan()
    a.mask.view(-1)[:3] |= a.mask.view(-1)[:3]          # in-place write, same content
    assert a.plan() is first
    with torch.no_grad():
        for layer in (a, b):                            # a real change: one connection moves
            on = torch.nonzero(layer.mask.view(-1)).view(-1)[0]
            off = torch.nonzero(~layer.mask.view(-1)).view(-1)[0]
            layer.mask.view(-1)[on], layer.mask.view(-1)[off] = False, True
            layer.theta.view(-1)[on], layer.theta.view(-1)[off] = 0.0, 0.4
    assert a.plan() is not first
    assert torch.allclose(a(x), b(x), atol=1e-12)
    second = a.plan()
    with torch.no_grad():                               # new delays, same mask
        for layer in (a, b):
            layer.delay.copy_((layer.delay + 1) % 9)
    assert a.plan() is not second
    assert torch.allclose(a(x), b(x), atol=1e-12)
