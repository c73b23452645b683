"""The main job (make demo) end to end, at a tiny size: train -> export -> emulator + Lava ->
budget, and its refusal to overwrite a folder that is not an earlier demo's."""
from __future__ import annotations

import json

import pytest

from lava_runtime.demo import demo


def test_demo_runs_every_stage_and_lava_equals_emulator(tmp_path):
    out = tmp_path / "demo"
    s = demo(out, epochs=1, hidden=8, lava_limit=3)
    for name in ("net.h5", "export.json", "run.json", "budget.json", "budget.png",
                 "summary.json", "train/checkpoint.pt", "train/metrics.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "summary.json").read_text()) == json.loads(json.dumps(s))
    a = s["accuracy"]
    assert a["lava_samples"] == 3
    assert a["lava_equals_emulator_fraction"] == 1.0
    assert 0.0 <= a["emulator"] <= 1.0 and 0.0 <= a["float_integer_delays"] <= 1.0
    b = s["budget"]
    assert b["profile"] == "loihi2" and b["cores"] == 1 and not b["refused"]
    e = b["energy_per_sample_joules"]
    assert e["total"] == pytest.approx(sum(e["breakdown"].values()))
    # a second run replaces the earlier demo's output
    demo(out, epochs=1, hidden=8, lava_limit=1)
    assert json.loads((out / "summary.json").read_text())["accuracy"]["lava_samples"] == 1


def test_demo_refuses_a_folder_that_is_not_a_demo(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not an earlier demo's"):
        demo(tmp_path, epochs=1, hidden=8, lava_limit=1)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_demo_refuses_unknown_profile_before_work(tmp_path):
    with pytest.raises(Exception, match="loihi2"):  # the error lists the known profiles
        demo(tmp_path / "d", profile="loihi9")
    assert not (tmp_path / "d").exists()
