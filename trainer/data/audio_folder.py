"""Checks shared by the audio sources: the data folder exists and holds audio files."""
from __future__ import annotations

import os
import shlex
from pathlib import Path

import soundfile as sf

from .audio_io import MP3_SUFFIX, audio_suffixes, known_audio_suffixes, mp3_readable
from .errors import DataError

NAMED_FILES = 3   # an error lists this many files by name, then how many more


def require_dir(path: Path, what: str, hint: str) -> Path:
    """``path`` as a Path if it is a folder, else DataError '<what> ... not found: <hint>'."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{what} folder not found: {path} ({hint})")
    return path.resolve()


def list_audio(folder: Path, suffixes: tuple[str, ...] | None = None) -> list[Path]:
    """Audio files directly in ``folder`` with one of ``suffixes`` (case-insensitive; None:
    audio_io.audio_suffixes()), sorted by name. Files with any other audio extension
    (audio_io.known_audio_suffixes) raise DataError naming them and what to convert them to:
    audio is never left out in silence."""
    readable = audio_suffixes() if suffixes is None else tuple(s.lower() for s in suffixes)
    other = set(known_audio_suffixes()) - set(readable)
    with os.scandir(folder) as entries:
        files = [e.name for e in entries if e.is_file()]
    names = sorted(n for n in files if os.path.splitext(n)[1].lower() in readable)
    refused = sorted(n for n in files if os.path.splitext(n)[1].lower() in other)
    if refused:
        raise DataError(unreadable_audio_message(Path(folder), refused, readable))
    return [Path(folder) / n for n in names]


def unreadable_audio_message(folder: Path, names: list[str], readable: tuple[str, ...]) -> str:
    """One line: which files of ``folder`` are not read, why, and what to convert them to."""
    shown = ", ".join(names[:NAMED_FILES])
    more = f" and {len(names) - NAMED_FILES} more" if len(names) > NAMED_FILES else ""
    why = ""
    if any(n.lower().endswith(MP3_SUFFIX) for n in names) and not mp3_readable():
        why = (f"; the libsndfile soundfile uses ({sf.__libsndfile_version__}) cannot read MP3 "
               f"(libsndfile reads it from 1.1.0 on, bundled with soundfile >= 0.12)")
    src, dst = names[0], os.path.splitext(names[0])[0] + ".wav"
    return (f"{folder} holds {len(names)} audio file(s) this loader does not read: {shown}{more}"
            f"{why}; it reads {', '.join(readable)}: convert them (e.g. `ffmpeg -i "
            f"{shlex.quote(src)} {shlex.quote(dst)}`) or move them out of the folder")
