"""``load_dataset``: one entry point over all sources, with the validation carve and the recipe."""
from __future__ import annotations

from types import ModuleType

import numpy as np

from . import folder, fsdd, rawhd, shd, ssc, synthetic, tts_digits
from .dataset import DT_MS, FeatureDataset
from .errors import DataError
from .frontend import MelRecipe
from .validation_split import carve_validation

_SOURCES: dict[str, ModuleType] = {m.NAME: m for m in (synthetic, fsdd, rawhd, shd, ssc, folder,
                                                       tts_digits)}

#: name -> one-line description, in the order shown to users ("synthetic" is the default).
DATASETS: dict[str, str] = {name: m.DESCRIPTION for name, m in _SOURCES.items()}
SPLITS = ("train", "val", "test")
DEFAULT_VAL_FRACTION = 0.1


def source_options(name: str) -> dict:
    """The options (with defaults) that dataset ``name`` accepts as ``**source_options``."""
    return dict(_source(name).OPTIONS)


def source_has_frontend(name: str) -> bool:
    """True when dataset ``name`` computes features from audio with a Mel front end."""
    return hasattr(_source(name), "mel_recipe")


def _source(name: str) -> ModuleType:
    if name not in _SOURCES:
        raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(_SOURCES)}")
    return _SOURCES[name]


def load_dataset(name: str = "synthetic", split: str = "train", data_dir=None, *, seed: int = 0,
                 cache_dir=None, n_mels: int = 40, time_steps: int = 100,
                 val_fraction: float = DEFAULT_VAL_FRACTION, frontend: dict | None = None,
                 frontend_options: dict | None = None, **source_options) -> FeatureDataset:
    """Features of one split of dataset ``name`` (see :data:`DATASETS`) as a FeatureDataset.

    split: "train" (official training set minus validation), "val" (carved from the official
    training set by ``seed``: by speaker / take / at random, as the source's docstring says;
    a source with VAL_STRATEGY "official" (ssc) reads its own validation file instead) or
    "test" (the official test set; never used to choose anything).
    data_dir: the source's folder (None: FSDD's lookup, see fsdd.py: CI copy, cache, download;
    synthetic needs none).
    cache_dir: feature cache folder, also where FSDD is downloaded (None: $DELAYSNN_CACHE or
    ~/.cache/delaysnn).
    n_mels: Mel bands for audio sources, channels for synthetic; time_steps: steps of 10 ms.
    val_fraction: share of the training set (speakers / takes / samples) held out, in [0, 1).
    frontend: a Mel recipe dict (``ds.recipe["frontend"]`` of the data a network was trained on):
    audio sources then compute exactly these features, resampling to its ``resample_hz``, instead
    of their own default front end; its n_mels / n_frames must equal n_mels / time_steps.
    frontend_options: fields of the source's own Mel recipe to change (e.g. ``{"norm": "pcen"}``,
    see trainer.data.frontend.MelRecipe); audio sources only, not together with ``frontend``.
    source_options: per-source options, see :func:`source_options`.
    All arguments are checked (DataError) before any features are computed.
    """
    src = _source(name)
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    unknown = sorted(set(source_options) - set(src.OPTIONS))
    if unknown:
        raise DataError(f"dataset {name!r} has no option(s) {unknown}; its options: "
                        f"{dict(src.OPTIONS) or 'none'}")
    for arg, v in (("n_mels", n_mels), ("time_steps", time_steps), ("seed", seed)):
        lo, kind = (0, "non-negative") if arg == "seed" else (1, "positive")
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise DataError(f"{arg} must be a {kind} integer, got {v!r}")
    n_mels, time_steps, seed = int(n_mels), int(time_steps), int(seed)
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float, np.floating)) \
            or not 0 <= val_fraction < 1:
        raise DataError(f"val_fraction must be a number in [0, 1), got {val_fraction!r}")
    if split == "val" and val_fraction == 0:
        raise DataError("split='val' needs val_fraction > 0")
    options = {k: _plain(v) for k, v in {**src.OPTIONS, **source_options}.items()}
    data_dir_str = None if data_dir is None else str(data_dir)
    mel = _mel_recipe(src, n_mels, time_steps, frontend, options, frontend_options)
    shape = {"frontend": mel} if mel is not None else {"n_mels": n_mels, "time_steps": time_steps}

    official_val = src.VAL_STRATEGY == "official"  # the source ships its own validation file
    file_split = {"test": "test", "val": "valid" if official_val else "train"}.get(split, "train")
    raw = src.load_split(data_dir, file_split, cache_dir=cache_dir, **shape, **options)
    if len(raw.class_names) < 2:      # every source checks this first; a guard for new ones
        raise DataError(f"dataset {name!r} ({data_dir_str or 'no data_dir'}) has "
                        f"{len(raw.class_names)} class(es) ({', '.join(raw.class_names)}); a "
                        f"classifier needs at least 2")
    held = src.val_speakers(**options) if hasattr(src, "val_speakers") else None
    if split != "test" and not official_val:
        train_idx, val_idx = carve_validation(raw.y, raw.meta, src.VAL_STRATEGY,
                                              float(val_fraction), seed, held)
        raw = raw.subset(train_idx if split == "train" else val_idx)
    recipe = {
        "dataset": name, "split": split, "data_dir": data_dir_str, "seed": seed,
        "n_mels": n_mels, "time_steps": time_steps, "val_fraction": float(val_fraction),
        "options": options,
        # the audio front end (None for spike and synthetic sources); it travels with the network
        "frontend": None if mel is None else mel.to_dict(),
        # derived, for readers (not needed to rebuild):
        "n_channels": int(raw.x.shape[2]), "n_classes": len(raw.class_names), "dt_ms": DT_MS,
        "val_strategy": "speakers " + ",".join(held) if held else src.VAL_STRATEGY,
    }
    return FeatureDataset(raw.x, raw.y, raw.meta, raw.class_names, recipe)


def _mel_recipe(src: ModuleType, n_mels: int, time_steps: int, frontend: dict | None,
                options: dict, frontend_options: dict | None = None) -> MelRecipe | None:
    """The Mel recipe an audio source computes with (``frontend`` when given), None otherwise."""
    if not hasattr(src, "mel_recipe"):
        for arg, v in (("frontend", frontend), ("frontend_options", frontend_options or None)):
            if v is not None:
                raise DataError(f"dataset {src.NAME!r} has no audio front end; {arg}= applies "
                                f"to audio sources only")
        return None
    if frontend is not None and frontend_options:
        raise DataError("pass frontend= (a whole Mel recipe) or frontend_options= (changes to "
                        "the source's own), not both")
    if frontend is None:
        mel = src.mel_recipe(n_mels, time_steps, **options)
        if frontend_options:
            if not isinstance(frontend_options, dict):
                raise DataError(f"frontend_options must be a dict of Mel recipe fields, got "
                                f"{frontend_options!r}")
            changed = {k: _plain(v) for k, v in frontend_options.items()}
            if {"n_mels", "n_frames"} & set(changed):
                raise DataError("frontend_options cannot change n_mels / n_frames; pass n_mels "
                                "and time_steps")
            mel = MelRecipe.from_dict({**mel.to_dict(), **changed})
    else:
        mel = MelRecipe.from_dict(frontend)
        if (mel.n_mels, mel.n_frames) != (n_mels, time_steps):
            raise DataError(f"frontend has {mel.n_mels} Mel bands x {mel.n_frames} frames but "
                            f"n_mels={n_mels}, time_steps={time_steps} were asked for")
    mel.check()
    return mel


def _plain(v):
    """numpy scalars -> Python numbers, so that the recipe is JSON-serialisable."""
    return v.item() if isinstance(v, np.generic) else v


REBUILD_KEYS = ("dataset", "data_dir", "seed", "n_mels", "time_steps", "val_fraction", "options")


def dataset_from_recipe(recipe: dict, split: str | None = None, *,
                        cache_dir=None) -> FeatureDataset:
    """Rebuild the dataset a ``ds.recipe`` describes (``split`` overrides ``recipe["split"]``)."""
    missing = [k for k in REBUILD_KEYS if k not in recipe]
    if missing:
        raise DataError(f"data recipe lacks {missing}; it needs {list(REBUILD_KEYS)}")
    return load_dataset(recipe["dataset"], split or recipe.get("split", "train"),
                        recipe["data_dir"], seed=recipe["seed"], cache_dir=cache_dir,
                        n_mels=recipe["n_mels"], time_steps=recipe["time_steps"],
                        val_fraction=recipe["val_fraction"], frontend=recipe.get("frontend"),
                        **recipe["options"])
