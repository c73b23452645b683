"""Mel features of a list of audio files, computed once (tqdm progress) and cached on disk."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from .audio_io import check_audio_file, read_audio
from .feature_cache import cache_key, file_fingerprints, load_or_compute
from .frontend import MelRecipe, features


def audio_features(files: list[Path], recipe: MelRecipe, *, stem: str,
                   cache_dir: Path | str | None) -> np.ndarray:
    """Features of ``files`` in order: float32 (len(files), recipe.n_frames, recipe.n_mels).

    Every file's header is checked first (DataError naming a corrupt file) only when the
    features are not cached yet. ``stem`` names the cache file and the progress bar.
    """
    recipe.check()
    key = cache_key({"kind": "mel", **recipe.to_dict()}, file_fingerprints(files))

    def compute() -> np.ndarray:
        for f in files:
            check_audio_file(f)
        out = np.empty((len(files), recipe.n_frames, recipe.n_mels), dtype=np.float32)
        for i, f in enumerate(tqdm(files, desc=f"{stem} features", unit="file", leave=False)):
            wave, sr = read_audio(f)
            out[i] = features(wave, sr, recipe)
        return out

    return load_or_compute(cache_dir, stem, key, compute)
