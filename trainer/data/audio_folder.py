"""Checks shared by the audio sources: the data folder exists and holds audio files."""
from __future__ import annotations

import os
from pathlib import Path

from .audio_io import AUDIO_SUFFIXES
from .errors import DataError


def require_dir(path: Path, what: str, hint: str) -> Path:
    """``path`` as a Path if it is a folder, else DataError '<what> ... not found: <hint>'."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{what} folder not found: {path} ({hint})")
    return path.resolve()


def list_audio(folder: Path, suffixes: tuple[str, ...] = AUDIO_SUFFIXES) -> list[Path]:
    """Audio files directly in ``folder`` (by suffix, case-insensitive), sorted by name."""
    with os.scandir(folder) as entries:
        names = [e.name for e in entries
                 if e.is_file() and os.path.splitext(e.name)[1].lower() in suffixes]
    return [Path(folder) / n for n in sorted(names)]
