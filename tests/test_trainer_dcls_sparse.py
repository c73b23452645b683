"""Truncated DCLS kernels (trainer.dcls_taps) on the sparse path (trainer.sparse_dcls) and the
dense delay convolution (trainer.delay_conv): the same currents and gradients as the dcls
package's dense kernel on the same taps, the truncation bound, the path choice."""
import pytest
import torch
import torch.nn.functional as F

from trainer.dcls_taps import omitted_mass, window, window_mask, window_starts
from trainer.delay_conv import OutputSideConv, delay_conv
from trainer.layers import DelayConnection


def _layer(n_in, n_out, K, sparsity, sigma, max_density, seed=0, path="auto"):
    layer = DelayConnection(n_in, n_out, K, "dcls", sparsity, torch.Generator().manual_seed(seed),
                            dcls_path=path, dcls_max_density=max_density).double()
    layer.set_sigma(sigma)
    with torch.no_grad():    # distinct widths per synapse; the window follows the widest
        layer.dcls.SIG.add_(0.05 * torch.rand(layer.dcls.SIG.shape, dtype=torch.float64,
                                              generator=torch.Generator().manual_seed(seed)))
    layer.dcls.SIG.requires_grad_(True)
    return layer


def _reference(layer, x, gy):
    """The dcls package's dense kernel, restricted to the layer's kept taps, through conv1d."""
    K = layer.K
    W, R = layer.dcls_window()
    keep = window_mask(window_starts(layer.dcls.P[0, :, :, 0] + K // 2, R, W, K), W, K)
    w = layer.effective_weight()
    kernel = layer.dcls.DCK(w.unsqueeze(-1), layer.dcls.P, layer.dcls.SIG) * keep
    y = F.conv1d(F.pad(x, (K - 1, 0)), kernel)
    return y, torch.autograd.grad(y, (x, layer.theta, layer.dcls.P, layer.dcls.SIG), gy)


@pytest.mark.parametrize("K,sigma,sparsity,n_in,n_out,B,T", [
    (7, 0.05, 0.8, 12, 9, 3, 11),       # W = 4 of 7 taps
    (25, 0.0, 0.9, 40, 33, 2, 30),      # the end of training: W = 4 of 25
    (25, 12.5, 0.9, 40, 33, 2, 30),     # the start: every tap
    (25, 1.0, 0.7, 20, 5, 1, 40),       # batch 1, readout-like shape
    (62, 0.3, 0.95, 30, 17, 2, 70),     # Loihi's largest kernel
    (62, 31.0, 0.95, 30, 17, 2, 70),
])
def test_sparse_path_equals_dense_kernel_on_the_same_taps(K, sigma, sparsity, n_in, n_out, B, T):
    layer = _layer(n_in, n_out, K, sparsity, sigma, max_density=1.0)
    assert layer.sparse_path
    W, _ = layer.dcls_window()
    assert (W < K) == (sigma < 5)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(B, n_in, T, generator=g, dtype=torch.float64).requires_grad_()
    gy = torch.randn(B, n_out, T, generator=g, dtype=torch.float64)
    y = layer(x)
    got = torch.autograd.grad(y, (x, layer.theta, layer.dcls.P, layer.dcls.SIG), gy)
    ref_y, ref = _reference(layer, x, gy)
    assert torch.allclose(y, ref_y, rtol=1e-12, atol=1e-12)
    mask = layer.mask
    for name, a, b in zip(("x", "theta", "P", "SIG"), got, ref):
        if name == "theta":       # unconnected candidates: RigL's score, see the next test
            a, b = a * mask, b * mask
        scale = float(b.abs().max())
        assert scale > 0, name
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12 * scale), name


@pytest.mark.parametrize("sigma,n_in,n_out", [(0.1, 30, 20), (4.0, 30, 20),   # by output
                                               (0.1, 20, 30), (4.0, 20, 30)])
def test_rigl_candidate_gradient_equals_the_dense_kernels(sigma, n_in, n_out):
    """dL/dtheta at every candidate (RigL's regrowth score) on the sparse path equals
    theta.grad of the same truncated kernels run densely, with fewer outputs than inputs
    (candidate_grad_by_output) and more."""
    layers = [_layer(n_in, n_out, 25, 0.9, sigma, max_density=d, seed=3) for d in (1.0, 0.0)]
    assert [c.sparse_path for c in layers] == [True, False]
    x = torch.rand(4, n_in, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    gy = torch.randn(4, n_out, 40, dtype=torch.float64,
                     generator=torch.Generator().manual_seed(4))
    for c in layers:
        c.want_candidate_grad(True)
        torch.autograd.backward(c(x), gy)
    sparse, dense = (c.candidate_grad() for c in layers)
    assert dense.abs().max() > 0 and (dense * ~layers[0].mask).abs().max() > 0
    assert torch.allclose(sparse, dense, rtol=1e-10, atol=1e-12)


def test_truncation_leaves_out_less_than_float32_rounding():
    """The taps the rule leaves out hold < 2^-24 of a synapse's weight, for every width the
    dcls package allows (s >= 0.27) and every centre in the kernel."""
    for K in (7, 25, 62):
        c = torch.linspace(0, K - 1, 2001, dtype=torch.float64)
        s = torch.cat([torch.linspace(0.27, 3, 300, dtype=torch.float64),
                       torch.linspace(3, K, 60, dtype=torch.float64)])
        m = omitted_mass(c.expand(len(s), -1), s.unsqueeze(1).expand(-1, len(c)), K)
        assert float(m.max()) < 2 ** -24, K
        assert float(m.max()) > 0     # the rule does leave taps out


def test_truncated_kernels_equal_full_dcls_kernels_within_the_bound():
    """dcls_path "auto" against the earlier "dense" path (the dcls package's kernels over all
    K taps): currents differ by less than 2^-24 of the input-weighted weights."""
    for sigma in (0.0, 0.23, 1.0, 12.5):
        auto = _layer(40, 30, 25, 0.9, sigma, max_density=1.0, seed=5)
        dense = _layer(40, 30, 25, 0.9, sigma, max_density=1.0, seed=5, path="dense")
        assert not dense.sparse_path
        x = torch.rand(2, 40, 50, dtype=torch.float64)
        bound = float(auto.effective_weight().detach().abs().sum(1).max()) * 2 ** -24
        assert float((auto(x) - dense(x)).detach().abs().max()) < bound


def test_kept_taps_shrink_with_sigma_and_choose_the_path():
    """W follows the schedule's sigma (all 25 taps at K/2, 4 at the end); the sparse path runs
    while the tap density is at most dcls_max_density, and RigL's auto interval follows it."""
    from trainer.train import RewireSchedule
    layer = DelayConnection(40, 256, 25, "dcls", 0.9, torch.Generator().manual_seed(0),
                            dcls_path="auto", dcls_max_density=0.05)
    sched = RewireSchedule(total_steps=100, interval=0)
    seen = {}
    for sigma in (12.5, 1.0, 0.23, 0.0):
        layer.set_sigma(sigma)
        W = layer.dcls_window()[0]
        seen[sigma] = (W, layer.sparse_path, sched.layer_interval(layer))
        if layer.sparse_path:
            x = torch.rand(2, 40, 30)
            layer(x)
            assert layer.dcls_plan(30, W)[1].nnz == 30 * layer.connections() * W
    assert seen == {12.5: (25, False, 1), 1.0: (16, False, 1), 0.23: (7, True, 10),
                    0.0: (4, True, 10)}
    assert window(0.27, 25)[0] == 4 and window(2.5, 25)[0] == 25


def test_dense_path_is_the_earlier_code():
    """dcls_path "dense" runs the dcls package's kernel through conv1d, bit for bit."""
    layer = DelayConnection(12, 7, 9, "dcls", 0.5, torch.Generator().manual_seed(1),
                            dcls_path="dense", dcls_max_density=1.0)
    layer.set_sigma(0.4)
    x = torch.rand(3, 12, 20)
    k = layer.dcls.DCK(layer.effective_weight().unsqueeze(-1), layer.dcls.P, layer.dcls.SIG)
    assert not layer.sparse_path
    assert torch.equal(layer(x), F.conv1d(F.pad(x, (8, 0)), k))
    with pytest.raises(ValueError, match="unknown dcls_path 'gauss'; choose one of auto, dense"):
        DelayConnection(3, 2, 5, "dcls", 0.0, torch.Generator(), dcls_path="gauss")


def test_output_side_convolution_equals_conv1d():
    x = torch.rand(3, 12, 9, dtype=torch.float64, requires_grad=True)
    k = torch.rand(4, 12, 11, dtype=torch.float64, requires_grad=True)   # K > T: early taps
    gy = torch.randn(3, 4, 9, dtype=torch.float64)
    y = OutputSideConv.apply(x, k)
    ref = F.conv1d(F.pad(x, (10, 0)), k)
    assert torch.allclose(y, ref, rtol=1e-12, atol=1e-12)
    for a, b in zip(torch.autograd.grad(y, (x, k), gy), torch.autograd.grad(ref, (x, k), gy)):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-12)
    y = delay_conv(x.permute(2, 0, 1).contiguous().permute(1, 2, 0), k)   # time-major input
    assert torch.allclose(y, ref, rtol=1e-12, atol=1e-12) and y.permute(2, 0, 1).is_contiguous()


def test_network_on_the_sparse_path_equals_the_dense_kernel_network():
    """A whole network (BatchNorm over the sparse path's (N, T, B) layout and over the output
    side's (T, B, N) one (24 -> 8), LIF, readout) gives the same output, loss gradients and
    BatchNorm statistics on both DCLS executions."""
    from trainer.config import resolve_config
    from trainer.model import DelaySNN, loss_fn
    cfg = resolve_config(overrides={"method": "dcls", "sparsity": 0.8, "hidden": [24, 8],
                                    "kernel_size": 9, "dropout": 0.0})
    nets = {d: DelaySNN(12, 5, {**cfg, "sparse_max_density_dcls": d}).double()
            for d in (1.0, 0.0)}
    g = torch.Generator().manual_seed(0)
    x = torch.rand(7, 60, 12, generator=g, dtype=torch.float64)
    y = torch.randint(0, 5, (7,), generator=g)
    got = {}
    for d, net in nets.items():
        net.set_sigma(0.2)
        assert [c.sparse_path for c in net.connections] == [d == 1.0] * 3
        v = net(x)
        loss_fn(v, y).backward()
        grads = [c.theta.grad * c.mask for c in net.connections]    # existing synapses
        stats = [t for n in net.norms for t in (n.running_mean, n.running_var)]
        got[d] = [v.detach(), *stats, *grads] + [
            p.grad for n, p in net.named_parameters() if not n.endswith("theta")
            and p.grad is not None]
    assert len(got[1.0]) == len(got[0.0]) == 15     # + positions, BatchNorm weights and biases
    for a, b in zip(got[1.0], got[0.0]):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)


def test_config_dcls_path_is_checked():
    from trainer.config import resolve_config
    from trainer.model import DelaySNN
    with pytest.raises(ValueError, match="dcls_path must be one of auto, dense, got 'sparse'"):
        resolve_config(overrides={"dcls_path": "sparse"})
    cfg = resolve_config(overrides={"method": "dcls", "sparsity": 0.98})
    assert cfg["dcls_path"] == "auto"
    net = DelaySNN(40, 10, cfg)
    net.set_sigma(0.0)
    assert [c.sparse_path for c in net.connections] == [True, True]
    old = dict(cfg)
    del old["dcls_path"], old["sparse_max_density_dcls"]    # a config from before the keys
    net = DelaySNN(40, 10, old)
    assert [c.dcls_path for c in net.connections] == ["auto", "auto"]


@pytest.mark.cuda
@pytest.mark.parametrize("sigma", [0.0, 12.5])
def test_sparse_path_on_cuda(cuda_device, sigma):
    layer = _layer(40, 33, 25, 0.9, sigma, max_density=1.0)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, 40, 50, generator=g, dtype=torch.float64).requires_grad_()
    gy = torch.randn(3, 33, 50, generator=g, dtype=torch.float64)
    ref_y, ref = _reference(layer, x, gy)
    layer.want_candidate_grad(True)
    y = layer(x)
    ref_cand = None
    torch.autograd.backward(y, gy)
    ref_cand = layer.candidate_grad()
    layer = layer.to(cuda_device)
    layer.zero_grad()
    xc = x.detach().to(cuda_device).requires_grad_()
    layer.want_candidate_grad(True)
    yc = layer(xc)
    assert yc.is_cuda and layer.sparse_path
    got = torch.autograd.grad(yc, (xc, layer.theta, layer.dcls.P, layer.dcls.SIG),
                              gy.to(cuda_device), retain_graph=True)
    torch.autograd.backward(yc, gy.to(cuda_device))
    assert torch.allclose(yc.cpu(), ref_y, rtol=1e-10, atol=1e-12)
    mask = layer.mask.cpu()
    for name, a, b in zip(("x", "theta", "P", "SIG"), got, ref):
        a = a.cpu()
        if name == "theta":
            a, b = a * mask, b * mask
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-11 * float(b.abs().max())), name
    assert torch.allclose(layer.candidate_grad().cpu(), ref_cand, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("group_bytes", [1, 8 << 10, 64 << 20])
@pytest.mark.parametrize("K,T", [(25, 40), (9, 5)])          # and more taps than steps
def test_candidate_gradient_by_output_equals_the_one_by_delay(monkeypatch, group_bytes, K, T):
    """candidate_grad_by_output (dL/dI shifted, delays in groups) equals
    trainer.sparse_delay.candidate_grad (the input shifted, one product per delay)."""
    from trainer import sparse_dcls
    from trainer.sparse_delay import _pad_steps, candidate_grad

    monkeypatch.setattr(sparse_dcls, "CANDIDATE_GROUP_BYTES", group_bytes)
    g = torch.Generator().manual_seed(K)
    n_out, n_in, B = 3, 7, 4
    gI = torch.randn(n_out, T, B, generator=g, dtype=torch.float64)
    x = torch.rand(n_in, T, B, generator=g, dtype=torch.float64)
    ref = candidate_grad(gI.view(n_out, T * B), _pad_steps(x, K - 1, 0), K, T)
    got = sparse_dcls.candidate_grad_by_output(gI, x.view(n_in, T * B), K)
    assert got.shape == ref.shape == (n_out, n_in, K)
    assert torch.allclose(got, ref, rtol=1e-12, atol=1e-12) and ref.abs().max() > 0
