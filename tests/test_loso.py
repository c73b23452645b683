"""Leave-one-speaker-out (experiments/loso.py, `heldout_speaker --all`) on a tiny FSDD-like folder:
every fold tests one speaker and validates on the next, fold files make it resumable, the
summary has the issue's schema, and one fold runs in Lava."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from experiments import heldout_speaker, loso

SPEAKERS = ("ann", "bob", "cy")
TINY = {"method": "no-delay", "hidden": [6], "kernel_size": 1, "epochs": 1, "batch_size": 8,
        "num_threads": 1}


def write_fsdd_like(folder, takes: int = 2) -> None:
    """{digit}_{speaker}_{take}.wav at 8 kHz: a harmonic tone per digit, pitch per speaker."""
    folder.mkdir(parents=True)
    t = np.arange(4000) / 8000
    for k, spk in enumerate(SPEAKERS):
        for d in range(10):
            for take in range(takes):
                f0 = (110 + 25 * d) * (1 + 0.1 * k) * (1 + 0.01 * take)
                wave = sum(np.sin(2 * np.pi * h * f0 * t) / h for h in range(1, 6))
                sf.write(folder / f"{d}_{spk}_{take}.wav", 0.2 * wave * np.hanning(t.size), 8000,
                         subtype="PCM_16")


@pytest.fixture
def fake_fsdd(tmp_path, monkeypatch):
    monkeypatch.setenv("DELAYSNN_CACHE", str(tmp_path / "cache"))
    write_fsdd_like(tmp_path / "rec")
    return tmp_path / "rec"


def test_every_speaker_is_a_fold_with_nested_validation_and_resumes(fake_fsdd, tmp_path,
                                                                    monkeypatch):
    out, res, js = tmp_path / "runs", tmp_path / "res", tmp_path / "loso.json"
    s = loso.leave_one_speaker_out([("tiny", dict(TINY))], out, res, js, lava_speaker="bob",
                                   data_dir=str(fake_fsdd), progress=False)
    assert json.loads(js.read_text()) == s
    net = s["networks"]["tiny"]
    assert [f["speaker"] for f in net["folds"]] == list(SPEAKERS) and net["complete"]
    assert [f["val_speaker"] for f in net["folds"]] == ["bob", "cy", "ann"]    # next, cyclic
    for f in net["folds"]:
        assert f["n_test"] == 20 and 0 <= f["emulator_accuracy"] <= 1
        assert 0 <= f["float_accuracy"] <= 1 and f["synapses"] > 0
        assert (f["lava_accuracy"] is not None) == (f["speaker"] == "bob")
        assert f["within_showcase_budget"] == (f["synapses"] <= 1280
                                               and f["energy_per_sample_joules"] < 2e-6)
        # deploy's fidelity bound; a fold above it is kept (allow_loss) and says so
        assert f["max_loss_bound"] == 0.5
        assert f["within_max_loss_bound"] == (f["fixed_point_loss_val"] <= 0.5 + 1e-9)
    bob = net["folds"][1]
    assert bob["lava_equals_emulator_fraction"] == 1.0
    assert net["mean_emulator_accuracy"] == pytest.approx(
        np.mean([f["emulator_accuracy"] for f in net["folds"]]))
    assert sorted(p.name for p in res.iterdir()) == [f"tiny-{x}.json" for x in SPEAKERS]
    # the test speaker is never heard: the fold's training data holds neither it nor val's
    from trainer.checkpoint import load_checkpoint
    opts = load_checkpoint(out / "tiny" / "cy" / "checkpoint.pt").data_recipe["options"]
    assert opts["test_speaker"] == "cy" and opts["val_speaker"] == "ann"

    def no_training(*a, **k):
        raise AssertionError("a finished fold was trained again")
    monkeypatch.setattr(loso, "run_fold", no_training)
    again = loso.leave_one_speaker_out([("tiny", dict(TINY))], out, res, js, lava_speaker="bob",
                                       data_dir=str(fake_fsdd), progress=False)
    assert again["networks"] == s["networks"]
    with pytest.raises(ValueError, match="tiny-ann.json.*hold another config"):
        loso.leave_one_speaker_out([("tiny", {**TINY, "hidden": [7]})], out, res, js,
                                   lava_speaker=None, data_dir=str(fake_fsdd), progress=False)


def test_cli_all_checks_its_arguments_before_work(fake_fsdd, tmp_path, capsys):
    base = ["--all", "--data-dir", str(fake_fsdd), "--out", str(tmp_path / "r"),
            "--results", str(tmp_path / "res"), "--json", str(tmp_path / "l.json")]
    assert heldout_speaker.main(base + ["--speakers", "ann,zed"]) == 2
    assert "unknown FSDD speaker(s) ['zed']" in capsys.readouterr().err
    assert heldout_speaker.main(base + ["--lava-speaker", "zed"]) == 2
    assert "lava_speaker 'zed' is not an FSDD speaker" in capsys.readouterr().err
    assert not (tmp_path / "res").exists() and not (tmp_path / "l.json").exists()
