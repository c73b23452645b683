"""DEEP R removal + RigL regrowth on plain tensors (theta, mask, scores), and their schedule.

A layer holds magnitudes ``theta >= 0`` (with fixed signs elsewhere) and a boolean ``mask`` of
existing connections. After each optimiser step (trainer.train.optimisation_step):
  1. DEEP R (Bellec et al. 2018), every step: every connection whose magnitude fell to <= 0 is
     removed; optionally (``deepr_temperature`` T > 0) the magnitudes first get the published
     noise term sqrt(2 * lr * T) * N(0, 1); the L1 term on magnitudes is the config's ``l1``;
  2. on RigL regrowth steps (Evci et al. 2020: every ``rewire_interval`` steps, until
     ``rigl_stop_fraction`` of training) the ``drop_fraction_at`` share of the connections with
     the smallest magnitude is dropped as well, and as many connections as were removed are
     regrown among the unconnected candidates that were not just removed, by score (``-grad``:
     the entries whose magnitude the last gradient step would grow most), or at random
     (``regrow = "random"``, a control). With ``drop_disconnected`` (the default) the step
     also drops the connections that cannot carry signal from the network's input to its
     output (``disconnected``: the postsynaptic neuron has no outgoing connection, or the
     presynaptic neuron no incoming one); their gradient is exactly zero, so DEEP R alone
     never frees them;
  3. on the other steps the removed slots are refilled at once, at random among the unconnected
     candidates (DEEP R's own regrowth), so the connection count is exact after every step.
Regrowth by score never picks a dead candidate (score exactly 0, e.g. a silent presynaptic
neuron) while candidates with a nonzero score remain; dead ones then fill up at random. If the
fresh candidates run out, the just-removed ones fill up. Regrown magnitudes start at
``regrow_theta`` (1e-12); every unconnected entry is 0. With ``rewire_interval = 1``, no drop
fraction and ``drop_disconnected = false`` this is the reference's rule (regrowth by gradient
after every step).
"""
from __future__ import annotations

import math

import torch

REGROW_THETA = 1e-12


def is_regrowth_step(step: int, total_steps: int, interval: int, stop_fraction: float) -> bool:
    """RigL regrowth by score at global step ``step`` (0-based): every ``interval`` steps
    (step % interval == 0) before ``stop_fraction * total_steps``."""
    return step % interval == 0 and step < stop_fraction * total_steps


def drop_fraction_at(step: int, total_steps: int, drop_fraction: float,
                     stop_fraction: float) -> float:
    """RigL's cosine-decayed drop fraction: drop_fraction/2 * (1 + cos(pi * step / stop)),
    stop = stop_fraction * total_steps; 0 from there on."""
    stop = stop_fraction * total_steps
    if drop_fraction <= 0 or step >= stop:
        return 0.0
    return drop_fraction / 2 * (1 + math.cos(math.pi * step / stop))


@torch.no_grad()
def remove_crossed(theta: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """DEEP R removal in place: connections with theta <= 0 leave the mask; every unconnected
    theta becomes 0. Returns the flat boolean mask of the removed entries."""
    flat_theta, flat_mask = theta.view(-1), mask.view(-1)
    removed = flat_mask & (flat_theta <= 0)
    flat_mask &= ~removed
    flat_theta.mul_(flat_mask)
    return removed


@torch.no_grad()
def drop_smallest(theta: torch.Tensor, mask: torch.Tensor, n: int) -> torch.Tensor:
    """Remove the ``n`` existing connections with the smallest theta in place (ties by index).
    Returns the flat boolean mask of the dropped entries."""
    flat_theta, flat_mask = theta.view(-1), mask.view(-1)
    dropped = torch.zeros_like(flat_mask)
    n = min(int(n), int(flat_mask.sum()))
    if n > 0:
        key = torch.where(flat_mask, flat_theta.to(torch.float64), torch.inf)
        dropped[torch.topk(key, n, largest=False).indices] = True
        flat_mask &= ~dropped
        flat_theta.mul_(flat_mask)
    return dropped


@torch.no_grad()
def disconnected(masks: list[torch.Tensor]) -> list[torch.Tensor]:
    """Existing connections of a feed-forward chain that cannot carry signal from the input to
    the output. ``masks[l]`` (n_out, n_in) or (n_out, n_in, K) is layer l's connection mask;
    layer l's outputs are layer l+1's inputs. A connection is disconnected when its
    postsynaptic neuron has no outgoing connection in the next layer, or its presynaptic neuron
    no incoming connection in the previous one (network inputs and outputs always count as
    connected). Returns one flat bool tensor per layer (True = disconnected)."""
    pairs = [m.reshape(m.shape[0], m.shape[1], -1).any(-1) for m in masks]
    out = []
    for i, m in enumerate(masks):
        bad = torch.zeros_like(pairs[i])
        if i + 1 < len(masks):
            bad |= ~pairs[i + 1].any(0).unsqueeze(1)     # post neuron feeds nothing
        if i > 0:
            bad |= ~pairs[i - 1].any(1).unsqueeze(0)     # pre neuron receives nothing
        bad = bad.view(*bad.shape, *([1] * (m.dim() - 2))).expand(m.shape)
        out.append((m & bad).reshape(-1))
    return out


@torch.no_grad()
def disconnected_recurrent(masks: list[torch.Tensor],
                           recurrent: list[torch.Tensor]) -> list[torch.Tensor]:
    """``disconnected`` for a chain whose hidden layers also connect to themselves:
    ``recurrent[l]`` (n, n) or (n, n, K) is hidden layer l's recurrent mask (post, pre[, delay]).
    The same one-hop rule, recurrent synapses counted as well: a hidden neuron feeds something
    when it has an outgoing connection in the next layer or a recurrent one to another neuron,
    and receives something when it has an incoming connection from the previous layer or a
    recurrent one from another neuron (a self-loop alone does neither). A feed-forward or
    recurrent connection is disconnected when its post neuron feeds nothing or its pre neuron
    receives nothing. Returns one flat bool tensor per layer of ``masks``, then one per
    recurrent mask."""
    pairs = [m.reshape(m.shape[0], m.shape[1], -1).any(-1) for m in masks]
    rec = [r.reshape(r.shape[0], r.shape[1], -1).any(-1) for r in recurrent]
    others = [p & ~torch.eye(p.shape[0], dtype=torch.bool, device=p.device) for p in rec]
    feeds = [pairs[i + 1].any(0) | others[i].any(0) for i in range(len(rec))]
    receives = [pairs[i].any(1) | others[i].any(1) for i in range(len(rec))]
    out = []
    for i, m in enumerate(masks):
        bad = torch.zeros_like(pairs[i])
        if i + 1 < len(masks):
            bad |= ~feeds[i].unsqueeze(1)
        if i > 0:
            bad |= ~receives[i - 1].unsqueeze(0)
        out.append((m & bad.view(*bad.shape, *([1] * (m.dim() - 2))).expand(m.shape)).reshape(-1))
    for i, r in enumerate(recurrent):
        bad = ~feeds[i].unsqueeze(1) | ~receives[i].unsqueeze(0)
        out.append((r & bad.view(*bad.shape, *([1] * (r.dim() - 2))).expand(r.shape)).reshape(-1))
    return out


def _random_pick(pool: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` flat indices drawn without replacement from the True entries of ``pool``."""
    cand = torch.nonzero(pool).view(-1)
    order = torch.randperm(len(cand), generator=generator).to(cand.device)
    return cand[order[:n]]


@torch.no_grad()
def regrow(theta: torch.Tensor, mask: torch.Tensor, n: int, removed: torch.Tensor,
           score: torch.Tensor | None, generator: torch.Generator,
           regrow_theta: float = REGROW_THETA) -> torch.Tensor:
    """Regrow ``n`` connections in place among unconnected entries, the ``removed`` ones (flat
    bool) last. score (theta's shape): pick the largest scores, nonzero ones before dead
    (zero-score) ones, which are picked at random; None: pick at random. Returns the flat
    indices of the regrown entries (int64)."""
    flat_theta, flat_mask = theta.view(-1), mask.view(-1)
    picks, left = [], int(n)
    fresh = ~flat_mask & ~removed
    pools = [fresh, removed & ~flat_mask]
    for pool in pools:
        if left <= 0:
            break
        if score is not None:
            s = score.reshape(-1).to(torch.float64)
            alive = pool & (s != 0)
            k = min(left, int(alive.sum()))
            if k > 0:
                picks.append(torch.topk(torch.where(alive, s, -torch.inf), k).indices)
                left -= k
            pool = pool & (s == 0)
        k = min(left, int(pool.sum()))
        if k > 0:
            picks.append(_random_pick(pool, k, generator))
            left -= k
    idx = torch.cat(picks) if picks else torch.zeros(0, dtype=torch.int64, device=theta.device)
    flat_mask[idx] = True
    flat_theta.mul_(flat_mask)
    flat_theta[idx] = regrow_theta
    return idx


@torch.no_grad()
def rewire(theta: torch.Tensor, mask: torch.Tensor, grad: torch.Tensor,
           regrow_theta: float = REGROW_THETA,
           generator: torch.Generator | None = None) -> tuple[int, torch.Tensor]:
    """The reference step in place: DEEP R removal, then as many regrown by score ``-grad``.
    theta (float), mask (bool) and grad (dL/dtheta, float) share one shape.

    Returns (number removed = number regrown, flat indices of the regrown entries, int64).
    """
    if not (theta.shape == mask.shape == grad.shape):
        raise ValueError(f"theta {tuple(theta.shape)}, mask {tuple(mask.shape)} and grad "
                         f"{tuple(grad.shape)} must have the same shape")
    removed = remove_crossed(theta, mask)
    n = int(removed.sum())
    if n == 0:
        return 0, torch.zeros(0, dtype=torch.int64, device=theta.device)
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    return n, regrow(theta, mask, n, removed, -grad, gen, regrow_theta)
