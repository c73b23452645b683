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
  exactly as the front end does (dB features only: refused with a front-end ``norm``);
- vocal tract length perturbation (VTLP, Jaitly & Hinton 2013) on the Mel axis: a warp factor
  ``a`` in ``[1 - vtlp, 1 + vtlp]`` maps input frequency f to ``W(f) = a f`` up to
  ``f_b = VTLP_F_HI * f_max * min(a, 1) / a`` and linearly from ``(f_b, a f_b)`` to
  ``(f_max, f_max)`` above; output band c (centre ``f_c`` Hz, from the data's Mel recipe) takes
  the input at ``W^-1(f_c)``, by linear interpolation between neighbouring bands (edge bands
  repeated). ``a > 1`` moves formants up (a shorter vocal tract);
- SpecAugment masks (Park et al. 2019), ``masks`` of each kind: a time mask of width
  ``w ~ U{0..time_mask}`` steps from ``t0 ~ U{0..T-w}`` and a frequency mask of width
  ``U{0..freq_mask}`` bands, both set to 0 (no input event), applied last.
The draws of the first four come first from the generator, so adding VTLP or masks leaves
them unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

TOP_DB, SCALE = 80.0, 0.00099   # trainer.data.frontend.MelRecipe defaults
NOISE_FRAMES = 10
VTLP_F_HI = 0.6                 # VTLP boundary as a fraction of f_max (Jaitly & Hinton: 4.8/8 kHz)


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the augmentations; all zero = off. Units: steps, fraction, bands, dB,
    fraction, steps, bands, count; ``band_hz``, ``f_max_hz``: the Mel axis VTLP warps (Hz)."""

    shift: int = 0
    speed: float = 0.0
    bands: int = 0
    noise_db: float = 0.0
    vtlp: float = 0.0
    time_mask: int = 0
    freq_mask: int = 0
    masks: int = 1
    band_hz: tuple[float, ...] | None = None
    f_max_hz: float | None = None

    @classmethod
    def from_config(cls, cfg: dict, band_hz=None, f_max_hz: float | None = None
                    ) -> "Augmentation":
        """From the config's ``augment_*`` keys; ``band_hz`` and ``f_max_hz`` from the data's
        Mel recipe (trainer.data.frontend.mel_axis_hz), needed by VTLP."""
        a = cls(int(cfg.get("augment_shift", 0)), float(cfg.get("augment_speed", 0.0)),
                int(cfg.get("augment_bands", 0)), float(cfg.get("augment_noise_db", 0.0)),
                float(cfg.get("augment_vtlp", 0.0)), int(cfg.get("augment_time_mask", 0)),
                int(cfg.get("augment_freq_mask", 0)), int(cfg.get("augment_masks", 1)),
                None if band_hz is None else tuple(float(f) for f in band_hz),
                None if f_max_hz is None else float(f_max_hz))
        if a.shift < 0 or a.bands < 0 or not 0 <= a.speed < 1 or a.noise_db < 0 \
                or not 0 <= a.vtlp < 0.5 or a.time_mask < 0 or a.freq_mask < 0 or a.masks < 1:
            raise ValueError(f"augmentation ranges must be >= 0 (augment_speed < 1, "
                             f"augment_vtlp < 0.5, augment_masks >= 1), got {a}")
        return a

    @property
    def enabled(self) -> bool:
        return bool(self.shift or self.speed or self.bands or self.noise_db or self.vtlp
                    or self.time_mask or self.freq_mask)


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


def vtlp_positions(alpha: np.ndarray, band_hz: np.ndarray, f_max: float) -> np.ndarray:
    """(B, C) fractional input band of every output band for warp factors alpha (B,):
    ``W^-1(f_c)`` of the module docstring, as a band index (clamped to the edge bands)."""
    out = np.empty((len(alpha), len(band_hz)))
    for i, a in enumerate(alpha):
        f_b = VTLP_F_HI * f_max * min(a, 1.0) / a           # input frequency of the knee
        knee = a * f_b                                       # its output frequency
        src = np.where(band_hz <= knee, band_hz / a,
                       f_b + (band_hz - knee) * (f_max - f_b) / (f_max - knee))
        out[i] = np.interp(src, band_hz, np.arange(len(band_hz)))
    return out


def _warp_bands(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """out[b, :, c] = x[b, :, pos[b, c]] by linear interpolation between bands."""
    B, T, C = x.shape
    lo = pos.floor().long().clamp(0, C - 1)
    hi = (lo + 1).clamp(max=C - 1)
    w = (pos - lo.to(pos.dtype))[:, None, :]
    g_lo = torch.gather(x, 2, lo[:, None, :].expand(B, T, C))
    g_hi = torch.gather(x, 2, hi[:, None, :].expand(B, T, C))
    return g_lo * (1 - w) + g_hi * w


def _mask(x: torch.Tensor, start: torch.Tensor, width: torch.Tensor, dim: int) -> torch.Tensor:
    """Zero ``width_b`` entries from ``start_b`` along ``dim`` (1: time, 2: bands)."""
    idx = torch.arange(x.shape[dim], device=x.device)[None, :]
    hit = (idx >= start[:, None]) & (idx < (start + width)[:, None])      # (B, n)
    hit = hit[:, :, None] if dim == 1 else hit[:, None, :]
    return torch.where(hit, torch.zeros_like(x), x)


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
    if aug.vtlp or aug.time_mask or aug.freq_mask:
        v = torch.rand(B, 1 + 4 * aug.masks, generator=generator, dtype=torch.float64)
        if aug.vtlp:
            if aug.band_hz is None or aug.f_max_hz is None or len(aug.band_hz) != x.shape[2]:
                raise ValueError(f"augment_vtlp needs the centre frequencies of the "
                                 f"{x.shape[2]} Mel bands (an audio front end), got "
                                 f"{None if aug.band_hz is None else len(aug.band_hz)}")
            alpha = 1 + aug.vtlp * (2 * v[:, 0].numpy() - 1)
            pos = torch.from_numpy(vtlp_positions(alpha, np.asarray(aug.band_hz), aug.f_max_hz))
            out = _warp_bands(out, pos.to(device=x.device, dtype=x.dtype))
        T, C = x.shape[1], x.shape[2]
        for i in range(aug.masks):
            c = 1 + 4 * i
            for dim, top, n, cols in ((1, aug.time_mask, T, (c, c + 1)),
                                      (2, aug.freq_mask, C, (c + 2, c + 3))):
                if top:
                    width = torch.floor(v[:, cols[0]] * (min(top, n) + 1)).long()
                    start = torch.floor(v[:, cols[1]] * (n - width + 1)).long()
                    out = _mask(out, start.to(x.device), width.to(x.device), dim)
    return out
