"""The folder source refuses data that would give a silently wrong answer (one class, audio it
does not read), naming the folder and files before any work; MP3 is read where libsndfile can."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from helpers.data_fakes import tone, write_class_folder

import trainer.data.audio_features as audio_features_mod
from trainer.data import DataError, load_dataset
from trainer.data import synthetic as synthetic_mod
from trainer.data.audio_io import audio_suffixes, mp3_readable
from trainer.data.dataset import SourceSplit
from trainer.data.folder import in_test

needs_mp3 = pytest.mark.skipif(not mp3_readable(), reason="this libsndfile does not read MP3")


@pytest.fixture
def no_feature_work(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("features computed before the input was checked")
    monkeypatch.setattr(audio_features_mod, "features", boom)


@pytest.fixture
def no_mp3(monkeypatch):
    """A libsndfile older than 1.1: no MP3 among its formats."""
    formats = {k: v for k, v in sf.available_formats().items() if k != "MP3"}
    monkeypatch.setattr(sf, "available_formats", lambda: formats)


def write_mp3s(folder, n, sr=8000):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        sf.write(folder / f"clip_{i:02d}.mp3", tone(500 + 50 * i, sr, 0.25, seed=i), sr,
                 format="MP3")


def test_one_class_is_refused(tmp_path, no_feature_work):
    root = write_class_folder(tmp_path / "f", classes=("bark",), per_class=6)
    with pytest.raises(DataError, match=rf"{root} holds one class subfolder \(bark\); a "
                                        r"classifier needs at least 2 classes"):
        load_dataset("folder", "train", root, cache_dir=tmp_path / "c")
    with pytest.raises(DataError, match="one class subfolder"):
        load_dataset("folder", "test", root, cache_dir=tmp_path / "c")


def test_training_files_of_one_class_only_are_refused(tmp_path, no_feature_work):
    root = write_class_folder(tmp_path / "f", classes=("bark",), per_class=6)
    (root / "meow").mkdir()
    names = [n for n in (f"m{i}.wav" for i in range(200)) if in_test(f"meow/{n}", 20)][:3]
    for n in names:                                  # every meow file hashes into the test split
        sf.write(root / "meow" / n, tone(900, 8000, 0.2), 8000, subtype="PCM_16")
    with pytest.raises(DataError, match=r"training files of .* are all of class bark"):
        load_dataset("folder", "train", root, cache_dir=tmp_path / "c")


def test_registry_guard_for_any_source(monkeypatch):
    def one_class(*a, **k):
        return SourceSplit(np.zeros((4, 30, 2), np.float32), np.zeros(4, np.int64),
                           [{"speaker": None, "file": None}] * 4, ["only"])
    monkeypatch.setattr(synthetic_mod, "load_split", one_class)
    with pytest.raises(DataError, match=r"dataset 'synthetic' .* has 1 class\(es\) \(only\)"):
        load_dataset("synthetic", "train")


@needs_mp3
def test_mp3_files_are_read(tmp_path):
    root = write_class_folder(tmp_path / "f", classes=("a", "b"), per_class=3)
    for cls in ("a", "b"):
        write_mp3s(root / cls, 20)
    tr = load_dataset("folder", "train", root, cache_dir=tmp_path / "c", val_fraction=0.0)
    te = load_dataset("folder", "test", root, cache_dir=tmp_path / "c")
    files = [m["file"] for m in tr.meta + te.meta]
    assert len(files) == 46 and sum(f.endswith(".mp3") for f in files) == 40
    # an MP3 of a tone gives the features of the same tone in WAV (lossy, so only close)
    sr = 8000
    (tmp_path / "g" / "x").mkdir(parents=True)
    (tmp_path / "g" / "y").mkdir()
    wave = tone(700, sr, 0.5, seed=1)
    sf.write(tmp_path / "g" / "x" / "t.wav", wave, sr, subtype="PCM_16")
    sf.write(tmp_path / "g" / "y" / "t.mp3", wave, sr, format="MP3")
    ds = load_dataset("folder", "train", tmp_path / "g", cache_dir=tmp_path / "c",
                      val_fraction=0.0, test_percent=1)
    assert [m["file"] for m in ds.meta] == ["x/t.wav", "y/t.mp3"]
    a, b = ds.x[0].numpy().ravel(), ds.x[1].numpy().ravel()
    assert np.corrcoef(a, b)[0, 1] > 0.95


def test_mp3_refused_by_name_where_libsndfile_cannot_read_it(tmp_path, no_mp3,
                                                             no_feature_work):
    root = write_class_folder(tmp_path / "f", classes=("a", "b"), per_class=3)
    write_mp3s(root / "a", 20)
    with pytest.raises(DataError) as e:
        load_dataset("folder", "train", root, cache_dir=tmp_path / "c")
    msg = str(e.value)
    assert "\n" not in msg
    assert f"{root / 'a'} holds 20 audio file(s) this loader does not read: clip_00.mp3, " \
           f"clip_01.mp3, clip_02.mp3 and 17 more" in msg
    assert "cannot read MP3" in msg and "convert them" in msg and "clip_00.wav" in msg
    assert ".mp3" not in msg.split("it reads ")[1].split(":")[0]
    # a class folder of MP3s only: the same error, not "holds no audio files (.wav, ...)"
    only = write_class_folder(tmp_path / "g", classes=("b",), per_class=3)
    write_mp3s(only / "a", 4)
    with pytest.raises(DataError, match=r"holds 4 audio file\(s\) this loader does not read"):
        load_dataset("folder", "train", only, cache_dir=tmp_path / "c")


def test_other_audio_formats_nested_and_loose_audio_are_refused(tmp_path, no_feature_work):
    root = write_class_folder(tmp_path / "f", classes=("a", "b"), per_class=3)
    (root / "b" / "voice memo.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A ")
    with pytest.raises(DataError, match=r"holds 1 audio file\(s\) this loader does not read: "
                                        r"voice memo.m4a; it reads \.wav, \.flac, \.ogg"):
        load_dataset("folder", "train", root, cache_dir=tmp_path / "c")
    (root / "b" / "voice memo.m4a").unlink()
    (root / "b" / "more").mkdir()
    sf.write(root / "b" / "more" / "x.wav", tone(300, 8000, 0.2), 8000, subtype="PCM_16")
    with pytest.raises(DataError, match=r"class folder .*b has audio in subfolders \(more\)"):
        load_dataset("folder", "train", root, cache_dir=tmp_path / "c")
    (root / "b" / "more" / "x.wav").rename(root / "stray.wav")
    with pytest.raises(DataError, match=r"audio files outside the class subfolders \(stray.wav\)"):
        load_dataset("folder", "train", root, cache_dir=tmp_path / "c")


def test_no_audio_message_lists_every_accepted_extension(tmp_path, no_feature_work):
    root = write_class_folder(tmp_path / "f", classes=("a",), per_class=3)
    (root / "b").mkdir()
    (root / "b" / "notes.txt").write_text("nothing to hear")
    accepted = ", ".join(audio_suffixes())
    assert ".mp3" in accepted or not mp3_readable()
    with pytest.raises(DataError, match=rf"class folder .*b holds no audio files \({accepted}\)"):
        load_dataset("folder", "train", root, cache_dir=tmp_path / "c")


def test_fsdd_refuses_audio_other_than_wav(tmp_path, no_feature_work):
    d = tmp_path / "rec"
    d.mkdir()
    for name in ("0_george_5.wav", "1_george_5.wav"):
        sf.write(d / name, tone(500, 8000, 0.2), 8000, subtype="PCM_16")
    (d / "2_george_5.flac").write_bytes(b"fLaC")
    with pytest.raises(DataError, match=r"holds 1 audio file\(s\) this loader does not read: "
                                        r"2_george_5.flac; it reads \.wav"):
        load_dataset("fsdd", "train", d, cache_dir=tmp_path / "c")
