"""The on-disk feature cache: keyed by recipe and input files, atomic, reused on the second load."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

import trainer.data.audio_features as audio_features_mod
from helpers.data_fakes import write_class_folder
from trainer.data import load_dataset
from trainer.data.feature_cache import cache_key, default_cache_dir, load_or_compute


@pytest.fixture
def count_features(monkeypatch):
    calls = {"n": 0}
    real = audio_features_mod.features

    def counting(*a, **k):
        calls["n"] += 1
        return real(*a, **k)
    monkeypatch.setattr(audio_features_mod, "features", counting)
    return calls


def test_second_load_reads_the_cache(tmp_path, count_features):
    root = write_class_folder(tmp_path / "f", per_class=4)
    cache = tmp_path / "cache"
    a = load_dataset("folder", "train", root, cache_dir=cache, val_fraction=0.0)
    n_first = count_features["n"]
    assert n_first == len(a)
    b = load_dataset("folder", "train", root, cache_dir=cache, val_fraction=0.0)
    assert count_features["n"] == n_first                  # nothing recomputed
    assert torch.equal(a.x, b.x)
    assert [p.suffix for p in cache.iterdir()] == [".npz"]  # no temp files left
    # another recipe (n_mels) is another cache entry
    c = load_dataset("folder", "train", root, cache_dir=cache, val_fraction=0.0, n_mels=20)
    assert c.x.shape[2] == 20 and len(list(cache.iterdir())) == 2


def test_touching_a_file_invalidates(tmp_path, count_features):
    root = write_class_folder(tmp_path / "f", per_class=4)
    cache = tmp_path / "cache"
    load_dataset("folder", "train", root, cache_dir=cache, val_fraction=0.0)
    n = count_features["n"]
    f = next((root / "moo").iterdir())
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    load_dataset("folder", "train", root, cache_dir=cache, val_fraction=0.0)
    assert count_features["n"] == 2 * n


def test_key_depends_on_recipe_and_files():
    fp = [["/a.wav", 10, 1]]
    assert cache_key({"n_mels": 40}, fp) == cache_key({"n_mels": 40}, [["/a.wav", 10, 1]])
    assert cache_key({"n_mels": 40}, fp) != cache_key({"n_mels": 41}, fp)
    assert cache_key({"n_mels": 40}, fp) != cache_key({"n_mels": 40}, [["/a.wav", 11, 1]])
    assert cache_key({"n_mels": 40}, fp) != cache_key({"n_mels": 40}, [["/a.wav", 10, 2]])


def test_corrupt_entry_is_recomputed_and_failed_compute_leaves_nothing(tmp_path):
    key = "ab" * 32
    x = load_or_compute(tmp_path, "demo", key, lambda: np.ones((2, 3), np.float32))
    path = next(tmp_path.iterdir())
    path.write_bytes(b"truncated")
    with pytest.warns(UserWarning, match="unreadable"):
        y = load_or_compute(tmp_path, "demo", key, lambda: np.full((2, 3), 2, np.float32))
    assert np.all(y == 2) and np.all(x == 1)
    other = tmp_path / "other"

    def fails():
        raise RuntimeError("interrupted")
    with pytest.raises(RuntimeError):
        load_or_compute(other, "demo", key, fails)
    assert not other.exists() or not any(other.iterdir())


def test_default_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DELAYSNN_CACHE", str(tmp_path / "here"))
    assert default_cache_dir() == tmp_path / "here"
    monkeypatch.delenv("DELAYSNN_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "delaysnn"
