"""Slaney-style Mel filterbank (the Auditory Toolbox / librosa ``htk=False, norm='slaney'`` one).

The Mel scale is linear below 1 kHz (200/3 Hz per Mel) and logarithmic above (a factor 6.4 per
27 Mel). Filters are triangles between neighbouring Mel points, each scaled by 2 / (bandwidth in
Hz) so that every filter has the same area ("slaney" normalisation).
"""
from __future__ import annotations

import numpy as np

_F_SP = 200.0 / 3.0                       # Hz per Mel in the linear part
_MIN_LOG_HZ = 1000.0                      # where the log part starts (Hz)
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP        # = 15 Mel
_LOGSTEP = np.log(6.4) / 27.0             # log(Hz) per Mel in the log part


def hz_to_mel(f_hz):
    """Frequency (Hz) -> Slaney Mel (array or scalar, float64)."""
    f = np.asarray(f_hz, dtype=np.float64)
    mel = f / _F_SP
    log_part = f >= _MIN_LOG_HZ
    return np.where(log_part,
                    _MIN_LOG_MEL + np.log(np.maximum(f, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP, mel)


def mel_to_hz(mel):
    """Slaney Mel -> frequency (Hz) (array or scalar, float64)."""
    m = np.asarray(mel, dtype=np.float64)
    return np.where(m >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOGSTEP * (m - _MIN_LOG_MEL)),
                    _F_SP * m)


def mel_filterbank(sample_rate: float, n_fft: int, n_mels: int, f_min: float = 0.0,
                   f_max: float | None = None) -> np.ndarray:
    """Filter weights, shape (n_mels, n_fft // 2 + 1) float64; row m applies to a power spectrum.

    sample_rate in Hz; f_min / f_max in Hz (f_max None = sample_rate / 2).
    """
    if f_max is None:
        f_max = sample_rate / 2.0
    fft_hz = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    mel_hz = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    width = np.diff(mel_hz)                                   # (n_mels + 1,)
    ramps = mel_hz[:, None] - fft_hz[None, :]                 # (n_mels + 2, n_bins)
    rising = -ramps[:-2] / width[:-1, None]
    falling = ramps[2:] / width[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (mel_hz[2:] - mel_hz[:-2]))[:, None]
    return weights
