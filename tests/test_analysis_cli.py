"""`trainer.analyze` end to end: analysis.json, figures, before/after, bad input."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.image import imread

from helpers.analysis_checkpoints import K, checkpoint, write_run
from trainer.analysis import figures
from trainer.checkpoint import CheckpointError
from trainer.analyze import analyze, main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    run = write_run(tmp_path_factory.mktemp("run"))
    result = analyze(run, n_shuffles=100, n_neurons=9)
    return run, result


def _png(path: Path) -> np.ndarray:
    assert path.is_file(), path
    return imread(path)


def _assert_not_blank(img: np.ndarray) -> None:
    rgb = img[..., :3].reshape(-1, 3)
    packed = (rgb * 255).round().astype(np.uint32) @ np.array([1 << 16, 1 << 8, 1], np.uint32)
    assert np.unique(packed).size > 20  # distinct colours
    assert (rgb.min(axis=1) < 0.5).mean() > 0.01  # a real share of non-white pixels


def test_json_reports_trained_and_before_side_by_side(analysed):
    run, result = analysed
    on_disk = json.loads((run / "analysis" / "analysis.json").read_text())
    assert on_disk == result
    assert result["before_checkpoint"] == str((run / "checkpoint_init.pt").resolve())
    assert result["kernel_size"] == K and result["kernel_size_source"].startswith("config")
    assert [l["name"] for l in result["layers"]] == ["fc1", "readout"]
    fc1 = result["layers"][0]
    for which in ("trained", "before"):
        s = fc1[which]
        for key in ("observed_fraction", "shuffle_mean", "shuffle_std", "z", "n_synapses"):
            assert s[key] is not None, (which, key)
        assert s["n_synapses"] == 32 * 100 and s["n_shuffles"] == 100
        assert sum(s["connections_per_delay"]["total"]) == s["n_synapses_listed"] == 3200
    assert fc1["trained"]["z"] > 10          # clustered signs
    assert abs(fc1["before"]["z"]) < 3       # random signs at the same density
    assert len(fc1["receptive_field_neurons"]) == 9
    assert not list((run / "analysis").glob(".*"))  # no temp files left behind


def test_figures_render_with_expected_size(analysed):
    run, result = analysed
    out = run / "analysis"
    files = result["files"]
    assert files["receptive_fields"] == {"fc1": "receptive_fields_fc1.png",
                                         "readout": "receptive_fields_readout.png"}
    shown = {l["name"]: len(l["receptive_field_neurons"]) for l in result["layers"]}
    assert shown == {"fc1": 9, "readout": 5}  # the readout has only 5 neurons
    n_in = {"fc1": 40, "readout": 32}  # helpers.analysis_checkpoints: 40 channels, 32 hidden
    for name in ("fc1", "readout"):
        w, h = figures.mosaic_size_px(shown[name], n_in[name], K)
        for f in (files["receptive_fields"][name], files["receptive_fields_before"][name]):
            img = _png(out / f)
            assert img.shape == (h, w, 4)
            _assert_not_blank(img)
    # the trained mosaic shows both signs: red (excitatory) and blue (inhibitory) pixels
    rgb = _png(out / files["receptive_fields"]["fc1"])[..., :3]
    red = (rgb[..., 0] > 0.7) & (rgb[..., 2] < 0.5)
    blue = (rgb[..., 2] > 0.7) & (rgb[..., 0] < 0.5)
    assert red.sum() > 500 and blue.sum() > 500
    w2, h2 = figures.per_layer_size_px(2, 2)
    assert _png(out / files["delay_histograms"]).shape == (h2, w2, 4)
    w1, h1 = figures.per_layer_size_px(2)
    for key in ("connections_per_delay", "ei_clustering"):
        img = _png(out / files[key])
        assert img.shape == (h1, w1, 4)
        _assert_not_blank(img)


def test_same_inputs_give_identical_json(analysed, tmp_path):
    run, result = analysed
    again = analyze(run, tmp_path / "again", n_shuffles=100, n_neurons=9)
    assert again == result
    assert ((tmp_path / "again" / "analysis.json").read_bytes()
            == (run / "analysis" / "analysis.json").read_bytes())


def test_explicit_before_and_no_before(tmp_path):
    run = write_run(tmp_path / "run", init=None)
    other = tmp_path / "init.pt"
    torch.save(checkpoint("clustered", seed=7, epoch=0), other)
    res = analyze(run, tmp_path / "a", before=other, n_shuffles=20, n_neurons=1)
    assert res["before_checkpoint"] == str(other.resolve()) and res["before_epoch"] == 0
    assert res["layers"][0]["before"]["z"] > 10
    res = analyze(run, tmp_path / "b", n_shuffles=20, n_neurons=1)  # no checkpoint_init.pt
    assert res["before_checkpoint"] is None and res["layers"][0]["before"] is None
    assert res["files"]["receptive_fields_before"] == {}
    assert figures.per_layer_size_px(2, 1)[::-1] == imread(
        tmp_path / "b" / "delay_histograms.png").shape[:2]


def _bad(tmp_path: Path, mutate) -> Path:
    run = tmp_path / "bad"
    run.mkdir()
    ck = checkpoint("random")
    mutate(ck)
    torch.save(ck, run / "checkpoint.pt")
    return run


@pytest.mark.parametrize("mutate, message", [
    (lambda ck: ck.update(format="other"), "not a delaysnn checkpoint .*'delaysnn-checkpoint'"),
    (lambda ck: ck.update(version=2), "version 2 is not supported"),
    (lambda ck: ck.update(layers=[]), "'layers' must be a non-empty list"),
    (lambda ck: ck["layers"][0].pop("delay"), r"layer 0 \(fc1\): missing field 'delay'"),
    (lambda ck: ck["layers"][0].update(pre=ck["layers"][0]["pre"] + 40),
     r"'pre' indices must lie in \[0, 40\)"),
    (lambda ck: ck["layers"][1].update(delay=ck["layers"][1]["delay"][:-1]),
     r"'delay' has shape \(\d+,\), expected \(\d+,\) like 'pre'"),
    (lambda ck: ck["config"].update(kernel_size=10),
     r"delay 24 steps but config\['kernel_size'\] = 10 allows only 0..9"),
    (lambda ck: ck["layers"][0]["weight"].__setitem__(0, float("nan")),
     "weights contain NaN or inf"),
])
def test_bad_checkpoint_is_refused_before_any_output(tmp_path, mutate, message):
    run = _bad(tmp_path, mutate)
    with pytest.raises(CheckpointError, match=message):
        analyze(run, n_shuffles=10)
    assert not (run / "analysis").exists()


def test_missing_run_and_mismatched_before(tmp_path):
    with pytest.raises(CheckpointError, match="run folder not found"):
        analyze(tmp_path / "nope")
    run = write_run(tmp_path / "run", init=None)
    with pytest.raises(CheckpointError, match="checkpoint .*missing.pt does not exist"):
        analyze(run, before=tmp_path / "missing.pt")
    other = tmp_path / "other.pt"
    torch.save(checkpoint("random", hidden=16), other)
    with pytest.raises(CheckpointError, match="must come from the same network"):
        analyze(run, before=other)
    with pytest.raises(ValueError, match="n_neurons .* must be >= 1"):
        analyze(run, n_neurons=0)
    assert not (run / "analysis").exists()


def test_cli_error_exit_code(tmp_path, capsys):
    assert main([str(tmp_path), "--shuffles", "1"]) == 2
    err = capsys.readouterr().err
    assert "n_shuffles must be >= 2" in err and len(err.splitlines()) == 1


def test_cli_runs_as_module(tmp_path):
    run = write_run(tmp_path / "run")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "trainer.analyze", str(run), "--out", str(out),
                           "--shuffles", "20", "--neurons", "4"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "fc1        trained" in proc.stdout and "fc1        before" in proc.stdout
    data = json.loads((out / "analysis.json").read_text())
    assert data["statistic"]["n_shuffles"] == 20
    assert sorted(p.name for p in out.glob("*.png")) == sorted(
        ["receptive_fields_fc1.png", "receptive_fields_fc1_before.png",
         "receptive_fields_readout.png", "receptive_fields_readout_before.png",
         "delay_histograms.png", "connections_per_delay.png", "ei_clustering.png"])
