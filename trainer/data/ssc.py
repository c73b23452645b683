"""Spiking Speech Commands: ``ssc_train.h5`` / ``ssc_valid.h5`` / ``ssc_test.h5``, 35 classes.

The same HDF5 layout and binning as SHD (:mod:`.shd`: ``spikes/times``, ``spikes/units``,
``labels``; 700 channels, option ``pool``, 10 ms steps). Class names: the file's
``extra/keys`` (35 words, in label order) when present, else "0".."34". ``extra/speaker`` is
optional (meta speaker None without it). Validation is SSC's official ``ssc_valid.h5``
(strategy "official": ``val_fraction`` does not apply, "train" is all of ``ssc_train.h5``).
Meta per sample: speaker, file ("ssc_train.h5#<index>").
"""
from __future__ import annotations

from pathlib import Path

import h5py

from .audio_folder import require_dir
from .dataset import SourceSplit
from .errors import DataError
from .shd import N_UNITS, binned_split, check_pool, read_checked

NAME = "ssc"
DESCRIPTION = ("Spiking Speech Commands HDF5 (ssc_train/valid/test.h5), 700 channels (pool "
               "option), 35 classes, official validation file")
OPTIONS = {"pool": 1}
VAL_STRATEGY = "official"  # the registry reads ssc_valid.h5 for split "val"
USES_N_MELS = False
N_CLASSES = 35
REQUIRED_KEYS = ("spikes/times", "spikes/units", "labels")
FILES = {"train": "ssc_train.h5", "valid": "ssc_valid.h5", "test": "ssc_test.h5"}


def class_names(path: Path) -> list[str]:
    """The 35 names from extra/keys (bytes or str, label order), else "0".."34"."""
    with h5py.File(path, "r") as f:
        if "extra/keys" not in f:
            return [str(i) for i in range(N_CLASSES)]
        keys = [k.decode() if isinstance(k, bytes) else str(k) for k in f["extra/keys"][:]]
    if len(keys) != N_CLASSES:
        raise DataError(f"SSC file {path}: extra/keys has {len(keys)} names, expected {N_CLASSES}")
    return keys


def load_split(data_dir, split: str, *, n_mels: int, time_steps: int, cache_dir,
               pool=1) -> SourceSplit:
    """split: "train", "valid" or "test"."""
    if n_mels != 40:
        raise DataError(f"n_mels={n_mels} does not apply to ssc ({N_UNITS} cochlea channels); "
                        f"use the pool option to reduce channels")
    pool = check_pool(pool)
    if data_dir is None:
        raise DataError("ssc needs data_dir (--data-dir): the folder holding ssc_train.h5, "
                        "ssc_valid.h5 and ssc_test.h5")
    folder = require_dir(Path(data_dir), "SSC", "pass the folder holding ssc_train.h5 / "
                                                "ssc_valid.h5 / ssc_test.h5")
    path = folder / FILES[split]
    if not path.is_file():
        raise DataError(f"SSC file missing: {path}; place {FILES[split]} there (unzipped from "
                        f"{FILES[split]}.zip of the Heidelberg spiking datasets)")
    times, units, labels, speakers = read_checked(path, "SSC", N_CLASSES, REQUIRED_KEYS)
    x, meta = binned_split(path, NAME, split, times, units, labels, speakers,
                           time_steps=time_steps, pool=pool, cache_dir=cache_dir)
    return SourceSplit(x, labels, meta, class_names(path))
