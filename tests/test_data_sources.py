"""rawhd (fake FLAC folder), folder (class subfolders) and shd (fake HDF5) sources."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from helpers.data_fakes import write_class_folder, write_rawhd, write_shd
from trainer.data import DataError, dataset_from_recipe, load_dataset
from trainer.data.folder import in_test
from trainer.data.shd import bin_spikes

MAX = 80 * 0.00099


def test_rawhd_labels_speakers_and_validation_by_speaker(tmp_path):
    root = write_rawhd(tmp_path / "hd")
    cache = tmp_path / "cache"
    tr = load_dataset("rawhd", "train", root, cache_dir=cache, val_fraction=0.3)
    va = load_dataset("rawhd", "val", root, cache_dir=cache, val_fraction=0.3)
    te = load_dataset("rawhd", "test", root, cache_dir=cache)
    assert len(tr) + len(va) == 20 and len(te) == 4
    assert te.class_names[:2] == ["english-0", "english-1"] and te.class_names[10] == "german-0"
    assert len(te.class_names) == 20
    for ds in (tr, va, te):
        assert ds.x.shape[1:] == (100, 40) and ds.x.dtype == torch.float32
        assert 0 <= float(ds.x.min()) and float(ds.x.max()) <= MAX + 1e-6
        for m, y in zip(ds.meta, ds.y.tolist()):
            digit = int(m["file"].split("digit-")[1][0])
            assert y == digit + 10 * (m["language"] == "german")
    # whole speakers held out: round(0.3 * 3) = 1 speaker
    val_speakers = {m["speaker"] for m in va.meta}
    assert len(val_speakers) == 1 and not val_speakers & {m["speaker"] for m in tr.meta}
    assert len(va) == (4 if val_speakers == {"03"} else 8)   # speaker 03 has only trial 0 in train
    json.dumps(tr.recipe)
    assert torch.equal(dataset_from_recipe(tr.recipe, cache_dir=cache).x, tr.x)


def test_folder_source_classes_and_hashed_split(tmp_path):
    root = write_class_folder(tmp_path / "animals")
    cache = tmp_path / "cache"
    tr = load_dataset("folder", "train", root, cache_dir=cache, val_fraction=0.0)
    te = load_dataset("folder", "test", root, cache_dir=cache)
    assert tr.class_names == ["bark", "meow", "moo"]
    assert len(tr) + len(te) == 30
    expected_test = {f"{c}/{c}_{i}.wav" for c in tr.class_names for i in range(10)
                     if in_test(f"{c}/{c}_{i}.wav", 20)}
    assert {m["file"] for m in te.meta} == expected_test
    assert all(m["speaker"] is None for m in tr.meta)
    for m, y in zip(tr.meta, tr.y.tolist()):
        assert tr.class_names[y] == m["file"].split("/")[0]
    # split does not depend on what else is in the folder: deterministic per path
    assert in_test("bark/bark_0.wav", 20) == in_test("bark/bark_0.wav", 20)
    te50 = load_dataset("folder", "test", root, cache_dir=cache, test_percent=50)
    assert len(te50) > len(te)


def test_shd_spike_lands_in_known_bin_and_channel(tmp_path):
    times = [[0.0305, 0.03, 0.02999, 0.9995, 1.2, 0.0, 0.0001],
             [0.5]]
    units = [[12, 12, 699, 3, 5, 0, 0], [42]]
    write_shd(tmp_path / "shd_train.h5", times, units, labels=[4, 17], speakers=[1, 2])
    write_shd(tmp_path / "shd_test.h5", times, units, labels=[4, 17], speakers=[1, 2])
    ds = load_dataset("shd", "test", tmp_path, cache_dir=tmp_path / "cache")
    assert ds.x.shape == (2, 100, 700) and ds.x.dtype == torch.float32
    x = ds.x[0].numpy()
    assert x[3, 12] == 2.0              # 0.0305 s and 0.03 s (exactly on the boundary) -> step 3
    assert x[2, 699] == 1.0             # 0.02999 s -> step 2
    assert x[99, 3] == 1.0              # 0.9995 s -> last step
    assert x[0, 0] == 2.0               # 0 s and 0.1 ms -> step 0
    assert x.sum() == 6.0               # 1.2 s is past 100 steps: cropped
    assert ds.x[1, 50, 42] == 1.0 and ds.x[1].sum() == 1.0
    assert ds.y.tolist() == [4, 17] and [m["speaker"] for m in ds.meta] == ["1", "2"]
    assert ds.class_names[17] == "german-7"
    pooled = load_dataset("shd", "test", tmp_path, cache_dir=tmp_path / "cache", pool=5, time_steps=120)
    assert pooled.x.shape == (2, 120, 140)
    assert pooled.x[0, 3, 2] == 2.0 and pooled.x[0, 2, 139] == 1.0 and pooled.x[0, 119, 1] == 0.0
    assert pooled.x[0].sum() == 6.0      # 1.2 s = step 120: still past the end
    counts = bin_spikes([0.015, 0.016], [7, 9], time_steps=4, pool=5)   # units 7, 9 -> channel 1
    expected = np.zeros((4, 140), dtype=np.float32)
    expected[1, 1] = 2.0
    np.testing.assert_array_equal(counts, expected)


def test_shd_validation_by_speaker(tmp_path):
    n = 12
    write_shd(tmp_path / "shd_train.h5", [[0.01 * i] for i in range(n)], [[i] for i in range(n)],
              labels=[i % 20 for i in range(n)], speakers=[i % 4 for i in range(n)])
    tr = load_dataset("shd", "train", tmp_path, cache_dir=tmp_path / "c", val_fraction=0.25)
    va = load_dataset("shd", "val", tmp_path, cache_dir=tmp_path / "c", val_fraction=0.25)
    assert len(tr) == 9 and len(va) == 3 and len({m["speaker"] for m in va.meta}) == 1
    assert not {m["speaker"] for m in va.meta} & {m["speaker"] for m in tr.meta}


SSC_WORDS = ["backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward",
             "four", "go", "happy", "house", "learn", "left", "marvin", "nine", "no", "off", "on",
             "one", "right", "seven", "sheila", "six", "stop", "three", "tree", "two", "up",
             "visual", "wow", "yes", "zero"]


def test_ssc_reads_the_shd_layout_with_35_classes_and_its_own_validation_file(tmp_path):
    """SSC: same binning as SHD, labels 0..34 named by extra/keys, split "val" is ssc_valid.h5
    (no carving), extra/speaker optional; labels past 34 and missing files are refused."""
    times, units = [[0.0305, 0.5], [0.02999]], [[12, 3], [699]]
    write_shd(tmp_path / "ssc_train.h5", times, units, labels=[0, 34], speakers=[1, 2],
              keys=SSC_WORDS)
    write_shd(tmp_path / "ssc_valid.h5", times[:1], units[:1], labels=[20], speakers=[0],
              drop="extra/speaker", keys=SSC_WORDS)
    tr = load_dataset("ssc", "train", tmp_path, cache_dir=tmp_path / "c")
    assert tr.x.shape == (2, 100, 700) and tr.y.tolist() == [0, 34]
    assert tr.x[0, 3, 12] == 1.0 and tr.x[0, 50, 3] == 1.0 and tr.x[1, 2, 699] == 1.0
    assert len(tr.class_names) == 35 and tr.class_names[34] == "zero"
    assert tr.recipe["val_strategy"] == "official" and tr.recipe["n_classes"] == 35
    va = load_dataset("ssc", "val", tmp_path, cache_dir=tmp_path / "c", pool=5)
    assert va.x.shape == (1, 100, 140) and va.y.tolist() == [20]
    assert va.meta[0] == {"speaker": None, "file": "ssc_valid.h5#0"}
    with pytest.raises(DataError, match=r"SSC file missing: .*ssc_test.h5"):
        load_dataset("ssc", "test", tmp_path)
    write_shd(tmp_path / "ssc_test.h5", times[:1], units[:1], labels=[35], speakers=[0])
    with pytest.raises(DataError, match=r"SSC file .*ssc_test.h5: labels must be in 0..34"):
        load_dataset("ssc", "test", tmp_path)
