"""Reading audio files (WAV, FLAC, OGG: anything libsndfile reads) as float in [-1, 1]."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from .errors import DataError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def check_audio_file(path: Path) -> None:
    """Raise DataError naming ``path`` if its header cannot be read or it holds no samples."""
    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises RuntimeError / LibsndfileError / TypeError
        raise DataError(f"unreadable or corrupt audio file {path}: {exc}") from exc
    if info.frames <= 0:
        raise DataError(f"audio file {path} holds no samples")


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """(waveform float64 (samples,) or (samples, channels) in [-1, 1], sample rate in Hz).

    16-bit PCM comes back as int16 / 32768 exactly.
    """
    try:
        data, sr = sf.read(str(path), dtype="float64", always_2d=False)
    except Exception as exc:
        raise DataError(f"unreadable or corrupt audio file {path}: {exc}") from exc
    if data.size == 0:
        raise DataError(f"audio file {path} holds no samples")
    return data, int(sr)
