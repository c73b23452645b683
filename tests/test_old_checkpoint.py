"""Compatibility: a checkpoint written before recurrence existed (tests/data/old_checkpoint_dcls.pt,
a 2-epoch synthetic dcls run, 6 -> 8 -> 4, made with the code of commit 05e665f by
tests/data/make_old_checkpoint.py) still loads, rebuilds its trainer model, and exports to
the byte-identical network file that code wrote (its sha256 was recorded then)."""
import hashlib
from pathlib import Path

import numpy as np

from deployed import netx_h5
from export.float_reference import simulate_float
from export.to_lava import export_checkpoint
from trainer.checkpoint import load_checkpoint, load_checkpoint_dict
from trainer.data import dataset_from_recipe
from trainer.evaluate import model_from_checkpoint, predict

OLD = Path(__file__).parent / "data" / "old_checkpoint_dcls.pt"
OLD_SHA256 = "3708e47ac60ef15a3b72af5db18b833acb94a53dc43749c2ea8339bcdb0d6354"
# sha256 of `netx_h5.save(export_checkpoint(OLD, "loihi2")[0], path)` at commit 05e665f
EXPORT_SHA256 = "044c90c8309dbf57523b2fa882433fcbfc5a38a4ec39d33ae7957d76aaf6508e"


def test_old_checkpoint_is_the_committed_file():
    assert hashlib.sha256(OLD.read_bytes()).hexdigest() == OLD_SHA256
    assert "recurrent" not in load_checkpoint_dict(OLD)["config"]


def test_old_checkpoint_loads_and_exports_byte_identically(tmp_path):
    ck = load_checkpoint(OLD)
    assert all(L.recurrent is None for L in ck.layers)
    net, report = export_checkpoint(OLD, "loihi2")
    assert report["accuracy"]["samples"] == 40 and report["accuracy"]["float"] > 0.25
    out = tmp_path / "net.h5"
    netx_h5.save(net, out)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == EXPORT_SHA256


def test_old_checkpoint_rebuilds_its_trainer_model():
    """The trainer model built from the old config (no recurrence) gives the float
    reference's predictions on the validation split with integer delays."""
    d = load_checkpoint_dict(OLD)
    model = model_from_checkpoint(d)
    assert model.recurrent is None
    ds = dataset_from_recipe(d["data_recipe"], "val")
    ours = predict(model, ds.x, hard=True).numpy()
    ref = simulate_float(load_checkpoint(OLD), ds.x.numpy()).predictions()
    assert np.mean(ours == ref) >= 0.95 and np.mean(ours == ds.y.numpy()) > 0.25
