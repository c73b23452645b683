"""Heidelberg Digits audio ("RawHD" = its Mel features): the folder unpacked from hd_audio.tar.gz.

Layout: ``audio/*.flac`` (48 kHz), ``train_filenames.txt`` and ``test_filenames.txt`` (one file
name per line), names like ``lang-english_speaker-01_trial-0_digit-0.flac``.
20 classes: english 0-9 then german 0-9, label = digit + 10 * (lang == "german"); class names
"english-0" .. "german-9". Validation: whole training speakers held out (strategy "speakers").
Meta per sample: speaker ("01"), file (name), take (trial, int), language.
Option ``resample_hz`` (default None = native 48 kHz, 2048-point FFT): resample first, e.g. 16000;
the recorded front end names the effective rate (48000 when None), so audio fed to a trained
network later is resampled to it.
Getting the data: :func:`trainer.data.download.fetch_hd_audio` (or place it by hand).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .audio_features import audio_features
from .audio_folder import require_dir
from .dataset import SourceSplit
from .errors import DataError
from .frontend import MelRecipe

NAME = "rawhd"
DESCRIPTION = ("Heidelberg Digits audio (hd_audio: audio/*.flac + {train,test}_filenames.txt), "
               "20 classes")
OPTIONS = {"resample_hz": None}
VAL_STRATEGY = "speakers"
USES_N_MELS = True
LANGUAGES = ("english", "german")
CLASS_NAMES = [f"{lang}-{d}" for lang in LANGUAGES for d in range(10)]
_PATTERN = re.compile(r"^lang-(english|german)_speaker-(\d+)_trial-(\d+)_digit-(\d)\.flac$")


def parse_name(name: str) -> dict:
    """{"label", "speaker", "take", "language"} from a Heidelberg Digits file name."""
    m = _PATTERN.match(name)
    if m is None:
        raise DataError(f"Heidelberg Digits file name {name!r} is not "
                        f"lang-<english|german>_speaker-<NN>_trial-<N>_digit-<D>.flac")
    lang, speaker, trial, digit = m.group(1), m.group(2), int(m.group(3)), int(m.group(4))
    return {"label": digit + 10 * (lang == "german"), "speaker": speaker, "take": trial,
            "language": lang}


def list_files(folder: Path, split: str) -> tuple[list[Path], np.ndarray, list[dict]]:
    """(files, labels, meta) in the order of ``{split}_filenames.txt``; every listed file exists."""
    listing = folder / f"{split}_filenames.txt"
    if not listing.is_file():
        raise DataError(f"Heidelberg Digits file list missing: {listing} (the folder unpacked from "
                        f"hd_audio.tar.gz has train_filenames.txt, test_filenames.txt and audio/)")
    audio = require_dir(folder / "audio", "Heidelberg Digits audio",
                        "expected audio/*.flac next to the file lists")
    names = [ln.strip() for ln in listing.read_text().splitlines() if ln.strip()]
    if not names:
        raise DataError(f"no audio files listed in {listing}")
    files, labels, meta = [], [], []
    for name in names:
        info = parse_name(name)
        path = audio / name
        if not path.is_file():
            raise DataError(f"{listing.name} lists {name}, which is missing from {audio}")
        files.append(path)
        labels.append(info["label"])
        meta.append({"speaker": info["speaker"], "file": name, "take": info["take"],
                     "language": info["language"]})
    return files, np.array(labels, dtype=np.int64), meta


NATIVE_HZ = 48000


def mel_recipe(n_mels: int, time_steps: int, resample_hz=None) -> MelRecipe:
    """The front end of this source: the default Mel recipe at ``resample_hz`` (None: 48 kHz)."""
    return MelRecipe(n_mels=n_mels, n_frames=time_steps, resample_hz=resample_hz or NATIVE_HZ)


def load_split(data_dir, split: str, *, frontend: MelRecipe, cache_dir,
               resample_hz=None) -> SourceSplit:
    if data_dir is None:
        raise DataError("rawhd needs data_dir (--data-dir): the folder unpacked from "
                        "hd_audio.tar.gz (see trainer.data.download.fetch_hd_audio)")
    folder = require_dir(Path(data_dir), "Heidelberg Digits",
                         "pass the folder unpacked from hd_audio.tar.gz")
    files, y, meta = list_files(folder, split)
    x = audio_features(files, frontend, stem=f"rawhd-{split}", cache_dir=cache_dir)
    return SourceSplit(x, y, meta, list(CLASS_NAMES))
