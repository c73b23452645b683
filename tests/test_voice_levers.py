"""The lever screen (experiments/voice_levers.py) on a tiny FSDD-like folder: one fold, a lever is
kept only when it beats the baseline on validation, runs are reused, the JSON says it all."""
from __future__ import annotations

import json
import shutil

import pytest
from test_loso import TINY, write_fsdd_like

from delaysnn.options import help_problems
from experiments import voice_levers as vl


@pytest.fixture
def fake_fsdd(tmp_path, monkeypatch):
    monkeypatch.setenv("DELAYSNN_CACHE", str(tmp_path / "cache"))
    write_fsdd_like(tmp_path / "rec")
    return tmp_path / "rec"


def tiny_config(tmp_path) -> str:
    lines = [f"{k} = {json.dumps(v)}" for k, v in {**TINY, "dataset": "fsdd"}.items()]
    (tmp_path / "tiny.toml").write_text("\n".join(lines) + "\n")
    return str(tmp_path / "tiny.toml")


@pytest.mark.skipif(shutil.which("espeak-ng") is None,
                    reason="espeak-ng is not installed (sh tools/ensure_espeak.sh)")
def test_screen_selects_on_validation_and_reuses_runs(fake_fsdd, tmp_path, monkeypatch):
    monkeypatch.setitem(vl.LEVERS, "tts-only", {"dataset": "tts-digits",
                                                "data_options": {"voices": 4, "test_voices": 1}})
    cfg, js = tiny_config(tmp_path), tmp_path / "levers.json"
    r = vl.screen(cfg, tmp_path / "runs", js, speaker="cy",
                  levers=["norm-pcen", "vtlp", "tts-only"], min_gain=-100.0,
                  data_dir=str(fake_fsdd), progress=False)
    assert json.loads(js.read_text()) == r
    assert (r["test_speaker"], r["val_speaker"]) == ("cy", "ann")            # next, cyclic
    assert [lv["name"] for lv in r["levers"]] == ["baseline", "norm-pcen", "vtlp", "tts-only"]
    # the kept levers that train on FSDD, together; the winner is the best on validation
    comb = r["combined"]
    assert comb["name"] == "norm-pcen+vtlp" and comb["sets"] == {"frontend_norm": "pcen",
                                                                 "augment_vtlp": 0.1}
    assert (tmp_path / "runs" / "combined-norm-pcen+vtlp-s0" / "metrics.json").is_file()
    cands = [lv for lv in r["levers"] if lv["kept"]] + [comb]
    assert r["winner"]["val_accuracy"] == max(c["val_accuracy"] for c in cands)
    assert r["winner"]["name"] in [c["name"] for c in cands]
    base = r["levers"][0]["val_accuracy"]
    for lv in r["levers"]:
        assert lv["gain_points"] == pytest.approx(100 * (lv["val_accuracy"] - base))
        assert lv["kept"] == (lv["name"] != "baseline")                     # min_gain -100
        assert len(lv["runs"]) == 1 and 0 <= lv["test_accuracy"] <= 1
    tts = r["levers"][3]["runs"][0]
    assert "tts_val_accuracy" in tts                                         # on synthetic voices
    assert set(r["host_cost"]["norms"]) == {"none", "utterance", "pcen"}
    assert all(v["ms_per_utterance"] > 0 for v in r["host_cost"]["norms"].values())
    spread = r["speaker_spread"]["speakers"]                  # pitch rises ann -> bob -> cy
    assert spread["ann"]["centroid_band_median"] < spread["bob"]["centroid_band_median"] \
        < spread["cy"]["centroid_band_median"] and spread["ann"]["recordings"] == 20
    from trainer.checkpoint import load_checkpoint
    rec = load_checkpoint(tmp_path / "runs" / "norm-pcen-s0" / "checkpoint.pt").data_recipe
    assert rec["frontend"]["norm"] == "pcen" and rec["options"]["val_speaker"] == "ann"

    import trainer

    def no_training(*a, **k):
        raise AssertionError("a finished lever run was trained again")
    monkeypatch.setattr(trainer, "train", no_training)
    again = vl.screen(cfg, tmp_path / "runs", None, speaker="cy", levers=["norm-pcen"],
                      min_gain=1.0, data_dir=str(fake_fsdd), progress=False)
    assert again["levers"][1]["val_accuracy"] == r["levers"][1]["val_accuracy"]
    assert again["levers"][1]["kept"] == (again["levers"][1]["gain_points"] > 1.0)


def test_bad_arguments_fail_before_any_training(fake_fsdd, tmp_path, capsys):
    base = ["--data-dir", str(fake_fsdd), "--out", str(tmp_path / "r")]
    assert vl.main(base + ["--levers", "louder"]) == 2
    assert "unknown lever(s) ['louder']" in capsys.readouterr().err
    assert vl.main(base + ["--speaker", "zed"]) == 2
    assert "unknown FSDD speaker 'zed'" in capsys.readouterr().err
    assert vl.main(base + ["--seeds", "a"]) == 2
    with pytest.raises(ValueError, match="augment_vtlp"):
        vl.merge_levers([{"augment_vtlp": 0.1}, {"augment_vtlp": 0.2}])
    with pytest.raises(ValueError, match="dataset"):
        vl.merge_levers([vl.LEVERS["vtlp"], vl.LEVERS["tts-only"]])
    assert not (tmp_path / "r").exists()
    assert help_problems(vl.build_parser()) == []
