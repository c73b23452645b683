"""The front end travels with the network: audio at any sample rate gets the trained features.

A network trained on FSDD learned Mel bands up to 4 kHz from 8 kHz audio; the recipe recorded
with the data (``ds.recipe["frontend"]``, carried by checkpoints and exported files) resamples
new audio to that rate, so 16 kHz or 44.1 kHz recordings of the same utterance give (nearly)
the same features. Without it, a 16 kHz file would get bands up to 8 kHz.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from lava_runtime.pipeline import load_features
from trainer.data import DataError, features, load_dataset
from trainer.data.audio_io import read_audio
from trainer.data.fsdd import mel_recipe
from trainer.data.registry import dataset_from_recipe

RATES = ((2, 1, 16000), (441, 80, 44100))   # up, down, rate from 8 kHz


def utterance_8k(seconds: float = 0.6) -> np.ndarray:
    """A voiced, digit-like sweep below 4 kHz at 8 kHz: harmonics of a gliding pitch."""
    t = np.arange(int(8000 * seconds)) / 8000
    f0 = 120 + 80 * t / seconds
    phase = 2 * np.pi * np.cumsum(f0) / 8000
    wave = sum(np.sin(k * phase) / k for k in range(1, 25) if k * f0.max() < 3800)
    return 0.3 * wave * np.hanning(t.size)


def assert_same_features(f: np.ndarray, ref: np.ndarray) -> None:
    assert np.abs(f - ref).mean() < 0.01 * ref.max()
    assert np.corrcoef(f.ravel(), ref.ravel())[0, 1] > 0.999


def test_same_utterance_at_8_16_and_44k_gives_the_same_features():
    wave, recipe = utterance_8k(), mel_recipe(40, 100)
    ref = features(wave, 8000, recipe)
    for up, down, rate in RATES:
        resampled = resample_poly(wave, up, down)
        assert_same_features(features(resampled, rate, recipe), ref)
        native = features(resampled, rate)             # no fixed rate: other bands
        assert np.abs(native - ref).mean() > 0.05 * ref.max()


@pytest.mark.fsdd
def test_real_fsdd_utterance_at_other_rates(fsdd_dir):
    wave, sr = read_audio(fsdd_dir / "7_jackson_32.wav")
    recipe = mel_recipe(40, 100)
    ref = features(wave, sr, recipe)
    for up, down, rate in RATES:
        assert_same_features(features(resample_poly(wave, up, down), rate, recipe), ref)


def write_folder(root, rate_by_class: dict[str, int]) -> None:
    wave = utterance_8k()
    for cls, rate in rate_by_class.items():
        (root / cls).mkdir(parents=True)
        g = np.gcd(rate, 8000)
        for i in range(3):
            sf.write(root / cls / f"take{i}.wav", resample_poly(wave, rate // g, 8000 // g),
                     rate, subtype="PCM_16")


def test_recipe_records_the_frontend_and_rebuilds_with_it(tmp_path):
    write_folder(tmp_path / "audio", {"a": 16000, "b": 16000})
    ds = load_dataset("folder", "train", tmp_path / "audio", cache_dir=tmp_path / "cache",
                      val_fraction=0.0, test_percent=1)
    assert ds.recipe["frontend"]["resample_hz"] == 16000 and ds.recipe["frontend"]["n_mels"] == 40
    fsdd_like = mel_recipe(40, 100).to_dict()
    as_fsdd = load_dataset("folder", "train", tmp_path / "audio", cache_dir=tmp_path / "cache",
                           val_fraction=0.0, test_percent=1, frontend=fsdd_like)
    assert as_fsdd.recipe["frontend"] == fsdd_like
    again = dataset_from_recipe(as_fsdd.recipe, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(again.x.numpy(), as_fsdd.x.numpy())
    assert not np.array_equal(ds.x.numpy(), as_fsdd.x.numpy())
    with pytest.raises(DataError, match="no audio front end"):
        load_dataset("synthetic", "train", frontend=fsdd_like)
    with pytest.raises(DataError, match="n_mels=20"):
        load_dataset("folder", "train", tmp_path / "audio", n_mels=20, frontend=fsdd_like,
                     val_fraction=0.0, test_percent=1)


def test_run_feeds_new_audio_through_the_networks_frontend(tmp_path):
    """``python -m lava_runtime run|budget|report --dataset folder`` on a network trained on
    FSDD: files at 16 kHz and 44.1 kHz give the features of the same audio at 8 kHz."""
    write_folder(tmp_path / "mixed", {"a": 16000, "b": 44100})
    write_folder(tmp_path / "at8k", {"a": 8000, "b": 8000})
    recipe = {"dataset": "fsdd", "seed": 0, "n_mels": 40, "time_steps": 100,
              "options": {}, "frontend": mel_recipe(40, 100).to_dict()}
    net = SimpleNamespace(meta={"data_recipe": recipe},
                          input=SimpleNamespace(n_channels=40, time_steps=100))
    x_mixed, y_mixed = load_features(net, "folder", "train", tmp_path / "mixed")
    x_8k, y_8k = load_features(net, "folder", "train", tmp_path / "at8k")
    np.testing.assert_array_equal(y_mixed, y_8k)
    for a, b in zip(x_mixed, x_8k):
        assert_same_features(a, b)
