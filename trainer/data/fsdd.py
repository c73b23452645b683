"""Free Spoken Digit Dataset: a folder of ``{digit}_{speaker}_{index}.wav`` (8 kHz, 16-bit mono).

Front end: the Mel recipe resamples to ``SAMPLE_RATE_HZ`` = 8000 Hz (a no-op on FSDD's own files),
and the recipe travels with the trained network, so audio recorded at another rate is resampled
to what the network learned (bands up to 4 kHz).

Official split: take index 0-4 -> test (300 files), 5-49 -> train (2700). 10 classes "0".."9".
Folder lookup when no data_dir is given, first hit wins: ``../shared/data/fsdd/recordings``
from the repository root (the CI copy); ``<cache>/fsdd-v1.0.10/recordings`` (an earlier download,
or files placed there by hand); else the pinned release v1.0.10 is downloaded there
(:func:`trainer.data.download.fetch_fsdd`: checksum-verified, fails within seconds offline).
New voices: option ``test_speaker`` (default None = the official split) holds one speaker out:
test = all of that speaker's files (500), train = every file of the other speakers, so the test
voice is never heard in training (leave-one-speaker-out: one run per speaker).
Validation: all 6 speakers are in the test set too, so it is carved per speaker by take index
(strategy "takes": the same held-out takes for every digit of a speaker). Option
``val_speaker`` (with ``test_speaker``: nested leave-one-speaker-out) holds a second speaker out
as the whole validation set instead, so the test speaker chooses nothing.
More voices: option ``tts_voices`` (default 0) adds that many espeak-ng voices saying every
digit (:mod:`.tts_digits`, ``voice_seed`` = ``tts_seed``, all of its voices) to the training
split only (marked ``train_only``: never in validation; test stays real FSDD); option
``tts_flite_voices`` (default 0) adds that many flite voices with them (tts-digits'
``flite_voices``).
Meta per sample: speaker, file (name inside the folder), take (int).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from . import tts_digits
from .audio_features import audio_features
from .audio_folder import list_audio, require_dir
from .dataset import SourceSplit
from .download import fetch_fsdd
from .errors import DataError
from .feature_cache import default_cache_dir
from .frontend import MelRecipe

NAME = "fsdd"
DESCRIPTION = "Free Spoken Digit Dataset WAVs, official split (index 0-4 test), 10 classes"
OPTIONS: dict = {"test_speaker": None, "val_speaker": None, "tts_voices": 0, "tts_seed": 0,
                 "tts_flite_voices": 0}
VAL_STRATEGY = "takes"
USES_N_MELS = True
CLASS_NAMES = [str(d) for d in range(10)]
TEST_TAKES = range(0, 5)
SAMPLE_RATE_HZ = 8000
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
    return require_dir(Path(data_dir), "FSDD recordings",
                       "pass the folder of {digit}_{speaker}_{index}.wav files")


def speakers_in(folder: Path) -> list[str]:
    """The speakers of an FSDD folder's ``{digit}_{speaker}_{index}.wav`` files, sorted."""
    return sorted({m.group(2) for m in (_PATTERN.match(p.name)
                                        for p in list_audio(folder, (".wav",))) if m})


def list_files(folder: Path, split: str, test_speaker: str | None = None
               ) -> tuple[list[Path], np.ndarray, list[dict]]:
    """(files, labels, meta) of one split, sorted by file name: the official split (takes 0-4
    are test), or with ``test_speaker`` that speaker's files (test) against everyone else's."""
    wavs = list_audio(folder, (".wav",))
    if not wavs:
        has_sub = (folder / "recordings").is_dir()
        hint = " (it has a recordings/ subfolder: pass that)" if has_sub else ""
        raise DataError(f"no .wav files in FSDD folder {folder}{hint}")
    parsed = []
    for p in wavs:
        m = _PATTERN.match(p.name)
        if m is None:
            raise DataError(f"FSDD file name {p.name} in {folder} is not "
                            "{digit}_{speaker}_{index}.wav")
        parsed.append((p, int(m.group(1)), m.group(2), int(m.group(3))))
    if test_speaker is not None:
        speakers = sorted({sp for _, _, sp, _ in parsed})
        if test_speaker not in speakers:
            raise DataError(f"test_speaker {test_speaker!r} is not in FSDD folder {folder}; "
                            f"its speakers: {', '.join(speakers)}")
    files, labels, meta = [], [], []
    for p, digit, speaker, take in parsed:
        is_test = take in TEST_TAKES if test_speaker is None else speaker == test_speaker
        if is_test != (split == "test"):
            continue
        files.append(p)
        labels.append(digit)
        meta.append({"speaker": speaker, "file": p.name, "take": take})
    if not files:
        which = f"speaker {test_speaker}" if test_speaker is not None else (
            "takes 0-4" if split == "test" else "takes 5+")
        raise DataError(f"FSDD folder {folder} has no {split} files ({which})")
    return files, np.array(labels, dtype=np.int64), meta


def mel_recipe(n_mels: int, time_steps: int, **options) -> MelRecipe:
    """The front end of this source: the default Mel recipe at 8 kHz."""
    return MelRecipe(n_mels=n_mels, n_frames=time_steps, resample_hz=SAMPLE_RATE_HZ)


def val_speakers(test_speaker=None, val_speaker=None, **_) -> list[str] | None:
    """The speakers held out as the whole validation set (option val_speaker), or None."""
    return None if val_speaker is None else [val_speaker]


def check_options(test_speaker, val_speaker, tts_voices, tts_seed, tts_flite_voices=0) -> None:
    """DataError unless the options are well formed (before any work)."""
    for k, v in (("test_speaker", test_speaker), ("val_speaker", val_speaker)):
        if v is not None and not isinstance(v, str):
            raise DataError(f"{k} must be a speaker name (e.g. 'george') or None, got {v!r}")
    if val_speaker is not None and val_speaker == test_speaker:
        raise DataError(f"val_speaker and test_speaker are both {val_speaker!r}: validation "
                        f"must come from the training speakers")
    for k, v in (("tts_voices", tts_voices), ("tts_seed", tts_seed),
                 ("tts_flite_voices", tts_flite_voices)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise DataError(f"{k} must be a non-negative integer, got {v!r}")
    if tts_flite_voices and not tts_voices:
        raise DataError("tts_flite_voices adds flite voices to the espeak-ng ones: set "
                        "tts_voices >= 1 too")


def load_split(data_dir, split: str, *, frontend: MelRecipe, cache_dir, test_speaker=None,
               val_speaker=None, tts_voices: int = 0, tts_seed: int = 0,
               tts_flite_voices: int = 0) -> SourceSplit:
    check_options(test_speaker, val_speaker, tts_voices, tts_seed, tts_flite_voices)
    if tts_voices:
        tts_digits.espeak_version()     # fail now, naming the package, when it is missing
    if tts_flite_voices:
        tts_digits.flite_version()
    folder = resolve_data_dir(data_dir, cache_dir)
    files, y, meta = list_files(folder, split, test_speaker)
    speakers = sorted({m["speaker"] for m in meta})
    if split == "train" and val_speaker is not None and val_speaker not in speakers:
        raise DataError(f"val_speaker {val_speaker!r} is not a training speaker of FSDD folder "
                        f"{folder}: {', '.join(speakers)}")
    x = audio_features(files, frontend, stem=f"fsdd-{split}", cache_dir=cache_dir)
    out = SourceSplit(x, y, meta, list(CLASS_NAMES))
    if tts_voices and split == "train":
        tts = tts_digits.features_of(tts_voices, 1, tts_seed, frontend, cache_dir,
                                     flite_voices=tts_flite_voices)
        out = SourceSplit(np.concatenate([out.x, tts.x]), np.concatenate([out.y, tts.y]),
                          out.meta + [{**m, "train_only": True} for m in tts.meta],
                          out.class_names)
    return out
