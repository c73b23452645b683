"""Data layer: every source gives (time steps x channels) float features, one step = 10 ms.

Public API (docs/design.md section 1)::

    from trainer.data import load_dataset, DATASETS
    ds = load_dataset(name="synthetic", split="train"|"val"|"test", data_dir=None, *, seed=0,
                      cache_dir=None, n_mels=40, time_steps=100, val_fraction=0.1,
                      frontend=None, **source_options)
    ds.x            # torch.float32 (N, T, C), T = time_steps steps of 10 ms
    ds.y            # torch.int64 (N,)
    ds.meta         # list of dicts, at least {"speaker": str | None, "file": str | None}
    ds.class_names  # list[str]
    ds.dt_ms        # 10.0
    ds.recipe       # JSON-serialisable; dataset_from_recipe(ds.recipe, split) rebuilds it
    len(ds); ds[i] -> (x_i (T, C), y_i, meta_i)

``DATASETS``: {name: description} of the sources, each in its own module:

- ``synthetic`` (default, no files): classes differ only in relative channel timing
  (:mod:`.synthetic`; options n_classes=10, n_train=1000, n_test=200, data_seed=0);
- ``fsdd``: Free Spoken Digit Dataset WAVs, official split (option test_speaker: one voice held
  out; val_speaker: another one as the whole validation set; tts_voices: espeak-ng voices added
  to training only, tts_flite_voices: flite voices with them); without data_dir the CI copy
  ``../shared/data/fsdd/recordings`` from the repository root, else release v1.0.10 in the
  cache folder, downloaded there on first use (:mod:`.fsdd`);
- ``rawhd``: Heidelberg Digits audio folder (FLAC, 20 classes) (:mod:`.rawhd`; option resample_hz);
- ``shd``: Spiking Heidelberg Digits HDF5 binned to 10 ms (:mod:`.shd`; option pool=1);
- ``ssc``: Spiking Speech Commands, the same layout, 35 classes, official validation file
  (:mod:`.ssc`; option pool=1);
- ``folder``: class subfolders of audio files, hashed split (:mod:`.folder`; options
  test_percent=20, sample_rate_hz=16000);
- ``tts-digits``: the ten digits said by espeak-ng voices, generated from a seed, cached and
  checksummed (:mod:`.tts_digits`; options voices=30, takes=1, voice_seed=0, test_voices=6;
  needs the espeak-ng package).

Audio sources share the RawHD Mel front end :func:`features` (:mod:`.frontend`), resampling to a
fixed rate per source (fsdd and tts-digits 8 kHz, rawhd 48 kHz, folder 16 kHz by default), with
an optional normalisation (``norm``: none, utterance, pcen); the recipe used is
``ds.recipe["frontend"]``, which checkpoints and exported files carry, and ``frontend=`` makes
any audio source compute exactly those features (new audio for a trained network). They cache the
features on disk (:mod:`.feature_cache`; ``cache_dir`` or ``$DELAYSNN_CACHE`` or
``~/.cache/delaysnn``). Validation is carved from the official training split by ``seed``
(:mod:`.validation_split`): FSDD by take per speaker, rawhd/shd by whole speakers, others at
random per class. Bad input raises :class:`DataError` (a ValueError) before any work.
Downloads (SHD, HD audio, FSDD; checksum-verified, fail fast offline): :mod:`.download`.
"""
from .dataset import DT_MS, FeatureDataset
from .errors import DataError
from .frontend import MelRecipe, features
from .registry import (
                       DATASETS,
                       dataset_from_recipe,
                       load_dataset,
                       source_has_frontend,
                       source_options,
)

__all__ = ["load_dataset", "DATASETS", "dataset_from_recipe", "source_options",
           "source_has_frontend", "FeatureDataset",
           "DataError", "MelRecipe", "features", "DT_MS"]
