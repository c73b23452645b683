"""Free Spoken Digit Dataset: a folder of ``{digit}_{speaker}_{index}.wav`` (8 kHz, 16-bit mono).

Front end: the Mel recipe resamples to ``SAMPLE_RATE_HZ`` = 8000 Hz (a no-op on FSDD's own files),
and the recipe travels with the trained network, so audio recorded at another rate is resampled
to what the network learned (bands up to 4 kHz).

Official split: take index 0-4 -> test (300 files), 5-49 -> train (2700). 10 classes "0".."9".
Default folder: ``../shared/data/fsdd/recordings`` from the repository root, when it exists.
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
from .errors import DataError
from .frontend import MelRecipe

NAME = "fsdd"
DESCRIPTION = "Free Spoken Digit Dataset WAVs, official split (index 0-4 test), 10 classes"
OPTIONS: dict = {}
VAL_STRATEGY = "takes"
USES_N_MELS = True
CLASS_NAMES = [str(d) for d in range(10)]
TEST_TAKES = range(0, 5)
SAMPLE_RATE_HZ = 8000
_PATTERN = re.compile(r"^(\d)_([^_]+)_(\d+)\.wav$")


def default_data_dir() -> Path:
    """``<repo root>/../shared/data/fsdd/recordings``."""
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "fsdd" / "recordings"


def resolve_data_dir(data_dir) -> Path:
    if data_dir is None:
        d = default_data_dir()
        if not d.is_dir():
            raise DataError(f"FSDD recordings not found at the default {d}; pass the folder of "
                            f"FSDD .wav files with --data-dir / data_dir=")
        return d.resolve()
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


def mel_recipe(n_mels: int, time_steps: int) -> MelRecipe:
    """The front end of this source: the default Mel recipe at 8 kHz."""
    return MelRecipe(n_mels=n_mels, n_frames=time_steps, resample_hz=SAMPLE_RATE_HZ)


def load_split(data_dir, split: str, *, frontend: MelRecipe, cache_dir) -> SourceSplit:
    folder = resolve_data_dir(data_dir)
    files, y, meta = list_files(folder, split)
    x = audio_features(files, frontend, stem=f"fsdd-{split}", cache_dir=cache_dir)
    return SourceSplit(x, y, meta, list(CLASS_NAMES))
