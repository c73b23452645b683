"""The RawHD Mel front end: filterbank, STFT, value range, determinism, real FSDD files."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from trainer.data import MelRecipe, features
from trainer.data.audio_io import read_audio
from trainer.data.frontend import frame_geometry, power_spectrogram
from trainer.data.mel_filterbank import hz_to_mel, mel_filterbank, mel_to_hz

MAX = 80 * 0.00099


def test_slaney_mel_scale_known_points():
    # linear part: 200/3 Hz per Mel; log part from 1 kHz (15 Mel), x6.4 per 27 Mel
    assert hz_to_mel(60.0) == pytest.approx(0.9)
    assert mel_to_hz(3.0) == pytest.approx(200.0)
    assert hz_to_mel(1000.0) == pytest.approx(15.0)
    assert mel_to_hz(15.0 + 27.0) == pytest.approx(6400.0)
    f = np.array([0.0, 123.0, 999.0, 1000.0, 2500.0, 7900.0])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(f)), f, rtol=1e-12, atol=1e-9)


def test_mel_filterbank_triangles_and_area():
    sr, n_fft, n_mels = 8000, 512, 40
    fb = mel_filterbank(sr, n_fft, n_mels)
    assert fb.shape == (n_mels, n_fft // 2 + 1)
    assert (fb >= 0).all()
    df = sr / n_fft
    centres = mel_to_hz(np.linspace(hz_to_mel(0), hz_to_mel(sr / 2), n_mels + 2))
    # peak bin of each filter sits next to its centre frequency; peaks ascend
    peaks = fb.argmax(axis=1)
    assert np.all(np.diff(peaks) >= 0)
    assert np.all(np.abs(peaks * df - centres[1:-1]) <= df)
    # slaney normalisation: area (sum * df) of each triangle ~ 1 for wide-enough filters
    wide = (centres[2:] - centres[:-2]) > 8 * df
    np.testing.assert_allclose(fb[wide].sum(axis=1) * df, 1.0, rtol=0.08)


def test_power_spectrogram_frames_and_parseval():
    rng = np.random.default_rng(1)
    x = rng.normal(size=1000)
    win, hop, n_fft = 200, 80, 512
    p = power_spectrogram(x, win, hop, n_fft)
    assert p.shape == (1 + 1000 // hop, n_fft // 2 + 1)
    # frame 5 is centred on sample 5 * hop: recompute it directly
    k = 5
    padded = np.pad(x, n_fft // 2)
    window = np.zeros(n_fft)
    window[156:356] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(200) / 200)  # periodic Hann
    direct = np.abs(np.fft.rfft(padded[k * hop:k * hop + n_fft] * window)) ** 2
    np.testing.assert_allclose(p[k], direct, rtol=1e-10)


def test_frame_geometry_in_ms_for_any_rate():
    r = MelRecipe()
    assert frame_geometry(8000, r) == (200, 80, 512)
    assert frame_geometry(16000, r) == (400, 160, 512)
    assert frame_geometry(48000, r) == (1200, 480, 2048)   # window longer than 512: FFT grows


def test_tone_peaks_in_its_mel_band():
    sr = 8000
    t = np.arange(sr) / sr
    wave = 0.5 * np.sin(2 * np.pi * 1000.0 * t)
    f = features(wave, sr)
    assert f.shape == (100, 40) and f.dtype == np.float32
    centres = mel_to_hz(np.linspace(0, hz_to_mel(4000), 42))[1:-1]
    band = int(f[50].argmax())
    # pre-emphasis tilts the spectrum a little; the peak must still be the band nearest 1 kHz
    assert band == int(np.abs(centres - 1000.0).argmin())
    assert f.max() == pytest.approx(MAX, rel=1e-6)


def test_padding_is_zero_and_cropping_keeps_the_start():
    sr = 8000
    rng = np.random.default_rng(0)
    wave = rng.uniform(-0.3, 0.3, size=2400)        # 0.3 s -> 1 + 2400 // 80 = 31 frames
    f = features(wave, sr)
    assert np.all(f[31:] == 0.0) and np.all(f[:31].max(axis=1) > 0)
    longer = features(np.concatenate([wave, wave, wave, wave, wave]), sr, MelRecipe(n_frames=20))
    assert longer.shape == (20, 40)


def test_silence_gives_zeros_and_empty_is_an_error():
    assert np.all(features(np.zeros(800), 8000) == 0.0)
    with pytest.raises(ValueError, match="empty"):
        features(np.zeros(0), 8000)


def test_any_sample_rate_and_resampling_and_stereo():
    rng = np.random.default_rng(3)
    wave48 = rng.uniform(-0.5, 0.5, size=48000 // 2)                 # 0.5 s at 48 kHz
    f48 = features(wave48, 48000)
    assert f48.shape == (100, 40) and 0 <= f48.min() and f48.max() <= MAX + 1e-7
    assert np.all(f48[51:] == 0) and np.all(f48[:51].max(axis=1) > 0)   # 1 + 24000 // 480 frames
    f16 = features(wave48, 48000, MelRecipe(resample_hz=16000))
    assert np.all(f16[51:] == 0) and not np.array_equal(f16, f48)
    stereo = np.stack([wave48, wave48], axis=1)
    np.testing.assert_array_equal(features(stereo, 48000), f48)


def test_recipe_dict_and_n_mels():
    wave = np.random.default_rng(2).uniform(-0.2, 0.2, 4000)
    f = features(wave, 8000, {"n_mels": 64, "n_frames": 50})
    assert f.shape == (50, 64)
    with pytest.raises(ValueError, match="unknown Mel recipe field"):
        features(wave, 8000, {"n_mel": 64})


@pytest.mark.fsdd
def test_real_fsdd_files_shape_range_determinism(fsdd_dir):
    names = ["0_george_0.wav", "7_jackson_32.wav", "3_yweweler_12.wav", "9_theo_49.wav"]
    for name in names:
        wave, sr = read_audio(fsdd_dir / name)
        assert sr == 8000
        raw, _ = sf.read(str(fsdd_dir / name), dtype="int16")
        np.testing.assert_array_equal(wave, raw.astype(np.float64) / 32768.0)   # WAV / 32768
        f = features(wave, sr)
        assert f.shape == (100, 40) and f.dtype == np.float32
        assert f.min() >= 0.0 and f.max() <= MAX + 1e-6
        assert f.max() == pytest.approx(MAX, rel=1e-6)        # the recording's own max -> 0 dB
        np.testing.assert_array_equal(f, features(wave.copy(), sr))
        n_frames = 1 + len(wave) // 80
        if n_frames < 100:
            assert np.all(f[n_frames:] == 0.0)
