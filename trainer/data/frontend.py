"""The RawHD audio front end: waveform -> (frames, Mel bands) features, one frame per hop (10 ms).

Recipe (defaults = the RawHD recipe of the reference work, Hammouamri et al. 2024):

1. waveform as float in [-1, 1] (16-bit WAV / 32768), mono; optional resampling (scipy.signal);
2. pre-emphasis ``y[n] = x[n] - 0.95 x[n-1]`` (``y[0] = x[0]``);
3. frames of ``frame_ms`` = 25 ms every ``hop_ms`` = 10 ms, centred (``n_fft // 2`` zeros padded on
   both ends, so frame k is centred on sample ``k * hop``; frame count ``1 + len // hop``);
   window: periodic Hann of ``round(frame_ms * sr / 1000)`` samples centred in an ``n_fft``-point
   frame. ``n_fft`` = 512, or the next power of two that holds the window when the window is
   longer (48 kHz: 1200-sample window -> 2048-point FFT);
4. power spectrum ``|FFT|^2``; ``n_mels`` Slaney Mel filters over ``f_min .. f_max`` Hz
   (default 0 .. sr/2);
5. crop (keep the first ``n_frames``) or zero-pad (at the end) to ``n_frames`` frames
   (default 100 = 1 s);
6. dB relative to this recording's maximum (after cropping), floored at ``-top_db`` = -80 dB;
7. ``(dB + top_db) * scale`` with scale 0.00099: values in [0, 0.0792]; padded frames are 0.

A recording with no energy at all (all samples zero) gives all-zero features.

Normalisation (``norm``; the host computes it before the input spikes; default "none" = steps
6-7 as above, byte-identical to the recipe before ``norm`` existed). Over the recording's
``n`` frames (after cropping; padded frames stay 0), with ``L = top_db * scale`` = 0.0792 the
top of the range in every mode (graded-spike payloads are non-negative):

- ``"utterance"``: per-channel mean and variance normalisation of step 6's dB values,
  ``z[t, c] = (dB[t, c] - mean_t dB[., c]) / max(std_t dB[., c], 1 dB)``, then
  ``(clip(z, -norm_clip, norm_clip) + norm_clip) / (2 norm_clip) * L``. Removes each
  recording's spectral tilt and level per band (speaker and channel colour). Needs the whole
  recording before the first spike (two passes); host cost per frame and band about 6 adds and
  multiplies plus one square root per band.
- ``"pcen"``: per-channel energy normalisation (Wang et al. 2017) of the Mel power ``E``
  relative to the recording's peak (``E' = E / max E``, level-free as step 6), with a one-pole
  smoother ``M[t] = (1 - s) M[t-1] + s E'[t]``, ``M[-1] = E'[0]``,
  ``s = (sqrt(1 + 4 T^2) - 1) / (2 T^2)``, ``T = pcen_time_ms / hop_ms`` frames (librosa's rule;
  400 ms -> s = 0.0247):
  ``P = (E' / (pcen_eps + M)^pcen_alpha + pcen_delta)^pcen_r - pcen_delta^pcen_r``, then
  ``P / P_max * L`` where ``P_max = (s^-alpha + delta)^r - delta^r`` bounds P (since
  ``M[t] >= s E'[t]`` and ``E' <= 1``), so no clipping is needed. Defaults alpha 0.98,
  delta 2, r 0.5, eps 1e-6 (Wang et al.). Causal apart from the peak reference; host cost per
  frame and band 3 multiply-adds for M, one power, one division, one square root.
The mode and its parameters travel with the network in ``recipe["frontend"]``.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np
from scipy.signal import get_window, lfilter, resample_poly

from .errors import DataError
from .mel_filterbank import hz_to_mel, mel_filterbank, mel_to_hz

_AMIN = 1e-10  # power floor before log10 (as librosa.power_to_db)
NORMS = ("none", "utterance", "pcen")
_STD_FLOOR_DB = 1.0  # "utterance": standard deviations below this (dB) count as this
#: fields added with ``norm``: left out of ``to_dict`` when norm is "none", so the recipes (and
#: feature cache keys) of networks trained before them stay byte-identical
_NORM_FIELDS = ("norm", "norm_clip", "pcen_time_ms", "pcen_alpha", "pcen_delta", "pcen_r",
                "pcen_eps")


@dataclass(frozen=True)
class MelRecipe:
    """Parameters of :func:`features`. Units: ms, Hz, dB; ``n_frames`` in frames (= steps)."""

    n_mels: int = 40
    n_frames: int = 100
    frame_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int = 512
    pre_emphasis: float = 0.95
    f_min: float = 0.0
    f_max: float | None = None      # None: sample_rate / 2
    top_db: float = 80.0
    scale: float = 0.00099
    resample_hz: int | None = None  # None: keep the file's sample rate
    norm: str = "none"              # none | utterance | pcen (module docstring)
    norm_clip: float = 3.0          # "utterance": z-scores clipped to +-norm_clip
    pcen_time_ms: float = 400.0     # "pcen": smoother time constant (ms)
    pcen_alpha: float = 0.98        # "pcen": gain-normalisation exponent
    pcen_delta: float = 2.0         # "pcen": offset before the root compression
    pcen_r: float = 0.5             # "pcen": root-compression exponent
    pcen_eps: float = 1e-6          # "pcen": floor of the smoothed energy (relative to peak)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        if self.norm == "none":
            for k in _NORM_FIELDS:
                del d[k]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "MelRecipe":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise DataError(f"unknown Mel recipe field(s) {unknown}; known: {sorted(known)}")
        return cls(**d)

    def check(self) -> None:
        """Raise DataError when a parameter is out of range."""
        if int(self.n_mels) != self.n_mels or self.n_mels < 1:
            raise DataError(f"n_mels must be a positive integer, got {self.n_mels!r}")
        if int(self.n_frames) != self.n_frames or self.n_frames < 1:
            raise DataError(f"n_frames (time_steps) must be a positive integer, "
                            f"got {self.n_frames!r}")
        if not (self.frame_ms > 0 and self.hop_ms > 0):
            raise DataError(f"frame_ms and hop_ms must be > 0, got {self.frame_ms}, {self.hop_ms}")
        if self.n_fft < 2 or self.n_fft & (self.n_fft - 1):
            raise DataError(f"n_fft must be a power of two >= 2, got {self.n_fft}")
        if self.resample_hz is not None and int(self.resample_hz) <= 0:
            raise DataError(f"resample_hz must be a positive integer or None, "
                            f"got {self.resample_hz}")
        if self.norm not in NORMS:
            raise DataError(f"unknown front-end norm {self.norm!r}; use one of "
                            f"{', '.join(NORMS)}")
        if not (self.norm_clip > 0 and self.pcen_time_ms > 0 and 0 <= self.pcen_alpha <= 1
                and self.pcen_delta > 0 and 0 < self.pcen_r <= 1 and self.pcen_eps > 0):
            raise DataError(f"front-end norm parameters out of range: need norm_clip > 0, "
                            f"pcen_time_ms > 0, 0 <= pcen_alpha <= 1, pcen_delta > 0, "
                            f"0 < pcen_r <= 1, pcen_eps > 0; got {self.norm_clip}, "
                            f"{self.pcen_time_ms}, {self.pcen_alpha}, {self.pcen_delta}, "
                            f"{self.pcen_r}, {self.pcen_eps}")


def frame_geometry(sample_rate: int, recipe: MelRecipe) -> tuple[int, int, int]:
    """(window samples, hop samples, n_fft) used for this sample rate (after resampling)."""
    win = int(round(recipe.frame_ms * sample_rate / 1000.0))
    hop = int(round(recipe.hop_ms * sample_rate / 1000.0))
    if win < 1 or hop < 1:
        raise DataError(f"sample rate {sample_rate} Hz too low for {recipe.frame_ms} ms frames / "
                        f"{recipe.hop_ms} ms hop")
    n_fft = recipe.n_fft
    while n_fft < win:
        n_fft *= 2
    return win, hop, n_fft


def power_spectrogram(signal: np.ndarray, win: int, hop: int, n_fft: int) -> np.ndarray:
    """Centred STFT power, shape (1 + len // hop, n_fft // 2 + 1) float64."""
    pad = n_fft // 2
    padded = np.pad(signal, (pad, pad))
    n_frames = 1 + (len(padded) - n_fft) // hop
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:n_frames]
    window = np.zeros(n_fft)
    left = (n_fft - win) // 2
    window[left:left + win] = get_window("hann", win, fftbins=True)  # periodic Hann
    spectrum = np.fft.rfft(frames * window, n=n_fft, axis=1)
    return spectrum.real ** 2 + spectrum.imag ** 2


@functools.lru_cache(maxsize=16)
def _filterbank(sample_rate, n_fft, n_mels, f_min, f_max) -> np.ndarray:
    fb = mel_filterbank(sample_rate, n_fft, n_mels, f_min, f_max)
    fb.setflags(write=False)
    return fb


def features(waveform, sample_rate: int, recipe: MelRecipe | dict | None = None) -> np.ndarray:
    """Mel features of one recording: (recipe.n_frames, recipe.n_mels) float32 in [0, top_db*scale].

    waveform: 1-D float array in [-1, 1] (or 2-D (samples, channels): averaged to mono);
    sample_rate in Hz. Pure function: same input -> same output.
    """
    if recipe is None:
        recipe = MelRecipe()
    elif isinstance(recipe, dict):
        recipe = MelRecipe.from_dict(recipe)
    recipe.check()
    x = np.asarray(waveform, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if x.ndim != 1:
        raise DataError(f"waveform must be 1-D (samples) or 2-D (samples, channels), "
                        f"got shape {x.shape}")
    if x.size == 0:
        raise DataError("waveform is empty (0 samples)")
    sample_rate = int(sample_rate)
    if recipe.resample_hz is not None and int(recipe.resample_hz) != sample_rate:
        g = np.gcd(int(recipe.resample_hz), sample_rate)
        x = resample_poly(x, int(recipe.resample_hz) // g, sample_rate // g)
        sample_rate = int(recipe.resample_hz)
    win, hop, n_fft = frame_geometry(sample_rate, recipe)

    y = np.empty_like(x)
    y[0] = x[0]
    y[1:] = x[1:] - recipe.pre_emphasis * x[:-1]

    power = power_spectrogram(y, win, hop, n_fft)
    fb = _filterbank(sample_rate, n_fft, recipe.n_mels, recipe.f_min, recipe.f_max)
    mel = power @ fb.T                                          # (frames, n_mels)

    out = np.zeros((recipe.n_frames, recipe.n_mels), dtype=np.float64)
    n = min(recipe.n_frames, mel.shape[0])
    mel = mel[:n]
    peak = mel.max()
    if peak > _AMIN:
        if recipe.norm == "pcen":
            out[:n] = pcen(mel / peak, recipe) * (recipe.top_db * recipe.scale)
        else:
            db = 10.0 * np.log10(np.maximum(mel, _AMIN)) - 10.0 * np.log10(peak)
            db = np.maximum(db, -recipe.top_db)
            if recipe.norm == "utterance":
                out[:n] = utterance_norm(db, recipe) * (recipe.top_db * recipe.scale)
            else:
                out[:n] = (db + recipe.top_db) * recipe.scale
    return out.astype(np.float32)


def utterance_norm(db: np.ndarray, recipe: MelRecipe) -> np.ndarray:
    """Per-channel mean/variance normalisation of (frames, bands) dB values, mapped to [0, 1]
    (module docstring, "utterance")."""
    z = (db - db.mean(axis=0)) / np.maximum(db.std(axis=0), _STD_FLOOR_DB)
    c = recipe.norm_clip
    return (np.clip(z, -c, c) + c) / (2 * c)


def pcen_smoothing(recipe: MelRecipe) -> float:
    """The PCEN smoother coefficient s for the recipe's time constant and hop."""
    t = recipe.pcen_time_ms / recipe.hop_ms
    return float((np.sqrt(1 + 4 * t * t) - 1) / (2 * t * t))


def pcen(energy: np.ndarray, recipe: MelRecipe) -> np.ndarray:
    """PCEN of (frames, bands) Mel power relative to its peak (values in [0, 1]), divided by
    its bound P_max: values in [0, 1] (module docstring, "pcen")."""
    s, a, d, r = pcen_smoothing(recipe), recipe.pcen_alpha, recipe.pcen_delta, recipe.pcen_r
    m = lfilter([s], [1.0, s - 1.0], energy, axis=0, zi=(1.0 - s) * energy[:1])[0]
    p = (energy / (recipe.pcen_eps + m) ** a + d) ** r - d ** r
    return p / ((s ** -a + d) ** r - d ** r)


def mel_axis_hz(recipe: MelRecipe | dict) -> tuple[np.ndarray, float]:
    """(centre frequencies (n_mels,) float64, top f_max) in Hz of the recipe's Slaney Mel bands;
    DataError when the recipe keeps each file's own sample rate (no fixed axis)."""
    if isinstance(recipe, dict):
        recipe = MelRecipe.from_dict(recipe)
    if recipe.f_max is None and recipe.resample_hz is None:
        raise DataError("this Mel recipe keeps each file's sample rate, so its bands have no "
                        "fixed frequencies; set resample_hz or f_max")
    f_max = float(recipe.f_max if recipe.f_max is not None
                  else recipe.resample_hz / 2)  # type: ignore[operator]
    mels = np.linspace(hz_to_mel(recipe.f_min), hz_to_mel(f_max), recipe.n_mels + 2)[1:-1]
    return mel_to_hz(mels), f_max
