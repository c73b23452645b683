"""The compiled LIF kernel (trainer.lif_kernel) against the torch-op path it replaces."""
from __future__ import annotations

import pytest
import torch

from trainer import lif_kernel
from trainer.config import resolve_config
from trainer.neurons import lif_sequence, lif_sequence_reference


@pytest.fixture(scope="module")
def built():
    why = lif_kernel.unavailable_reason()
    if why is not None:
        pytest.skip(f"the LIF kernel does not build here: {why}")


def _layouts(T=37, B=6, N=11, seed=0):
    """(name, leaf tensor, its (T, B, N) view) for the layouts the model produces and one other."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(N, T, B, generator=g) * 0.8 + 0.3
    return [("(N, T, B) memory", base.clone(), lambda x: x.permute(1, 2, 0)),
            ("(T, B, N) memory", base.permute(1, 2, 0).contiguous(), lambda x: x),
            ("(B, T, N) memory", base.permute(2, 1, 0).contiguous(), lambda x: x.permute(1, 0, 2))]


@pytest.mark.parametrize("threads", [1, 2])
def test_kernel_equals_torch_path(built, threads):
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for name, leaf, view in _layouts():
            out = {}
            for kernel in ("torch", "cpp"):
                x = leaf.clone().requires_grad_(True)
                y = lif_sequence(view(x), 0.9, 1.0, 5.0, kernel)
                gy = torch.empty_like(y).copy_(  # the same values, in y's layout
                    torch.randn(y.shape, generator=torch.Generator().manual_seed(1)))
                y.backward(gy)
                out[kernel] = (y.detach(), x.grad)
            assert out["cpp"][0].shape == out["torch"][0].shape
            assert torch.equal(out["cpp"][0], out["torch"][0]), name
            assert 0 < out["cpp"][0].sum() < out["cpp"][0].numel(), "no spikes or all spikes"
            torch.testing.assert_close(out["cpp"][1], out["torch"][1], rtol=1e-5, atol=1e-6,
                                       msg=name)
    finally:
        torch.set_num_threads(old)


def test_kernel_equals_autograd_reference(built):
    x = (torch.randn(20, 3, 5, generator=torch.Generator().manual_seed(2)) + 0.4)
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ya, yb = lif_sequence(a, 0.85, 1.0, 5.0, "cpp"), lif_sequence_reference(b, 0.85, 1.0, 5.0)
    assert torch.equal(ya, yb)
    g = torch.randn_like(ya)
    ya.backward(g)
    yb.backward(g)
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-6)


def test_kernel_without_gradient_and_long_rows(built):
    """No slope when no gradient is needed; rows longer than one work chunk (Q > 4096)."""
    x = torch.randn(5, 3, 3000, generator=torch.Generator().manual_seed(3)) + 0.5
    with torch.no_grad():
        assert torch.equal(lif_sequence(x, 0.9, 1.0, 5.0, "cpp"),
                           lif_sequence(x, 0.9, 1.0, 5.0, "torch"))


def test_settings_and_errors(built):
    x64 = torch.randn(4, 2, 3, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="float32 CPU tensors only"):
        lif_sequence(x64, 0.9, 1.0, 5.0, "cpp")
    # auto: float64 runs the torch path by design
    assert torch.equal(lif_sequence(x64, 0.9, 1.0, 5.0, "auto"),
                       lif_sequence(x64, 0.9, 1.0, 5.0, "torch"))
    with pytest.raises(ValueError, match="lif_kernel must be one of"):
        lif_sequence(x64.float(), 0.9, 1.0, 5.0, "fast")
    with pytest.raises(ValueError, match="lif_kernel must be one of"):
        resolve_config(sets=["lif_kernel=fast"])
    assert resolve_config(sets=["lif_kernel=torch"])["lif_kernel"] == "torch"


def test_unavailable_kernel_is_said_once(monkeypatch, capsys):
    monkeypatch.setattr(lif_kernel, "_module", None)
    monkeypatch.setattr(lif_kernel, "_error", "CalledProcessError: no compiler (test)")
    monkeypatch.setattr(lif_kernel, "_warned", False)
    x = torch.randn(6, 2, 3) + 0.5
    y1 = lif_sequence(x, 0.9, 1.0, 5.0, "auto")
    y2 = lif_sequence(x, 0.9, 1.0, 5.0, "auto")
    err = capsys.readouterr().err
    assert err.count("the compiled LIF kernel is unavailable (CalledProcessError: no compiler") == 1
    assert torch.equal(y1, y2) and torch.equal(y1, lif_sequence(x, 0.9, 1.0, 5.0, "torch"))
    with pytest.raises(RuntimeError, match="could not be built"):
        lif_sequence(x, 0.9, 1.0, 5.0, "cpp")


@pytest.mark.parametrize("sets", [
    ["method=dcls", "sparsity=0.9"],                  # sparse path: (N, T, B) memory
    ["method=dcls", "sparsity=0.0"],                  # dense kernels: (T, B, N) memory
    ["method=structure", "sparsity=0.9", "sparse_max_density=1.0"],
    ["method=no-delay", "sparsity=0.0", "hidden=[24, 16]"]])
def test_training_step_same_on_both_kernels(built, monkeypatch, sets):
    """Two training-mode forward/backward passes of a small model: the kernel with BatchNorm
    folded in (BatchNormLIFKernel) gives the torch path's loss, gradients and BatchNorm
    running statistics, up to float rounding; the fused pass really ran."""
    from trainer.model import DelaySNN

    calls = []
    forward = lif_kernel.BatchNormLIFKernel.forward
    monkeypatch.setattr(lif_kernel.BatchNormLIFKernel, "forward",
                        staticmethod(lambda *a: (calls.append(1), forward(*a))[1]))

    def run(kernel):
        cfg = resolve_config(sets=[f"lif_kernel={kernel}", "hidden=[24]", "kernel_size=7",
                                   "dropout=0.0", *sets])
        torch.manual_seed(0)
        model = DelaySNN(8, 3, cfg).train()
        losses = []
        for k in range(2):
            x = torch.rand(6, 30, 8, generator=torch.Generator().manual_seed(5 + k))
            loss = model(x).square().mean()
            loss.backward()
            losses.append(loss.detach())
        grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
        return torch.stack(losses), grads, dict(model.named_buffers())

    (la, ga, ba), (lb, gb, bb) = run("torch"), run("cpp")
    assert len(calls) == 2 * len(resolve_config(sets=sets)["hidden"])
    torch.testing.assert_close(la, lb, rtol=1e-6, atol=1e-7)
    assert ga.keys() == gb.keys() and any("norms" in k for k in ga)
    for k in ga:
        scale = ga[k].abs().max().clamp_min(1e-12)
        assert ((ga[k] - gb[k]).abs().max() / scale) < 1e-4, k
    for k in ba:
        torch.testing.assert_close(ba[k], bb[k], rtol=1e-5, atol=1e-6, msg=k)


def test_batchnorm_not_folded_where_it_does_not_apply(built):
    """Eval mode (running statistics), the torch setting and float64 keep the usual path."""
    from trainer.lif_kernel import batchnorm_lif
    from trainer.neurons import LIF

    norm, x = torch.nn.BatchNorm1d(5), torch.rand(3, 5, 9)
    assert batchnorm_lif(norm, LIF(10.0, kernel="cpp"), x) is not None
    assert batchnorm_lif(norm, LIF(10.0, kernel="torch"), x) is None
    assert batchnorm_lif(norm.double(), LIF(10.0, kernel="auto"), x.double()) is None
    assert batchnorm_lif(norm.float().eval(), LIF(10.0, kernel="cpp"), x) is None
    assert batchnorm_lif(torch.nn.Identity(), LIF(10.0, kernel="cpp"), x) is None


@pytest.mark.parametrize("P,T,Q,n_ch", [(11, 37, 600, 11),   # (N, T, B) memory, 2 sub-blocks
                                        (1, 30, 6 * 700, 6)])  # (T, B, N) memory
def test_batchnorm_backward_recomputes_the_same_floats(built, P, T, Q, n_ch):
    """bn_lif_backward (membrane recomputed from the current) gives bit for bit what
    lif_backward gives on the spikes and slopes the forward kernel would keep."""
    g = torch.Generator().manual_seed(P + T)
    x = torch.randn(P, T, Q, generator=g) * 0.8 + 0.3
    a, b = torch.rand(n_ch, generator=g) + 0.5, torch.randn(n_ch, generator=g) * 0.2
    grad = torch.randn(P, T, Q, generator=g)
    m = lif_kernel._module
    spikes, slope = m.lif_forward(x, P, T, Q, 0.9, 1.0, 5.0, True, a, b)
    assert 0 < spikes.sum() < spikes.numel()
    kept = m.lif_backward(grad, spikes, slope, P, T, Q, 0.9, x, n_ch)
    none = lif_kernel._NONE
    recomputed = m.bn_lif_backward(grad, x, a, b, P, T, Q, 0.9, 1.0, 5.0, False, none, none, 1.0)
    for u, v in zip(kept, recomputed):
        assert torch.equal(u, v)
    if n_ch == P:   # (N, T, B) memory: BatchNorm's gradient applied in the kernel, the same floats
        mean, invstd = torch.randn(n_ch, generator=g), torch.rand(n_ch, generator=g) + 0.5
        n = x.numel() / n_ch
        dI, s1, s2 = (t.clone() for t in recomputed)
        m64, i64, a64 = mean.double(), invstd.double(), a.double()
        k = -a64 * i64 * (i64 * (s2 - m64 * s1)) / n
        mm = -a64 * s1 / n - k * m64
        m.affine_combine(dI, x, a, k.float().contiguous(), mm.float().contiguous(), P, T, Q)
        fused = m.bn_lif_backward(grad, x, a, b, P, T, Q, 0.9, 1.0, 5.0, True, mean, invstd, n)
        assert torch.equal(fused[0], dI) and not torch.equal(dI, recomputed[0])
        assert torch.equal(fused[1], s1) and torch.equal(fused[2], s2)


@pytest.mark.parametrize("threads", [1, 2])
def test_li_kernel_is_the_torch_path_bit_for_bit(built, threads):
    """The readout's leaky integrator: membrane and gradient, the same floats in every layout."""
    from trainer.neurons import li_sequence
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for name, leaf, view in _layouts(T=23, B=5, N=9, seed=3):
            out = {}
            for kernel in ("torch", "cpp"):
                x = leaf.clone().requires_grad_(True)
                y = li_sequence(view(x), 0.9, kernel)
                gy = torch.empty_like(y).copy_(
                    torch.randn(y.shape, generator=torch.Generator().manual_seed(4)))
                y.backward(gy)
                out[kernel] = (y.detach(), x.grad)
            assert out["cpp"][0].stride() == out["torch"][0].stride(), name
            for u, v in zip(out["cpp"], out["torch"]):
                assert torch.equal(u, v), name
    finally:
        torch.set_num_threads(old)
