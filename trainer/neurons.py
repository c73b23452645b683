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


def _dense_like(x: torch.Tensor) -> torch.Tensor:
    """Uninitialised dense tensor of x's shape whose axes are ordered in memory as x's are
    (x may be a strided slice), so that elementwise ops between the two run in one order."""
    from .lif_kernel import _dense_strides

    return torch.empty_strided(x.shape, _dense_strides(x), dtype=x.dtype, device=x.device)


class _LIFSequence(torch.autograd.Function):
    """LIF over a whole sequence with a hand-written backward (same gradient as autograd
    through ``lif_step``, several times faster on CPU).

    Works in the memory layout of ``current`` (any strides; buffers are allocated with
    ``empty_like``, which keeps a permuted dense layout), so a caller whose data is laid out
    (N, T, B) needs no transposed copy. Per step, forward: 4 float tensor ops (integrate,
    threshold, decay, reset; bool masks and masked_fill are several times slower on CPU),
    plus the surrogate derivative of the step, computed while the step's membrane is in cache
    (only when a gradient is needed); backward: 3 ops per step. The forward arithmetic is
    ``lif_step``'s, so the spikes are bit-identical to ``lif_sequence_reference``.
    """

    @staticmethod
    def forward(ctx, current, decay, threshold, alpha):
        need_grad = ctx.needs_input_grad[0]
        # the scalars as 0-dim tensors of current's dtype: the same float values, without a
        # scalar conversion in each of the ~1000 small per-step ops
        k_decay, k_thr, k_c, k_one, k_half = (
            torch.tensor(val, dtype=current.dtype, device=current.device)
            for val in (decay, threshold, math.pi / 2 * alpha, 1.0, alpha / 2))
        with torch.no_grad():
            spikes = torch.empty_like(current)
            slope = torch.empty_like(current) if need_grad else None  # surrogate derivative
            u = _dense_like(current[0])                # membrane before spike/reset
            v = _dense_like(current[0]).zero_()        # decay * membrane after reset
            for t in range(current.shape[0]):
                torch.add(v, current[t], out=u)        # decay * v + I[t]
                s = spikes[t]
                torch.gt(u, k_thr, out=s)
                if need_grad:                          # atan_surrogate(u - threshold, alpha)
                    d = slope[t]
                    torch.sub(u, k_thr, out=d)
                    d.mul_(k_c)
                    d.mul_(d)
                    d.add_(k_one)
                    d.reciprocal_()
                    d.mul_(k_half)
                torch.mul(u, k_decay, out=v)           # decay * u * (1 - spike): exactly 0 or
                torch.addcmul(v, v, s, value=-1, out=v)  # decay * u (spike is 0 or 1)
        ctx.save_for_backward(spikes, slope, k_decay)
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes):
        spikes, slope, k_decay = ctx.saved_tensors
        grad_current = torch.empty_like(slope)
        if grad_spikes.stride() != slope.stride():    # into the forward's layout, once
            grad_spikes = torch.empty_like(slope).copy_(grad_spikes)
        g_v = _dense_like(slope[0]).zero_()            # decay * dL/du[t+1]
        for t in range(slope.shape[0] - 1, -1, -1):
            s = spikes[t]
            torch.addcmul(g_v, g_v, s, value=-1, out=g_v)   # the reset is detached
            torch.addcmul(g_v, grad_spikes[t], slope[t], out=grad_current[t])
            torch.mul(grad_current[t], k_decay, out=g_v)
        return grad_current, None, None, None


def lif_sequence(current: torch.Tensor, decay: float, threshold: float,
                 alpha: float = 5.0, kernel: str = "auto") -> torch.Tensor:
    """LIF over time: current (T, ...) -> spikes (T, ...) in {0, 1}, zero initial state.
    kernel: "auto" | "cpp" | "torch" (trainer.lif_kernel; the same results, "cpp" runs the
    whole loop as one compiled pass on (T, B, N) float32 CPU tensors)."""
    from .lif_kernel import LIFKernel, use_kernel

    if current.dim() == 3 and use_kernel(kernel, current):
        return LIFKernel.apply(current, decay, threshold, alpha)
    return _LIFSequence.apply(current, decay, threshold, alpha)


class _LISequence(torch.autograd.Function):
    """Leaky integrator over a sequence, in the memory layout of ``current``; the arithmetic
    of ``li_step`` (decay * v + I[t]) with 2 ops per step each way."""

    @staticmethod
    def forward(ctx, current, decay):
        k_decay = torch.tensor(decay, dtype=current.dtype, device=current.device)
        with torch.no_grad():
            out = torch.empty_like(current)
            v = _dense_like(current[0]).zero_()        # decay * membrane
            for t in range(current.shape[0]):
                torch.add(v, current[t], out=out[t])
                torch.mul(out[t], k_decay, out=v)
        ctx.save_for_backward(k_decay)
        return out

    @staticmethod
    def backward(ctx, grad_v):
        (k_decay,) = ctx.saved_tensors
        grad_current = torch.empty_like(grad_v)
        g = _dense_like(grad_v[0]).zero_()             # decay * dL/dI[t+1]
        for t in range(grad_v.shape[0] - 1, -1, -1):
            torch.add(grad_v[t], g, out=grad_current[t])
            torch.mul(grad_current[t], k_decay, out=g)
        return grad_current, None


def li_sequence(current: torch.Tensor, decay: float, kernel: str = "auto") -> torch.Tensor:
    """Leaky integrator over time: current (T, ...) -> membrane (T, ...), zero initial state.
    kernel: as ``lif_sequence`` (trainer.lif_kernel.LIKernel: the same floats)."""
    from .lif_kernel import LIKernel, use_kernel

    if current.dim() == 3 and use_kernel(kernel, current):
        return LIKernel.apply(current, decay)
    return _LISequence.apply(current, decay)


def time_major(x: torch.Tensor) -> torch.Tensor:
    """(B, N, T) -> (T, B, N) view for the sequence functions, copied to contiguous only when
    time is the innermost axis in memory (then every step's slice would be strided by T); a
    (N, T, B) or (T, B, N) memory layout is used in place."""
    x = x.permute(2, 0, 1)
    return x.contiguous() if x.shape[0] > 1 and x.stride(0) == 1 else x


class LIF(torch.nn.Module):
    """Thin module around ``lif_sequence``; input/output (B, N, T), the output in the input's
    memory layout (or (T, B, N) when time was innermost)."""

    def __init__(self, tau: float, threshold: float = 1.0, alpha: float = 5.0,
                 kernel: str = "auto"):
        super().__init__()
        self.dv, self.decay = decay_from_tau(tau)
        self.threshold, self.alpha, self.kernel = float(threshold), float(alpha), kernel

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        spikes = lif_sequence(time_major(current), self.decay, self.threshold, self.alpha,
                              self.kernel)
        return spikes.permute(1, 2, 0)


class LI(torch.nn.Module):
    """Thin module around ``li_sequence``; input/output (B, N, T)."""

    def __init__(self, tau: float, kernel: str = "auto"):
        super().__init__()
        self.dv, self.decay = decay_from_tau(tau)
        self.kernel = kernel

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        return li_sequence(time_major(current), self.decay, self.kernel).permute(1, 2, 0)
