"""The compiled sparse DCLS index (trainer.tap_index) against the torch-built one it replaces."""
from __future__ import annotations

import pytest
import torch

from trainer import tap_index
from trainer.layers import DelayConnection
from trainer.sparse_dcls import build_tap_plan, set_window_starts, sparse_dcls


@pytest.fixture(scope="module")
def built():
    if tap_index._build() is None:
        pytest.skip(f"the compiled index does not build here: {tap_index._error}")


def _synapses(n_in, n_out, S, seed):
    g = torch.Generator().manual_seed(seed)
    nz = torch.randperm(n_in * n_out, generator=g)[:S].sort().values
    return nz // n_in, nz % n_in, g


@pytest.mark.parametrize("K,W,n_in,n_out,S,T", [
    (25, 25, 40, 256, 1024, 100),    # the hidden layer at sparsity 0.9, every tap kept
    (25, 5, 256, 10, 51, 100),       # the readout at 0.98, late in training
    (62, 40, 30, 17, 300, 70),       # Loihi's largest kernel
    (7, 4, 12, 9, 20, 5),            # fewer steps than taps
    (9, 1, 5, 6, 1, 4),              # one synapse, one tap
    (9, 3, 5, 6, 0, 4),              # no synapse
])
def test_compiled_index_is_the_torch_index(built, K, W, n_in, n_out, S, T):
    post, pre, g = _synapses(n_in, n_out, S, K + S)
    torch_plan = build_tap_plan(post, pre, W, n_in, n_out, K, T)
    plan = build_tap_plan(post, pre, W, n_in, n_out, K, T, compiled=True)
    assert plan.compiled and not torch_plan.compiled
    for _ in range(3):     # windows move: both rebuild their columns
        a = torch.randint(0, K - W + 1, (S,), generator=g)
        set_window_starts(torch_plan, a)
        set_window_starts(plan, a)
        for kept in (False, True):
            for x, y in zip(plan.forward_index(kept), torch_plan.forward_index(kept)):
                assert x.dtype == y.dtype and torch.equal(x, y), kept
        for x, y in zip(plan.backward_index(), torch_plan.backward_index()):
            assert x.dtype == y.dtype and torch.equal(x, y)
    if S:
        assert len(plan.forward_index(True)[1]) <= plan.nnz == len(plan.forward_index(False)[1])


@pytest.mark.parametrize("padded", [True, False])
def test_products_bit_for_bit(built, padded):
    """Forward current and the gradients to input and taps: the same floats on both indexes,
    for the features (copied with padding) and the LIF's spikes (used in place)."""
    K, W, n_in, n_out, S, T, B = 25, 7, 40, 64, 300, 50, 8
    post, pre, g = _synapses(n_in, n_out, S, 3)
    a = torch.randint(0, K - W + 1, (S,), generator=g)
    taps0 = torch.randn(S, W, generator=g)
    x0 = (torch.rand(B, n_in, T, generator=g) < 0.3).float()
    if not padded:
        x0 = x0.permute(1, 2, 0).contiguous().permute(2, 0, 1)    # laid out (n_in, T, B)
    gy = torch.randn(B, n_out, T, generator=g)
    out = []
    for compiled in (False, True):
        plan = build_tap_plan(post, pre, W, n_in, n_out, K, T, compiled=compiled)
        set_window_starts(plan, a)
        x, taps = x0.clone().requires_grad_(), taps0.clone().requires_grad_()
        if not padded:
            x = x0.detach().permute(1, 2, 0).contiguous().permute(2, 0, 1).requires_grad_()
        y = sparse_dcls(x, taps, plan)
        out.append((y.detach(), *torch.autograd.grad(y, (x, taps), gy)))
    for u, v in zip(*out):
        assert torch.equal(u, v)
    assert out[0][0].abs().sum() > 0 and out[0][2].abs().sum() > 0


def test_layer_follows_the_lif_kernel_setting(built):
    """A sparse DCLS layer builds its index compiled under "auto" and "cpp", with torch
    operations under "torch"; its training step is the same either way."""
    res = {}
    for setting in ("torch", "auto", "cpp"):
        layer = DelayConnection(40, 64, 25, "dcls", 0.9, torch.Generator().manual_seed(0),
                                dcls_path="auto", dcls_max_density=0.1, index_kernel=setting)
        layer.set_sigma(0.5)
        assert layer.sparse_path
        x = (torch.rand(4, 40, 30, generator=torch.Generator().manual_seed(1)) < 0.3).float()
        y = layer(x)
        y.square().sum().backward()
        assert layer._tap_plan[1].compiled == (setting != "torch")
        res[setting] = (y.detach(), layer.theta.grad, layer.dcls.P.grad)
    for s in ("auto", "cpp"):
        for u, v in zip(res[s], res["torch"]):
            assert torch.equal(u, v), s


def test_settings(monkeypatch, capsys):
    with pytest.raises(ValueError, match="lif_kernel must be one of"):
        tap_index.use_compiled("fast", torch.device("cpu"))
    assert not tap_index.use_compiled("torch", torch.device("cpu"))
    assert not tap_index.use_compiled("auto", torch.device("meta"))
    with pytest.raises(RuntimeError, match="CPU only"):
        tap_index.use_compiled("cpp", torch.device("meta"))
    monkeypatch.setattr(tap_index, "_module", None)
    monkeypatch.setattr(tap_index, "_error", "CalledProcessError: no compiler (test)")
    monkeypatch.setattr(tap_index, "_warned", False)
    with pytest.raises(RuntimeError, match="could not be built"):
        tap_index.use_compiled("cpp", torch.device("cpu"))
    assert not tap_index.use_compiled("auto", torch.device("cpu"))
    assert not tap_index.use_compiled("auto", torch.device("cpu"))
    err = capsys.readouterr().err
    assert err.count("compiled sparse DCLS index is unavailable") == 1, err
