"""Neuron arithmetic: pure step functions (state in, state out) and fast sequence wrappers.

Units: time in steps (one step = one input frame, 10 ms for the audio datasets); membrane
potential and currents in threshold units (threshold 1 by default).

Semantics (the ones export reproduces in integers, docs/design.md section 2), per step t:
    v = decay * v + I[t]          # leak, then integrate
    spike = v > threshold         # strict, as Lava's fixed_pt LIF
    v = 0 where spike             # hard reset (detached from the gradient)
The readout (leaky integrator) is the same without spiking. ``decay = 1 - dv / 4096`` with
``dv = round(4096 / tau)``, the 12-bit value Lava's LIF can represent exactly.

The step functions take the arithmetic as arguments only through plain values, so a fixed-point
emulator can keep the same structure (state in, state out) with integer operations.
"""
from __future__ import annotations

import math

import torch

DV_BITS = 12
DV_SCALE = 1 << DV_BITS  # 4096


def decay_from_tau(tau: float) -> tuple[int, float]:
    """Return (dv, decay) for a membrane time constant ``tau`` in steps.

    dv = round(4096 / tau) is Lava's 12-bit voltage decay; decay = 1 - dv / 4096 is the exact
    per-step multiplier. Raises ValueError when tau gives dv outside 1..4095.
    """
    if not (isinstance(tau, (int, float)) and math.isfinite(tau) and tau > 0):
        raise ValueError(f"tau must be a positive number of steps, got {tau!r}")
    dv = int(round(DV_SCALE / tau))
    if not 1 <= dv <= DV_SCALE - 1:
        raise ValueError(
            f"tau = {tau} steps gives dv = {dv}, outside Lava's 12-bit range 1..4095; "
            f"use tau between {DV_SCALE / 4095:.4f} and {2 * DV_SCALE:.0f} steps")
    return dv, 1.0 - dv / DV_SCALE


def atan_surrogate(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """Derivative of the ATan surrogate: alpha/2 / (1 + (pi/2 * alpha * x)^2)."""
    return (alpha / 2) / (1 + (math.pi / 2 * alpha * x) ** 2)


class SpikeFn(torch.autograd.Function):
    """Heaviside(x > 0) forward, ATan surrogate backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * atan_surrogate(x, ctx.alpha), None


def lif_step(v, current, decay: float, threshold: float, alpha: float = 5.0):
    """One LIF step, pure: returns (v_next, spike). Differentiable through the surrogate;
    the reset is detached."""
    v = decay * v + current
    spike = SpikeFn.apply(v - threshold, alpha)
    v = v * (1.0 - spike.detach())
    return v, spike


def li_step(v, current, decay: float):
    """One leaky-integrator step (the readout), pure: returns v_next."""
    return decay * v + current


def lif_sequence_reference(current: torch.Tensor, decay: float, threshold: float,
                           alpha: float = 5.0) -> torch.Tensor:
    """LIF over time by plain autograd through ``lif_step``. current (T, ...) -> spikes (T, ...).
    Slow; the reference that ``lif_sequence`` is tested against."""
    v = torch.zeros_like(current[0])
    spikes = []
    for t in range(current.shape[0]):
        v, s = lif_step(v, current[t], decay, threshold, alpha)
        spikes.append(s)
    return torch.stack(spikes)


class _LIFSequence(torch.autograd.Function):
    """LIF over a whole sequence with a hand-written backward (same gradient as autograd
    through ``lif_step``, about 5x faster on CPU)."""

    @staticmethod
    def forward(ctx, current, decay, threshold, alpha):
        with torch.no_grad():
            v = torch.zeros_like(current[0])
            pre = torch.empty_like(current)      # membrane before spike/reset
            spikes = torch.empty_like(current)
            for t in range(current.shape[0]):
                u = decay * v + current[t]
                s = (u > threshold).to(current.dtype)
                pre[t] = u
                spikes[t] = s
                v = u * (1.0 - s)
        ctx.save_for_backward(pre, spikes)
        ctx.decay, ctx.threshold, ctx.alpha = decay, threshold, alpha
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes):
        pre, spikes = ctx.saved_tensors
        direct = grad_spikes * atan_surrogate(pre - ctx.threshold, ctx.alpha)
        keep = 1.0 - spikes
        grad_current = torch.empty_like(pre)
        g_v = torch.zeros_like(pre[0])           # dL/dv after reset at step t
        for t in range(pre.shape[0] - 1, -1, -1):
            g_u = torch.addcmul(direct[t], g_v, keep[t])
            grad_current[t] = g_u
            g_v = ctx.decay * g_u
        return grad_current, None, None, None


def lif_sequence(current: torch.Tensor, decay: float, threshold: float,
                 alpha: float = 5.0) -> torch.Tensor:
    """LIF over time: current (T, ...) -> spikes (T, ...) in {0, 1}, zero initial state."""
    return _LIFSequence.apply(current, decay, threshold, alpha)


class _LISequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, current, decay):
        with torch.no_grad():
            out = torch.empty_like(current)
            v = torch.zeros_like(current[0])
            for t in range(current.shape[0]):
                v = li_step(v, current[t], decay)
                out[t] = v
        ctx.decay = decay
        return out

    @staticmethod
    def backward(ctx, grad_v):
        grad_current = torch.empty_like(grad_v)
        g = torch.zeros_like(grad_v[0])
        for t in range(grad_v.shape[0] - 1, -1, -1):
            g = grad_v[t] + ctx.decay * g
            grad_current[t] = g
        return grad_current, None


def li_sequence(current: torch.Tensor, decay: float) -> torch.Tensor:
    """Leaky integrator over time: current (T, ...) -> membrane (T, ...), zero initial state."""
    return _LISequence.apply(current, decay)


class LIF(torch.nn.Module):
    """Thin module around ``lif_sequence``; input/output (B, N, T)."""

    def __init__(self, tau: float, threshold: float = 1.0, alpha: float = 5.0):
        super().__init__()
        self.dv, self.decay = decay_from_tau(tau)
        self.threshold, self.alpha = float(threshold), float(alpha)

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        spikes = lif_sequence(current.permute(2, 0, 1).contiguous(), self.decay,
                              self.threshold, self.alpha)
        return spikes.permute(1, 2, 0)


class LI(torch.nn.Module):
    """Thin module around ``li_sequence``; input/output (B, N, T)."""

    def __init__(self, tau: float):
        super().__init__()
        self.dv, self.decay = decay_from_tau(tau)

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        return li_sequence(current.permute(2, 0, 1).contiguous(), self.decay).permute(1, 2, 0)
