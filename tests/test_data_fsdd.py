"""FSDD through load_dataset: official split sizes, validation by take, recipe, cache."""
from __future__ import annotations

import json
import time
from collections import Counter

import pytest
import torch

from trainer.data import dataset_from_recipe, load_dataset

pytestmark = pytest.mark.fsdd
MAX = 80 * 0.00099


@pytest.fixture(scope="session")
def fsdd_splits(fsdd_dir, tmp_path_factory):
    """train / val / test of the real FSDD, computed once into a temporary cache."""
    cache = tmp_path_factory.mktemp("fsdd-cache")
    t0 = time.perf_counter()
    out = {s: load_dataset("fsdd", s, fsdd_dir, cache_dir=cache) for s in ("train", "val", "test")}
    print(f"\nFSDD train+val+test features: {time.perf_counter() - t0:.1f} s")
    out["cache"] = cache
    out["dir"] = fsdd_dir
    return out


def test_split_sizes_and_tensors(fsdd_splits):
    tr, va, te = fsdd_splits["train"], fsdd_splits["val"], fsdd_splits["test"]
    assert len(te) == 300
    assert len(tr) + len(va) == 2700
    assert len(va) == 300          # round(0.1 * 45) = 5 takes per speaker x 10 digits x 6 speakers
    for ds in (tr, va, te):
        assert ds.x.dtype == torch.float32 and ds.x.shape[1:] == (100, 40)
        assert ds.y.dtype == torch.int64
        assert float(ds.x.min()) >= 0.0 and float(ds.x.max()) <= MAX + 1e-6
        assert ds.class_names == [str(d) for d in range(10)] and ds.dt_ms == 10.0
        x0, y0, m0 = ds[0]
        assert x0.shape == (100, 40) and int(y0) == int(m0["file"][0])
    assert {m["take"] for m in te.meta} == set(range(5))
    assert min(m["take"] for m in tr.meta + va.meta) == 5


def test_validation_carved_by_take_per_speaker(fsdd_splits):
    tr, va = fsdd_splits["train"], fsdd_splits["val"]
    train_files = {m["file"] for m in tr.meta}
    assert not train_files & {m["file"] for m in va.meta}
    per = Counter((m["speaker"], int(y)) for m, y in zip(va.meta, va.y))
    assert len(per) == 60 and set(per.values()) == {5}     # every speaker x digit: 5 takes
    for spk in {m["speaker"] for m in va.meta}:             # the same takes for every digit
        takes_by_digit = {}
        for m, y in zip(va.meta, va.y):
            if m["speaker"] == spk:
                takes_by_digit.setdefault(int(y), set()).add(m["take"])
        assert len({frozenset(t) for t in takes_by_digit.values()}) == 1


def test_recipe_rebuilds_and_second_load_is_cached(fsdd_splits):
    va = fsdd_splits["val"]
    json.dumps(va.recipe)
    assert va.recipe["dataset"] == "fsdd" and va.recipe["data_dir"] == str(fsdd_splits["dir"])
    again = dataset_from_recipe(va.recipe, cache_dir=fsdd_splits["cache"])
    assert torch.equal(again.x, va.x) and torch.equal(again.y, va.y) and again.meta == va.meta
    other_seed = load_dataset("fsdd", "val", fsdd_splits["dir"], seed=1, cache_dir=fsdd_splits["cache"])
    assert {m["file"] for m in other_seed.meta} != {m["file"] for m in va.meta}
    assert len(list(fsdd_splits["cache"].glob("fsdd-*.npz"))) == 2       # one per official split
    assert not list(fsdd_splits["cache"].glob("*.tmp"))


def test_held_out_speaker_never_heard_in_training(fsdd_splits):
    """test_speaker: all 500 files of one voice are the test split; train/val have none."""
    kw = {"cache_dir": fsdd_splits["cache"], "test_speaker": "theo"}
    te = load_dataset("fsdd", "test", fsdd_splits["dir"], **kw)
    tr = load_dataset("fsdd", "train", fsdd_splits["dir"], **kw)
    va = load_dataset("fsdd", "val", fsdd_splits["dir"], **kw)
    assert len(te) == 500 and {m["speaker"] for m in te.meta} == {"theo"}
    assert len(tr) + len(va) == 2500
    assert "theo" not in {m["speaker"] for m in tr.meta + va.meta}
    assert te.recipe["options"] == {"test_speaker": "theo", "val_speaker": None,
                                    "tts_voices": 0, "tts_seed": 0, "tts_flite_voices": 0}
    with pytest.raises(ValueError, match="test_speaker 'nobody' is not in FSDD folder .*george"):
        load_dataset("fsdd", "test", fsdd_splits["dir"], cache_dir=fsdd_splits["cache"],
                     test_speaker="nobody")
