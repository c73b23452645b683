"""Reading audio files (WAV, FLAC, OGG and, where libsndfile reads it, MP3) as float in [-1, 1].

Which extensions are read is decided at run time from the libsndfile that `soundfile` links
(`soundfile.__libsndfile_version__`): libsndfile reads MP3 from 1.1.0 on (soundfile >= 0.12
bundles 1.1 or newer in its wheels). Files with any other audio extension
(`OTHER_AUDIO_SUFFIXES`) are refused by name, never skipped in silence
(`audio_folder.list_audio`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from .errors import DataError

BASE_SUFFIXES = (".wav", ".flac", ".ogg")
MP3_SUFFIX = ".mp3"
# Audio extensions this project does not read (libsndfile cannot, or they are untested here):
# a data folder holding them is an error that names them and what to convert them to.
OTHER_AUDIO_SUFFIXES = (".aac", ".aif", ".aifc", ".aiff", ".amr", ".ape", ".au", ".caf", ".m4a",
                        ".mka", ".mp2", ".mp4", ".mpga", ".oga", ".opus", ".snd", ".spx", ".w64",
                        ".wma", ".webm", ".wv", ".3gp")


def mp3_readable() -> bool:
    """True when the libsndfile that soundfile links reads MP3 (libsndfile >= 1.1.0)."""
    return "MP3" in sf.available_formats()


def audio_suffixes() -> tuple[str, ...]:
    """The extensions read as audio (lower case): .wav, .flac, .ogg, and .mp3 where readable."""
    return BASE_SUFFIXES + ((MP3_SUFFIX,) if mp3_readable() else ())


def known_audio_suffixes() -> tuple[str, ...]:
    """Every extension taken for an audio file, read or not (lower case)."""
    return BASE_SUFFIXES + (MP3_SUFFIX,) + OTHER_AUDIO_SUFFIXES


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
