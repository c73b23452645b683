"""LIF / LI arithmetic: Lava-representable decay, strict threshold, detached hard reset, and the
hand-written sequence backward against autograd through the pure step functions."""
import pytest
import torch

from trainer.neurons import (LI, LIF, decay_from_tau, li_sequence, li_step, lif_sequence,
                             lif_sequence_reference)


def test_decay_is_lava_12_bit():
    dv, decay = decay_from_tau(10.05)
    assert dv == 408 and decay == 1 - 408 / 4096
    assert decay_from_tau(2.0) == (2048, 0.5)
    with pytest.raises(ValueError, match="positive number of steps"):
        decay_from_tau(0)
    with pytest.raises(ValueError, match="outside Lava's 12-bit range"):
        decay_from_tau(1e6)


def test_threshold_is_strict_and_reset_is_hard():
    # step 0: v = 1.0 (not > 1, no spike); step 1: v = 0.5*1 + 1 = 1.5 -> spike, v = 0;
    # step 2: v = 0 + 0.25 (the reset really zeroed v)
    current = torch.tensor([[1.0], [1.0], [0.25], [0.9]])
    spikes = lif_sequence(current, decay=0.5, threshold=1.0)
    assert spikes[:, 0].tolist() == [0.0, 1.0, 0.0, 1.0]   # 0.125 + 0.9 = 1.025 > 1


def test_sequence_matches_step_function_and_its_gradient():
    g = torch.Generator().manual_seed(1)
    current = (torch.randn(30, 4, 7, generator=g) * 0.8 + 0.3).requires_grad_(True)
    ref_in = current.detach().clone().requires_grad_(True)
    weights = torch.randn(30, 4, 7, generator=g)
    fast = lif_sequence(current, 0.9, 1.0, 5.0)
    ref = lif_sequence_reference(ref_in, 0.9, 1.0, 5.0)
    assert torch.equal(fast, ref) and fast.sum() > 10
    (fast * weights).sum().backward()
    (ref * weights).sum().backward()
    assert torch.allclose(current.grad, ref_in.grad, rtol=1e-5, atol=1e-6)
    assert current.grad.abs().sum() > 0


def test_leaky_integrator_and_gradient():
    g = torch.Generator().manual_seed(2)
    current = torch.randn(20, 3, 5, generator=g, requires_grad=True)
    out = li_sequence(current, 0.75)
    v, ref = torch.zeros(3, 5), []
    for t in range(20):
        v = li_step(v, current[t], 0.75)
        ref.append(v)
    ref = torch.stack(ref)
    assert torch.allclose(out, ref, atol=1e-6)
    w = torch.randn(20, 3, 5, generator=g)
    (grad_fast,) = torch.autograd.grad((out * w).sum(), current)
    (grad_ref,) = torch.autograd.grad((ref * w).sum(), current)
    assert torch.allclose(grad_fast, grad_ref, atol=1e-5)


def test_modules_take_batch_neuron_time():
    x = torch.rand(2, 3, 40, generator=torch.Generator().manual_seed(6)) * 0.6
    assert LIF(10.05)(x).shape == (2, 3, 40)
    assert LI(10.05)(x).shape == (2, 3, 40)
    assert torch.equal(LIF(10.05)(x)[1], lif_sequence(x.permute(2, 0, 1), LIF(10.05).decay, 1.0)
                       .permute(1, 2, 0)[1])


@pytest.mark.parametrize("layout", ["tbn", "ntb", "bnt"])
def test_sequence_in_any_memory_layout_equals_reference(layout):
    """lif_sequence works in its input's memory layout (no transposed copy): on a (T, B, N) view
    of (N, T, B) or (B, N, T) memory the spikes are bit-identical to the step-function
    reference, the gradient matches it and comes back in the input's layout."""
    g = torch.Generator().manual_seed(3)
    T, B, N = 40, 5, 6
    base = torch.randn(T, B, N, generator=g) * 0.8 + 0.3
    current = {"tbn": base.clone(), "ntb": base.permute(2, 0, 1).contiguous().permute(1, 2, 0),
               "bnt": base.permute(1, 2, 0).contiguous().permute(2, 0, 1)}[layout]
    assert torch.equal(current, base)
    current.requires_grad_(True)
    ref_in = base.clone().requires_grad_(True)
    weights = torch.randn(T, B, N, generator=g).permute(2, 0, 1).contiguous().permute(1, 2, 0)
    fast = lif_sequence(current, 0.9, 1.0, 5.0)
    ref = lif_sequence_reference(ref_in, 0.9, 1.0, 5.0)
    assert torch.equal(fast, ref) and fast.sum() > 20
    assert fast.stride() == current.stride()
    (fast * weights).sum().backward()
    (ref * weights).sum().backward()
    assert current.grad.stride() == current.stride()
    assert torch.allclose(current.grad, ref_in.grad, rtol=1e-5, atol=1e-6)


def test_sequence_without_gradient_is_the_same():
    current = torch.rand(30, 4, 7, generator=torch.Generator().manual_seed(4)) * 0.5
    with torch.no_grad():
        off = lif_sequence(current, 0.9, 1.0)
    assert torch.equal(off, lif_sequence(current.requires_grad_(True), 0.9, 1.0).detach())
    assert not off.requires_grad


def test_modules_keep_a_neuron_time_batch_layout():
    """A (B, N, T) input laid out (N, T, B) in memory (the sparse path's output) is used in
    place: the spikes come back in that layout, equal to those of a contiguous input."""
    x = torch.rand(3, 5, 50, generator=torch.Generator().manual_seed(7)) * 0.6
    ntb = x.permute(1, 2, 0).contiguous().permute(2, 0, 1)
    lif = LIF(10.05)
    out = lif(ntb)
    assert out.permute(1, 2, 0).is_contiguous()
    assert torch.equal(out, lif(x)) and out.sum() > 0
    assert torch.allclose(LI(10.05)(ntb), LI(10.05)(x), atol=1e-6)
