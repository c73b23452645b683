"""Free Spoken Digit Dataset: a folder of ``{digit}_{speaker}_{index}.wav`` (8 kHz, 16-bit mono).

Official split: take index 0-4 -> test (300 files), 5-49 -> train (2700). 10 classes "0".."9".
Folder lookup when no data_dir is given, first hit wins: ``../shared/data/fsdd/recordings``
from the repository root (the CI copy); ``<cache>/fsdd-v1.0.10/recordings`` (an earlier download,
or files placed there by hand); else the pinned release v1.0.10 is downloaded there
(:func:`trainer.data.download.fetch_fsdd`: checksum-verified, fails within seconds offline).
Validation: all 6 speakers are in the test set too, so it is carved per speaker by take index
(strategy "takes": the same held-out takes for every digit of a speaker).
Meta per sample: speaker, file (name inside the folder), take (int).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .audio_features import audio_features
from .audio_folder import list_audio, require_dir
from .dataset import SourceSplit
from .download import fetch_fsdd
from .errors import DataError
from .feature_cache import default_cache_dir
from .frontend import MelRecipe

NAME = "fsdd"
DESCRIPTION = "Free Spoken Digit Dataset WAVs, official split (index 0-4 test), 10 classes"
OPTIONS: dict = {}
VAL_STRATEGY = "takes"
USES_N_MELS = True
CLASS_NAMES = [str(d) for d in range(10)]
TEST_TAKES = range(0, 5)
_PATTERN = re.compile(r"^(\d)_([^_]+)_(\d+)\.wav$")


def default_data_dir() -> Path:
    """``<repo root>/../shared/data/fsdd/recordings``."""
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "fsdd" / "recordings"


def resolve_data_dir(data_dir, cache_dir=None) -> Path:
    """The recordings folder: ``data_dir``, or the lookup of the module docstring (which may
    download FSDD v1.0.10 into ``cache_dir``, None = the feature cache's default folder)."""
    if data_dir is None:
        d = default_data_dir()
        if d.is_dir():
            return d.resolve()
        cache = default_cache_dir() if cache_dir is None else Path(cache_dir)
        return fetch_fsdd(cache).resolve()
    return require_dir(Path(data_dir), "FSDD recordings", "pass the folder of {digit}_{speaker}_{index}.wav files")


def list_files(folder: Path, split: str) -> tuple[list[Path], np.ndarray, list[dict]]:
    """(files, labels, meta) of one official split, sorted by file name."""
    wavs = list_audio(folder, (".wav",))
    if not wavs:
        hint = " (it has a recordings/ subfolder: pass that)" if (folder / "recordings").is_dir() else ""
        raise DataError(f"no .wav files in FSDD folder {folder}{hint}")
    files, labels, meta = [], [], []
    for p in wavs:
        m = _PATTERN.match(p.name)
        if m is None:
            raise DataError(f"FSDD file name {p.name} in {folder} is not {{digit}}_{{speaker}}_{{index}}.wav")
        digit, speaker, take = int(m.group(1)), m.group(2), int(m.group(3))
        if (take in TEST_TAKES) != (split == "test"):
            continue
        files.append(p)
        labels.append(digit)
        meta.append({"speaker": speaker, "file": p.name, "take": take})
    if not files:
        raise DataError(f"FSDD folder {folder} has no {split} files (takes {'0-4' if split == 'test' else '5+'})")
    return files, np.array(labels, dtype=np.int64), meta


def load_split(data_dir, split: str, *, n_mels: int, time_steps: int, cache_dir) -> SourceSplit:
    folder = resolve_data_dir(data_dir, cache_dir)
    files, y, meta = list_files(folder, split)
    recipe = MelRecipe(n_mels=n_mels, n_frames=time_steps)
    x = audio_features(files, recipe, stem=f"fsdd-{split}", cache_dir=cache_dir)
    return SourceSplit(x, y, meta, list(CLASS_NAMES))
