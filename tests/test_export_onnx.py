"""ONNX export of the float model with integer delays agrees with torch and the float reference."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from export import to_onnx
from trainer.checkpoint import load_checkpoint
from export.errors import ExportError
from export.float_reference import simulate_float
from helpers.export_checkpoints import make_checkpoint, make_features, save_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return save_checkpoint(make_checkpoint(sizes=(12, 16, 5), time_steps=20, multi=3, seed=21),
                           tmp_path_factory.mktemp("onnx") / "run")


def test_onnx_matches_torch_and_float_reference(ckpt, tmp_path, capsys):
    out = tmp_path / "model.onnx"
    assert to_onnx.main([str(ckpt.parent), "--out", str(out)]) == 0
    assert "max abs difference" in capsys.readouterr().out
    x, _ = make_features(6, time_steps=20, seed=22)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(["readout_v"], {"features": x})[0]
    ck = load_checkpoint(ckpt)
    with torch.no_grad():
        ref = to_onnx.DelayLIFNet(ck, 20)(torch.tensor(x)).numpy()
    assert got.shape == (6, 20, 5)
    assert np.abs(got - ref).max() < 1e-4
    fr = simulate_float(ck, x, keep_spikes=True)
    assert fr.spikes[0].sum() > 0
    assert np.abs(got - fr.readout_v).max() < 1e-3
    assert np.array_equal(fr.predictions(), fr.scores().argmax(1))


def test_report_and_errors(ckpt, tmp_path):
    r = to_onnx.export_onnx(ckpt, tmp_path / "m.onnx", n_check=2)
    assert r["max_abs_diff"] < 1e-4 and r["time_steps"] == 20 and r["n_nodes"] > 20
    with pytest.raises(ExportError, match="output folder .* does not exist"):
        to_onnx.export_onnx(ckpt, tmp_path / "nope" / "m.onnx")


def test_mismatch_above_tolerance_fails_and_writes_nothing(ckpt, tmp_path, capsys, monkeypatch):
    class Skewed(ort.InferenceSession):  # onnxruntime output off by 0.5 everywhere
        def run(self, *args, **kwargs):
            return [o + 0.5 for o in super().run(*args, **kwargs)]

    monkeypatch.setattr(ort, "InferenceSession", Skewed)
    out = tmp_path / "model.onnx"
    assert to_onnx.main([str(ckpt.parent), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "max abs difference 0.5" in err and "exceeds the tolerance 0.0001" in err
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temp file
    # a tolerance above the skew (1 x max(1, |v|) >= 1 > 0.5) lets it through
    assert to_onnx.main([str(ckpt.parent), "--out", str(out), "--tolerance", "1"]) == 0
    assert out.is_file()
