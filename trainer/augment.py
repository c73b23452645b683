"""Training-time augmentation of Mel features for keyword spotting (training batches only).

Features are ``x = (dB + top_db) * scale`` with dB relative to each recording's peak and floored
at ``-top_db`` (trainer.data.frontend; top_db 80, scale 0.00099). Each augmentation is drawn per
sample from a generator seeded by (seed, epoch, step) for the whole global batch, so a run is
fixed by its seed and DDP ranks slice the same draw. Validation and test data are never touched:
the trainer calls :func:`augment` on training batches only.

With ``u ~ U[0, 1)`` per sample:
- time shift ``s`` in ``-shift..shift`` steps and speed ``r`` in ``[1/(1+speed), 1+speed]``:
  ``out[t] = x[(t - s) * r]`` by linear interpolation over time, 0 outside the recording
  (word onset and speaking rate);
- band shift ``b`` in ``-bands..bands`` Mel bands: ``out[:, c] = out[:, c - b]``, 0 at the edge
  (pitch and vocal-tract length);
- background noise from the recordings' own silences: the mean power of the ``NOISE_FRAMES``
  quietest non-empty frames of another recording of the batch (its silence, relative to its
  peak), attenuated by ``a`` in ``[0, noise_db]`` dB, is added in the power domain
  ``P = 10^(dB/10)``; the result is re-referenced to its new peak and floored at ``-top_db``
  exactly as the front end does.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

TOP_DB, SCALE = 80.0, 0.00099   # trainer.data.frontend.MelRecipe defaults
NOISE_FRAMES = 10


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the augmentations; all zero = off. Units: steps, fraction, bands, dB."""

    shift: int = 0
    speed: float = 0.0
    bands: int = 0
    noise_db: float = 0.0

    @classmethod
    def from_config(cls, cfg: dict) -> "Augmentation":
        a = cls(int(cfg.get("augment_shift", 0)), float(cfg.get("augment_speed", 0.0)),
                int(cfg.get("augment_bands", 0)), float(cfg.get("augment_noise_db", 0.0)))
        if a.shift < 0 or a.bands < 0 or not 0 <= a.speed < 1 or a.noise_db < 0:
            raise ValueError(f"augmentation ranges must be >= 0 (and augment_speed < 1), got {a}")
        return a

    @property
    def enabled(self) -> bool:
        return bool(self.shift or self.speed or self.bands or self.noise_db)


def _warp_time(x: torch.Tensor, shift: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
    """out[b, t] = x[b, (t - shift_b) * rate_b], linear interpolation, 0 outside 0..T-1."""
    B, T, C = x.shape
    t = torch.arange(T, dtype=x.dtype, device=x.device)
    src = (t[None, :] - shift[:, None]) * rate[:, None]                 # (B, T)
    lo = src.floor()
    frac = (src - lo).unsqueeze(-1)
    lo = lo.long()
    out = torch.zeros_like(x)
    for idx, w in ((lo, 1 - frac), (lo + 1, frac)):
        ok = ((idx >= 0) & (idx < T)).unsqueeze(-1)
        g = torch.gather(x, 1, idx.clamp(0, T - 1).unsqueeze(-1).expand(B, T, C))
        out += torch.where(ok, g * w, torch.zeros_like(g))
    return out


def _shift_bands(x: torch.Tensor, bands: torch.Tensor) -> torch.Tensor:
    """out[b, :, c] = x[b, :, c - bands_b], 0 where c - bands_b is outside 0..C-1."""
    B, T, C = x.shape
    src = torch.arange(C, device=x.device)[None, :] - bands[:, None]    # (B, C)
    ok = ((src >= 0) & (src < C))[:, None, :]
    g = torch.gather(x, 2, src.clamp(0, C - 1)[:, None, :].expand(B, T, C))
    return torch.where(ok, g, torch.zeros_like(g))


def _silence_power(x: torch.Tensor) -> torch.Tensor:
    """(B, C) mean power (relative to each recording's peak) of its quietest non-empty frames."""
    level = x.mean(dim=2)                                               # (B, T)
    level = torch.where(x.amax(dim=2) > 0, level, torch.full_like(level, float("inf")))
    k = min(NOISE_FRAMES, x.shape[1])
    idx = level.topk(k, dim=1, largest=False).indices                  # (B, k)
    frames = torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[2]))
    return (10 ** ((frames / SCALE - TOP_DB) / 10)).mean(dim=1)


def _add_noise(x: torch.Tensor, donor: torch.Tensor, atten_db: torch.Tensor) -> torch.Tensor:
    power = 10 ** ((x / SCALE - TOP_DB) / 10)                           # x = 0 -> the floor
    noise = _silence_power(donor) * 10 ** (-atten_db[:, None] / 10)     # (B, C)
    db = 10 * torch.log10(power + noise[:, None, :])
    db = db - db.amax(dim=(1, 2), keepdim=True)
    return (db.clamp(min=-TOP_DB) + TOP_DB) * SCALE


@torch.no_grad()
def augment(x: torch.Tensor, aug: Augmentation, generator: torch.Generator) -> torch.Tensor:
    """Augmented copy of a training batch x (B, T, C) of Mel features; see the module docstring.
    Draws come from ``generator`` (CPU) in a fixed order, whatever ``x``'s device."""
    B = x.shape[0]
    u = torch.rand(B, 5, generator=generator, dtype=torch.float64).to(x.device)
    out = x
    if aug.shift or aug.speed:
        shift = torch.floor(u[:, 0] * (2 * aug.shift + 1)) - aug.shift
        rate = (1 + aug.speed) ** (2 * u[:, 1] - 1)
        out = _warp_time(out, shift.to(x.dtype), rate.to(x.dtype))
    if aug.bands:
        out = _shift_bands(out, (torch.floor(u[:, 2] * (2 * aug.bands + 1)) - aug.bands).long())
    if aug.noise_db:
        donor = x[(torch.floor(u[:, 3] * B).long() + 1) % B] if B > 1 else x
        out = _add_noise(out, donor, (u[:, 4] * aug.noise_db).to(x.dtype))
    return out
