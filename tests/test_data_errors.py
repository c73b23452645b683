"""Every bad input gets a DataError (a ValueError) naming the problem, before any work."""
from __future__ import annotations

import pytest
import soundfile as sf

import trainer.data.audio_features as audio_features_mod
from helpers.data_fakes import tone, write_class_folder, write_rawhd, write_shd
from trainer.data import DataError, load_dataset
from trainer.data import download
from trainer.data import fsdd as fsdd_mod


def write_fsdd(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        sf.write(folder / n, tone(500, 8000, 0.2), 8000, subtype="PCM_16")
    return folder


@pytest.fixture
def no_feature_work(monkeypatch):
    """Fail the test if any features get computed."""
    def boom(*a, **k):
        raise AssertionError("features computed before the input was checked")
    monkeypatch.setattr(audio_features_mod, "features", boom)


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)


def test_unknown_dataset_lists_known_names():
    with pytest.raises(DataError, match=r"unknown dataset 'timit'; known datasets: synthetic, fsdd, rawhd, shd, ssc, folder"):
        load_dataset("timit")


def test_unknown_split_option_and_bad_numbers():
    with pytest.raises(DataError, match=r"unknown split 'valid'; use one of train, val, test"):
        load_dataset("synthetic", "valid")
    with pytest.raises(DataError, match=r"dataset 'synthetic' has no option\(s\) \['pool'\]"):
        load_dataset("synthetic", pool=5)
    with pytest.raises(DataError, match="val_fraction must be a number in"):
        load_dataset("synthetic", val_fraction=1.0)
    with pytest.raises(DataError, match="split='val' needs val_fraction > 0"):
        load_dataset("synthetic", "val", val_fraction=0.0)
    with pytest.raises(DataError, match="time_steps must be a positive integer"):
        load_dataset("synthetic", time_steps=0)
    with pytest.raises(DataError, match="synthetic takes no data_dir"):
        load_dataset("synthetic", data_dir="/tmp")


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match=r"FSDD recordings folder not found: .*nowhere"):
        load_dataset("fsdd", data_dir=tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"audio class folder not found"):
        load_dataset("folder", data_dir=tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"Heidelberg Digits folder not found"):
        load_dataset("rawhd", data_dir=tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"SHD folder not found"):
        load_dataset("shd", data_dir=tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"rawhd needs data_dir"):
        load_dataset("rawhd")


def test_fsdd_default_folder_absent_and_offline(monkeypatch, tmp_path):
    monkeypatch.setattr(fsdd_mod, "default_data_dir", lambda: tmp_path / "absent")
    monkeypatch.setattr(download, "FSDD_URL", "http://127.0.0.1:9/fsdd.zip")
    with pytest.raises(DataError, match=r"cannot download fsdd-v1.0.10.zip from http://127.0.0.1:9/fsdd.zip .*"
                                        r"recordings/\*.wav files in .*fsdd-v1.0.10.recordings, or pass --data-dir"):
        load_dataset("fsdd", cache_dir=tmp_path / "cache")


def test_no_audio_files(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no audio here")
    with pytest.raises(DataError, match=r"no \.wav files in FSDD folder .*empty"):
        load_dataset("fsdd", data_dir=tmp_path / "empty")
    with pytest.raises(DataError, match=r"no class subfolders in"):
        load_dataset("folder", data_dir=tmp_path / "empty")
    (tmp_path / "empty" / "cat").mkdir()
    (tmp_path / "empty" / "dog").mkdir()          # one class alone is refused before this
    with pytest.raises(DataError, match=r"class folder .*cat holds no audio files"):
        load_dataset("folder", data_dir=tmp_path / "empty")
    (tmp_path / "hd").mkdir()
    (tmp_path / "hd" / "audio").mkdir()
    (tmp_path / "hd" / "train_filenames.txt").write_text("\n")
    with pytest.raises(DataError, match=r"no audio files listed in .*train_filenames.txt"):
        load_dataset("rawhd", data_dir=tmp_path / "hd")


def test_fsdd_bad_file_name(tmp_path):
    d = write_fsdd(tmp_path / "rec", ["0_george_5.wav", "seven.wav"])
    with pytest.raises(DataError, match=r"FSDD file name seven.wav .* is not \{digit\}_\{speaker\}_\{index\}.wav"):
        load_dataset("fsdd", data_dir=d)


def test_corrupt_audio_named_before_any_work(tmp_path, no_feature_work):
    d = write_fsdd(tmp_path / "rec", [f"{k}_george_{i}.wav" for k in range(3) for i in range(5, 8)])
    (d / "9_george_9.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=r"unreadable or corrupt audio file .*9_george_9\.wav"):
        load_dataset("fsdd", data_dir=d, cache_dir=cache)
    assert not cache.exists() or not any(cache.iterdir())        # nothing half-written


def test_corrupt_audio_in_folder_and_rawhd(tmp_path, no_feature_work):
    root = write_class_folder(tmp_path / "f", per_class=3)
    (root / "meow" / "meow_broken.flac").write_bytes(b"fLaC but not really")
    with pytest.raises(DataError, match=r"unreadable or corrupt audio file .*meow_broken\.flac"):
        load_dataset("folder", "train", root, cache_dir=tmp_path / "c", test_percent=1)
    hd = write_rawhd(tmp_path / "hd")
    name = "lang-german_speaker-01_trial-0_digit-3.flac"
    (hd / "audio" / name).write_bytes(b"\x00" * 100)
    with pytest.raises(DataError, match=rf"unreadable or corrupt audio file .*{name}"):
        load_dataset("rawhd", "train", hd, cache_dir=tmp_path / "c")


def test_rawhd_listing_problems(tmp_path):
    hd = write_rawhd(tmp_path / "hd")
    name = "lang-english_speaker-02_trial-1_digit-0.flac"
    (hd / "audio" / name).unlink()
    with pytest.raises(DataError, match=rf"train_filenames.txt lists {name}, which is missing from"):
        load_dataset("rawhd", "train", hd)
    (hd / "test_filenames.txt").write_text("speaker-01.flac\n")
    with pytest.raises(DataError, match=r"file name 'speaker-01.flac' is not lang-"):
        load_dataset("rawhd", "test", hd)
    (hd / "test_filenames.txt").unlink()
    with pytest.raises(DataError, match=r"file list missing: .*test_filenames.txt"):
        load_dataset("rawhd", "test", hd)


@pytest.mark.parametrize("key", ["spikes/times", "spikes/units", "labels", "extra/speaker"])
def test_hdf5_without_expected_key(tmp_path, key):
    write_shd(tmp_path / "shd_train.h5", [[0.1]], [[1]], [3], [0], drop=key)
    with pytest.raises(DataError, match=rf"has no '{key}' dataset"):
        load_dataset("shd", "train", tmp_path, cache_dir=tmp_path / "c")


def test_shd_count_and_content_problems(tmp_path):
    write_shd(tmp_path / "shd_train.h5", [[0.1], [0.2]], [[1], [2]], [3, 4, 5], [0, 1])
    with pytest.raises(DataError, match=r"3 labels but 2 samples in spikes/times"):
        load_dataset("shd", "train", tmp_path)
    write_shd(tmp_path / "shd_train.h5", [[0.1], [0.2]], [[1], [2]], [3, 4], [0])
    with pytest.raises(DataError, match=r"1 entries in extra/speaker but 2 samples"):
        load_dataset("shd", "train", tmp_path)
    write_shd(tmp_path / "shd_train.h5", [[0.1], [0.2, 0.3]], [[1], [2]], [3, 4], [0, 1])
    with pytest.raises(DataError, match=r"sample 1 has 2 spike times but 1 units"):
        load_dataset("shd", "train", tmp_path)
    write_shd(tmp_path / "shd_train.h5", [[0.1], [0.2]], [[1], [700]], [3, 4], [0, 1])
    with pytest.raises(DataError, match=r"sample 1 has a unit outside 0..699"):
        load_dataset("shd", "train", tmp_path)
    write_shd(tmp_path / "shd_train.h5", [[0.1], [0.2]], [[1], [2]], [3, 20], [0, 1])
    with pytest.raises(DataError, match=r"labels must be in 0..19, got 3..20"):
        load_dataset("shd", "train", tmp_path)
    (tmp_path / "shd_test.h5").write_bytes(b"not hdf5")
    with pytest.raises(DataError, match=r"cannot open SHD file .*shd_test.h5 as HDF5"):
        load_dataset("shd", "test", tmp_path)


def test_shd_missing_file_and_bad_options(tmp_path):
    with pytest.raises(DataError, match=r"SHD file missing: .*shd_test.h5; place shd_test.h5 there"):
        load_dataset("shd", "test", tmp_path)
    with pytest.raises(DataError, match=r"pool must be a positive divisor of 700"):
        load_dataset("shd", "test", tmp_path, pool=3)
    with pytest.raises(DataError, match=r"n_mels=64 does not apply to shd"):
        load_dataset("shd", "test", tmp_path, n_mels=64)


def test_speaker_carve_needs_two_speakers(tmp_path):
    write_shd(tmp_path / "shd_train.h5", [[0.1], [0.2]], [[1], [2]], [3, 4], [7, 7])
    with pytest.raises(DataError, match=r"cannot carve a validation set by speaker: .* 1 speaker"):
        load_dataset("shd", "val", tmp_path, cache_dir=tmp_path / "c")
