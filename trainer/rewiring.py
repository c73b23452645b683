"""DEEP R removal + RigL regrowth on plain tensors (theta, mask, grad).

A layer holds magnitudes ``theta >= 0`` (with fixed signs elsewhere) and a boolean ``mask`` of
existing connections. After each optimiser step:
  1. every connection whose magnitude fell to <= 0 is removed (DEEP R);
  2. the same number is regrown among unconnected candidates that were not just removed,
     choosing the largest ``-grad`` (the entries whose magnitude the last gradient step would
     grow most, RigL); if there are too few, the just-removed ones fill up in the same order;
  3. regrown magnitudes start at ``regrow_theta`` (1e-12); every unconnected entry is 0.
The number of connections never changes.
"""
from __future__ import annotations

import torch

REGROW_THETA = 1e-12


@torch.no_grad()
def rewire(theta: torch.Tensor, mask: torch.Tensor, grad: torch.Tensor,
           regrow_theta: float = REGROW_THETA) -> tuple[int, torch.Tensor]:
    """Rewire in place. theta (float), mask (bool) and grad (dL/dtheta, float) share one shape.

    Returns (number removed = number regrown, flat indices of the regrown entries, int64).
    """
    if not (theta.shape == mask.shape == grad.shape):
        raise ValueError(f"theta {tuple(theta.shape)}, mask {tuple(mask.shape)} and grad "
                         f"{tuple(grad.shape)} must have the same shape")
    flat_theta, flat_mask = theta.view(-1), mask.view(-1)
    removed = flat_mask & (flat_theta <= 0)
    n = int(removed.sum())
    flat_mask &= ~removed
    if n == 0:
        flat_theta.mul_(flat_mask)
        return 0, torch.zeros(0, dtype=torch.int64, device=theta.device)
    score = -grad.reshape(-1).to(torch.float64)
    fresh = ~flat_mask & ~removed
    n_fresh = min(n, int(fresh.sum()))
    picks = [torch.topk(torch.where(fresh, score, -torch.inf), n_fresh).indices]
    if n_fresh < n:
        picks.append(torch.topk(torch.where(removed, score, -torch.inf), n - n_fresh).indices)
    idx = torch.cat(picks)
    flat_mask[idx] = True
    flat_theta.mul_(flat_mask)
    flat_theta[idx] = regrow_theta
    return n, idx
