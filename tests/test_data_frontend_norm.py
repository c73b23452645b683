"""Front-end normalisation (trainer/data/frontend.py, ``norm``): the equations, their effect, that
the default leaves recipes and features as they were, and that the choice travels with a network
(checkpoint -> netx file -> NIR metadata -> load_features) at any sample rate."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from scipy.signal import lfilter, resample_poly
from test_data_frontend_travels import RATES, assert_same_features, utterance_8k

from trainer.data import DataError, MelRecipe, features, load_dataset
from trainer.data.feature_cache import cache_key
from trainer.data.frontend import pcen_smoothing
from trainer.data.fsdd import mel_recipe

L = 80 * 0.00099          # top of the feature range in every mode
OLD_FIELDS = ["n_mels", "n_frames", "frame_ms", "hop_ms", "n_fft", "pre_emphasis", "f_min",
              "f_max", "top_db", "scale", "resample_hz"]


def recipe(norm: str, **kw) -> MelRecipe:
    return dataclasses.replace(mel_recipe(40, 100), norm=norm, **kw)


def test_default_recipe_dict_and_cache_key_are_the_ones_from_before_norm():
    """Networks and feature caches made before ``norm`` existed keep their recipe: the default
    dict has exactly the old fields, and an old dict reads back as norm "none"."""
    d = mel_recipe(40, 100).to_dict()
    assert list(d) == OLD_FIELDS
    old = {k: d[k] for k in OLD_FIELDS}
    assert MelRecipe.from_dict(old).norm == "none"
    assert cache_key({"kind": "mel", **d}, []) == cache_key({"kind": "mel", **old}, [])
    p = recipe("pcen").to_dict()
    assert p["norm"] == "pcen" and {"pcen_alpha", "pcen_time_ms", "norm_clip"} <= set(p)
    assert MelRecipe.from_dict(json.loads(json.dumps(p))) == recipe("pcen")


def test_bad_norm_and_parameters_are_refused():
    w = utterance_8k()
    with pytest.raises(DataError, match="unknown front-end norm 'cmvn'"):
        features(w, 8000, recipe("cmvn"))
    with pytest.raises(DataError, match="pcen_alpha"):
        features(w, 8000, recipe("pcen", pcen_alpha=1.5))


def reference_pcen(mel: np.ndarray, r: MelRecipe) -> np.ndarray:
    """The docstring's equations, written out frame by frame."""
    e = mel / mel.max()
    s = pcen_smoothing(r)
    m = np.empty_like(e)
    prev = e[0]
    for t in range(len(e)):
        prev = (1 - s) * prev + s * e[t]
        m[t] = prev
    p = (e / (r.pcen_eps + m) ** r.pcen_alpha + r.pcen_delta) ** r.pcen_r - r.pcen_delta ** r.pcen_r
    bound = (s ** -r.pcen_alpha + r.pcen_delta) ** r.pcen_r - r.pcen_delta ** r.pcen_r
    return p / bound * L


def mel_power(wave: np.ndarray, r: MelRecipe) -> np.ndarray:
    from trainer.data.frontend import frame_geometry, power_spectrogram
    from trainer.data.mel_filterbank import mel_filterbank
    win, hop, n_fft = frame_geometry(8000, r)
    y = np.concatenate([wave[:1], wave[1:] - r.pre_emphasis * wave[:-1]])
    return power_spectrogram(y, win, hop, n_fft) @ mel_filterbank(8000, n_fft, r.n_mels).T


def test_pcen_follows_its_equations_and_adapts_to_a_steady_sound():
    r = recipe("pcen")
    assert pcen_smoothing(r) == pytest.approx(0.0247, abs=1e-4)     # 400 ms at a 10 ms hop
    t = np.arange(8000) / 8000                                      # 1 s: silence, then a tone
    wave = np.where(t >= 0.3, 0.5 * np.sin(2 * np.pi * 440 * t), 1e-4 * np.sin(2 * np.pi * 97 * t))
    f = features(wave, 8000, r)
    mel = mel_power(wave, r)[:100]
    np.testing.assert_allclose(f, reference_pcen(mel, r), rtol=1e-5, atol=1e-7)
    assert 0 <= f.min() and f.max() <= L
    band = int(np.argmax(f[35]))
    onset, steady = f[31:34, band].max(), f[80:95, band].mean()
    assert onset > 3 * steady                   # gain control: the steady tone fades
    none = features(wave, 8000, mel_recipe(40, 100))
    assert none[80:95, band].mean() > 0.9 * none[31:34, band].max()   # the dB front end does not


def test_utterance_norm_removes_a_fixed_spectral_tilt():
    """A fixed filter (a different microphone or vocal tract colour) shifts every frame of a band
    by the same dB; per-band mean/variance normalisation removes it, the plain front end not."""
    wave = utterance_8k()
    tilted = lfilter([1.0, -0.7], [1.0], wave)                      # +-5 dB across the bands
    for norm, changed in (("none", True), ("utterance", False)):
        a, b = features(wave, 8000, recipe(norm)), features(tilted, 8000, recipe(norm))
        diff = np.abs(a - b)[a > 0].mean() / L
        assert (diff > 0.03) if changed else (diff < 0.01), (norm, diff)
    u = features(wave, 8000, recipe("utterance"))
    n = int((u.max(axis=1) > 0).sum())                              # frames of the recording
    z = u[:n] / L * 6 - 3                                           # back to clipped z-scores
    assert np.abs(z.mean(axis=0)).max() < 0.3                       # each band centred
    assert 0 <= u.min() and u.max() <= L and not u[n:].any()        # padding stays 0


@pytest.mark.parametrize("norm", ["utterance", "pcen"])
def test_every_norm_is_the_same_at_8_16_and_44k(norm):
    wave, r = utterance_8k(), recipe(norm)
    ref = features(wave, 8000, r)
    if norm == "pcen":   # relative to the peak with no absolute floor: exactly level-free
        np.testing.assert_allclose(features(0.1 * wave, 8000, r), ref, atol=1e-6)
    for up, down, rate in RATES:
        assert_same_features(features(resample_poly(wave, up, down), rate, r), ref)
    assert np.abs(ref - features(wave, 8000, recipe("none"))).mean() > 0.05 * L


def write_takes(root, rate: int, n: int = 8) -> None:
    """Two classes ("low", "high" pitch) of n takes each, the same file names at any rate."""
    import soundfile as sf
    g = np.gcd(rate, 8000)
    for cls, speed in (("low", 1.0), ("high", 1.6)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            wave = resample_poly(utterance_8k(0.5 + 0.03 * i), 10, int(10 * speed))
            sf.write(root / cls / f"take{i}.wav", resample_poly(wave, rate // g, 8000 // g),
                     rate, subtype="PCM_16")


def test_norm_travels_checkpoint_netx_nir_and_new_audio(tmp_path, monkeypatch):
    """A network trained with frontend_norm carries it in checkpoint.pt, the netx file and the
    NIR metadata; new audio at 16 / 44.1 kHz gets the trained (normalised) features."""
    import trainer
    from deployed import netx_h5
    from export.to_lava import export_checkpoint
    from export.to_nir import checkpoint_to_nir
    from lava_runtime.pipeline import load_features
    from trainer.checkpoint import load_checkpoint

    monkeypatch.setenv("DELAYSNN_CACHE", str(tmp_path / "cache"))
    write_takes(tmp_path / "at8k", 8000)
    opts = {"test_percent": 25, "sample_rate_hz": 8000}
    cfg = {"dataset": "folder", "data_dir": str(tmp_path / "at8k"), "frontend_norm": "pcen",
           "method": "no-delay", "hidden": [4], "kernel_size": 1, "epochs": 1,
           "time_steps": 100, "num_threads": 1, "val_fraction": 0.25, "data_options": opts}
    trainer.train(cfg, out=tmp_path / "run", progress=False)
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt").data_recipe["frontend"][
        "norm"] == "pcen"
    net, _ = export_checkpoint(tmp_path / "run", "loihi2", evaluation=False)
    netx_h5.save(net, tmp_path / "net.h5")
    net = netx_h5.load(tmp_path / "net.h5")
    assert net.meta["data_recipe"]["frontend"]["norm"] == "pcen"
    graph, _ = checkpoint_to_nir(tmp_path / "run")
    assert json.loads(graph.metadata["delaysnn"])["data_recipe"]["frontend"]["norm"] == "pcen"
    kw = {"val_fraction": 0.25, **opts}
    trained = load_dataset("folder", "train", tmp_path / "at8k", frontend_options={"norm": "pcen"},
                           **kw).x.numpy()
    plain = load_dataset("folder", "train", tmp_path / "at8k", **kw).x.numpy()
    for rate in (16000, 44100):
        write_takes(tmp_path / f"at{rate}", rate)
        x, _ = load_features(net, "folder", "train", tmp_path / f"at{rate}")
        assert x.shape == trained.shape
        for a, b, c in zip(x, trained, plain):
            assert_same_features(a, b)
            assert np.abs(a - c).mean() > 0.05 * L


def test_frontend_options_are_checked():
    with pytest.raises(DataError, match="no audio front end; frontend_options"):
        load_dataset("synthetic", "train", frontend_options={"norm": "pcen"})
    with pytest.raises(ValueError, match="frontend_norm needs Mel features"):
        import trainer
        trainer.train({"frontend_norm": "pcen"}, out="/nonexistent/x", progress=False)
    with pytest.raises(ValueError, match="augment_noise_db mixes noise"):
        import trainer
        trainer.train({"dataset": "fsdd", "frontend_norm": "utterance", "augment_noise_db": 5.0},
                      out="/nonexistent/x", progress=False)
