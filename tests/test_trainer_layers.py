"""Delay layers: the kernel formulation equals an explicit per-synapse-delay sum; the DCLS
delay formula matches the dcls package's own Gaussian kernel; exact connection counts."""
import pytest
import torch

from trainer.layers import METHODS, DelayConnection, n_connections


def explicit_sum(x, syn, n_out):
    """I[b, post, t] = sum_syn w * x[b, pre, t - delay] (zero before the start)."""
    B, _, T = x.shape
    out = torch.zeros(B, n_out, T, dtype=torch.float64)
    for p, q, d, w in zip(syn["pre"].tolist(), syn["post"].tolist(), syn["delay"].tolist(),
                          syn["weight"].tolist()):
        out[:, q, d:] += w * x[:, p, :T - d].double()
    return out


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("sparsity", [0.0, 0.8])
def test_hard_forward_equals_per_synapse_sum(method, sparsity):
    g = torch.Generator().manual_seed(3)
    layer = DelayConnection(12, 5, 7, method, sparsity, g)
    if method == "dcls":
        with torch.no_grad():   # spread positions over the whole range, incl. both limits
            layer.dcls.P.uniform_(-4, 4)
        layer.clamp_positions()
    x = torch.rand(2, 12, 30, generator=g)
    syn = layer.synapses()
    assert syn["delay"].min() >= 0 and syn["delay"].max() <= 6
    assert len(syn["pre"]) == layer.connections()
    if method == "no-delay":
        assert syn["delay"].eq(0).all()
    else:
        assert len(set(syn["delay"].tolist())) > 3
    got = layer(x, hard=True).double()
    assert torch.allclose(got, explicit_sum(x, syn, 5), atol=1e-5)


def test_dcls_delay_formula_matches_package_kernel():
    """delay = (K-1) - (round(P) + K//2): the dcls Gaussian kernel at its narrowest peaks at
    tap K-1-delay, and with rounded positions it equals the hard kernel to 0.22 % (the tails at width 0.27)."""
    for K in (25, 8):
        layer = DelayConnection(9, 11, K, "dcls", 0.0, torch.Generator().manual_seed(K))
        layer.set_sigma(0.0)
        soft = layer.kernel(hard=False).detach()
        delay = layer.integer_delays()
        assert torch.equal(soft.abs().argmax(-1), (K - 1) - delay)
        with torch.no_grad():
            layer.dcls.P.round_()
        soft, hard = layer.kernel(False).detach(), layer.kernel(True).detach()
        assert torch.allclose(soft, hard, atol=2.2e-3 * layer.dcls_weight_bound())


def test_dcls_even_kernel_positions_stay_inside():
    layer = DelayConnection(3, 4, 8, "dcls", 0.0, torch.Generator().manual_seed(0))
    with torch.no_grad():
        layer.dcls.P.fill_(100.0)
    layer.clamp_positions()
    assert layer.integer_delays().eq(0).all()
    with torch.no_grad():
        layer.dcls.P.fill_(-100.0)
    layer.clamp_positions()
    assert layer.integer_delays().eq(7).all()


@pytest.mark.parametrize("method,n_cand", [("structure", 200), ("structure-multi", 200 * 5),
                                           ("dcls", 200), ("no-delay", 200)])
def test_exact_connection_count(method, n_cand):
    for s in (0.0, 0.5, 0.9, 0.999):
        layer = DelayConnection(20, 10, 5, method, s, torch.Generator().manual_seed(1))
        assert layer.connections() == n_connections(n_cand, s) == max(1, round((1 - s) * n_cand))
        if s > 0:
            w = layer.effective_weight().detach()
            assert w[~layer.mask].eq(0).all() and w[layer.mask].ne(0).all()


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown method 'gauss'; choose one of dcls"):
        DelayConnection(2, 2, 3, "gauss", 0.0, torch.Generator())


def test_dale_gives_each_presynaptic_neuron_one_sign():
    layer = DelayConnection(30, 20, 5, "structure", 0.5, torch.Generator().manual_seed(4), dale=True)
    sign = layer.sign
    assert torch.equal(sign, sign[:1].expand_as(sign))          # constant over post
    assert set(sign[0].tolist()) == {-1.0, 1.0}
    syn = layer.synapses()
    for p in range(30):
        w = syn["weight"][syn["pre"] == p]
        assert (w >= 0).all() or (w <= 0).all()


def test_l1_is_sum_of_absolute_weights_of_existing_connections():
    for s in (0.0, 0.7):
        layer = DelayConnection(8, 6, 5, "structure-multi", s, torch.Generator().manual_seed(5))
        assert torch.isclose(layer.l1(), layer.synapses()["weight"].abs().sum())
