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
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np
from scipy.signal import get_window, resample_poly

from .errors import DataError
from .mel_filterbank import mel_filterbank

_AMIN = 1e-10  # power floor before log10 (as librosa.power_to_db)


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

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

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
        db = 10.0 * np.log10(np.maximum(mel, _AMIN)) - 10.0 * np.log10(peak)
        out[:n] = (np.maximum(db, -recipe.top_db) + recipe.top_db) * recipe.scale
    return out.astype(np.float32)
