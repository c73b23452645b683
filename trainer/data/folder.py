"""Any folder of class subfolders of audio files (``<data_dir>/<class name>/*.wav|flac|ogg|mp3``).

At least two class subfolders, each holding its audio files directly (MP3 where the installed
libsndfile reads it, see audio_io). Audio that would not be read is an error naming it, never
skipped: another audio extension, audio in a nested subfolder or beside the class subfolders.
Class names: the sorted subfolder names (label = position). Split: deterministic per file from a
hash of its relative path "<class>/<file name>": a file is in the test split when
``int(sha256(path)[:8], 16) % 100 < test_percent`` (option, default 20), else in train. The
split thus stays fixed when files are added. Speakers are unknown (None); validation is carved
at random per class from ``seed`` (strategy "random").
Meta per sample: speaker None, file (relative path).
Option ``sample_rate_hz`` (default 16000): every file is resampled to this rate before the Mel
front end, so recordings at mixed rates give the same bands.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from .audio_features import audio_features
from .audio_folder import list_audio, require_dir
from .audio_io import audio_suffixes, known_audio_suffixes
from .dataset import SourceSplit
from .errors import DataError
from .frontend import MelRecipe

NAME = "folder"
DESCRIPTION = ("any folder of class subfolders of audio files; "
               "hashed test split (test_percent option)")
OPTIONS = {"test_percent": 20, "sample_rate_hz": 16000}
VAL_STRATEGY = "random"
USES_N_MELS = True


def in_test(relpath: str, test_percent: int) -> bool:
    """True when the file with this relative path (with '/') belongs to the test split."""
    return int(hashlib.sha256(relpath.encode()).hexdigest()[:8], 16) % 100 < test_percent


def list_files(folder: Path, split: str, test_percent: int):
    """(files, labels, meta, class_names) of one split."""
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"no class subfolders in {folder} "
                        "(expected <data_dir>/<class>/<audio files>)")
    if len(classes) < 2:
        raise DataError(f"{folder} holds one class subfolder ({classes[0]}); a classifier needs "
                        f"at least 2 classes: add a subfolder of audio files per class")
    audio_ext = set(known_audio_suffixes())
    loose = sorted(p.name for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in audio_ext)
    if loose:
        more = f" and {len(loose) - 3} more" if len(loose) > 3 else ""
        raise DataError(f"{folder} holds audio files outside the class subfolders "
                        f"({', '.join(loose[:3])}{more}), which belong to no class: move them "
                        f"into <class>/ subfolders ({', '.join(classes)})")
    files, labels, meta = [], [], []
    n_audio = 0
    for label, cls in enumerate(classes):
        audio = list_audio(folder / cls)
        nested = nested_audio(folder / cls)
        if nested:
            raise DataError(f"class folder {folder / cls} has audio in subfolders "
                            f"({', '.join(nested)}), which is not read: move the files up into "
                            f"{folder / cls}")
        if not audio:
            raise DataError(f"class folder {folder / cls} holds no audio files "
                            f"({', '.join(audio_suffixes())})")
        n_audio += len(audio)
        for p in audio:
            rel = f"{cls}/{p.name}"
            if in_test(rel, test_percent) == (split == "test"):
                files.append(p)
                labels.append(label)
                meta.append({"speaker": None, "file": rel})
    if not files:
        raise DataError(f"the {split} split of {folder} is empty ({n_audio} audio files, "
                        f"test_percent={test_percent}); add files or change test_percent")
    if split != "test" and len(set(labels)) < 2:
        raise DataError(f"the training files of {folder} are all of class {classes[labels[0]]} "
                        f"(the other classes' files hash into the test split, "
                        f"test_percent={test_percent}); add files or lower test_percent")
    return files, np.array(labels, dtype=np.int64), meta, classes


def nested_audio(class_dir: Path) -> list[str]:
    """Non-hidden subfolders of ``class_dir`` (relative names) holding audio files at any depth."""
    audio = set(known_audio_suffixes())
    return sorted(p.name for p in class_dir.iterdir()
                  if p.is_dir() and not p.name.startswith(".")
                  and any(f.suffix.lower() in audio for f in p.rglob("*") if f.is_file()))


def mel_recipe(n_mels: int, time_steps: int, test_percent=20, sample_rate_hz=16000) -> MelRecipe:
    """The front end of this source: the default Mel recipe at ``sample_rate_hz``."""
    if (isinstance(sample_rate_hz, bool) or not isinstance(sample_rate_hz, int)
            or sample_rate_hz < 1000):
        raise DataError(f"sample_rate_hz must be an integer >= 1000 (Hz), got {sample_rate_hz!r}")
    return MelRecipe(n_mels=n_mels, n_frames=time_steps, resample_hz=sample_rate_hz)


def load_split(data_dir, split: str, *, frontend: MelRecipe, cache_dir,
               test_percent=20, sample_rate_hz=16000) -> SourceSplit:
    if (isinstance(test_percent, bool) or not isinstance(test_percent, int)
            or not 0 < test_percent < 100):
        raise DataError(f"test_percent must be an integer in 1..99, got {test_percent!r}")
    if data_dir is None:
        raise DataError("folder needs data_dir (--data-dir): "
                        "a folder of class subfolders of audio files")
    folder = require_dir(Path(data_dir), "audio class",
                         "pass a folder of class subfolders of audio files")
    files, y, meta, classes = list_files(folder, split, test_percent)
    x = audio_features(files, frontend, stem=f"folder-{split}", cache_dir=cache_dir)
    return SourceSplit(x, y, meta, classes)
