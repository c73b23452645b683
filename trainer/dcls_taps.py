"""Truncated DCLS Gaussian kernels: a synapse's kernel only on the taps where it is not negligible.

The dcls package (``Dcls1d``, version "gauss") spreads the weight w of synapse (post, pre) over
the K taps j = 0..K-1 of a causal kernel (tap j = delay K-1-j steps). With centre
c = P + K//2 (taps) and width s = |SIG| + 0.27 (taps):

    g_j = exp(-(j - c)^2 / (2 s^2)),      k_j = w * g_j / (sum_{i=0..K-1} g_i + 1e-7).

Truncation rule (``window``, ``window_starts``): a layer keeps, for every synapse, the W
consecutive taps a..a+W-1 with

    R = TRUNCATION_C * s_max,   W = min(K, floor(2 R) + 1),   a = clamp(ceil(c - R), 0, K - W),

s_max the largest width in the layer (training sets one sigma for all synapses). The window
holds every tap with |j - c| <= R (at most floor(2R) + 1 of them; clamping at the kernel's ends
keeps them in), so sigma's decay shrinks W: with K = 25, W = 25 taps for s >= 2, 13 at s = 1,
7 at s = 0.5 (sigma_final = 0.23) and 4 at s = 0.27 (sigma = 0).

The normaliser is the sum over all K taps, computed per synapse (O(synapses * K) scalar work,
no time or batch axis), so a kept tap has exactly the dense kernel's value and gradient (to w,
P and SIG), float rounding aside; the taps left out are simply absent.

Why it is safe: every tap left out has |j - c| > R, so g_j < exp(-TRUNCATION_C^2 / 2) =
1.5e-8 of the Gaussian's peak. Relative to the synapse's weight, all taps left out together
hold less than 2^-24 (float32's unit roundoff, 6e-8): the worst case over every s >= 0.27
(the smallest width DCLS allows) and every centre in the kernel is 3.4e-8, at s = 0.27
(``omitted_mass``; tests/test_trainer_dcls_sparse.py checks it on a grid). Positions are
clamped to the kernel after every step (``DelayConnection.clamp_positions``), so c lies in
[0, K-1]. So a truncated current differs from the dense one by less than the float32 rounding
of a single weight.
"""
from __future__ import annotations

import math

import torch

TRUNCATION_C = 6.0        # taps kept within TRUNCATION_C * s of the centre
SIGMA_OFFSET = 0.27       # DCLS's width is |SIG| + 0.27 taps
NORM_EPS = 1e-7           # DCLS's normaliser: sum of the K taps + 1e-7


def width(sig: torch.Tensor) -> torch.Tensor:
    """Gaussian width s = |SIG| + 0.27 (taps), as the dcls package."""
    return sig.abs() + SIGMA_OFFSET


def window(s_max: float, K: int) -> tuple[int, float]:
    """(W, R): taps per synapse and the half-width R (taps) for the largest width s_max."""
    R = TRUNCATION_C * float(s_max)
    return min(int(K), int(math.floor(2 * R)) + 1), R


def window_starts(center: torch.Tensor, R: float, W: int, K: int) -> torch.Tensor:
    """First kept tap a = clamp(ceil(center - R), 0, K - W) of each synapse (int64)."""
    return torch.clamp(torch.ceil(center.detach() - R), 0, K - W).to(torch.int64)


def gaussian(center: torch.Tensor, s: torch.Tensor, K: int) -> torch.Tensor:
    """Normalised Gaussian tap weights g_j / (sum_i g_i + 1e-7) over all K taps, shape
    center.shape + (K,); differentiable to center and s."""
    j = torch.arange(K, dtype=center.dtype, device=center.device)
    g = torch.exp(-0.5 * ((j - center.unsqueeze(-1)) / s.unsqueeze(-1)) ** 2)
    return g / (g.sum(-1, keepdim=True) + NORM_EPS)


def window_taps(center: torch.Tensor, s: torch.Tensor, K: int, a: torch.Tensor,
                W: int) -> torch.Tensor:
    """Normalised weights of the kept taps a..a+W-1 of each synapse: (S, W) from center,
    s, a (S,); the normaliser runs over all K taps."""
    idx = a.unsqueeze(1) + torch.arange(W, device=a.device)
    return gaussian(center, s, K).gather(1, idx)


def window_mask(a: torch.Tensor, W: int, K: int) -> torch.Tensor:
    """Boolean a.shape + (K,): True on the kept taps a..a+W-1."""
    j = torch.arange(K, device=a.device)
    return (j >= a.unsqueeze(-1)) & (j < a.unsqueeze(-1) + W)


def omitted_mass(center: torch.Tensor, s: torch.Tensor, K: int) -> torch.Tensor:
    """Share of each synapse's normalised weight on the taps the rule leaves out, for a
    layer whose widths are all s (center, s: same shape; float64 for an exact check)."""
    R = TRUNCATION_C * s
    W = torch.clamp(torch.floor(2 * R) + 1, max=K)
    a = torch.minimum(torch.clamp(torch.ceil(center - R), min=0), K - W)
    j = torch.arange(K, dtype=center.dtype, device=center.device)
    kept = (j >= a.unsqueeze(-1)) & (j < (a + W).unsqueeze(-1))
    return (gaussian(center, s, K) * ~kept).sum(-1)
