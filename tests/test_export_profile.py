"""The profile check refuses networks that do not fit, naming every violation, writing nothing."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from export import to_lava
from export.errors import ProfileViolation
from deployed.limits import check_numeric
from export.to_lava import export_checkpoint
from helpers.export_checkpoints import make_checkpoint, make_features, save_checkpoint
from hw_profiles import ProfileError


def test_delay_63_and_fan_in_refused_with_every_violation(tmp_path):
    d = make_checkpoint(sizes=(4100, 2, 3), density=1.0, max_delay=5, seed=1)
    d["layers"][1]["delay"][0] = 63  # readout layer: one synapse at delay 63
    d["data_recipe"]["n_channels"] = 4100
    path = save_checkpoint(d, tmp_path / "run")
    out = tmp_path / "net.h5"
    with pytest.raises(ProfileViolation) as e:
        export_checkpoint(path, "loihi2", calibration=np.ones((1, 25, 4100)))
    keys = {(v.layer, v.key, v.value, v.limit) for v in e.value.violations}
    assert ("fc2", "max_delay", 63, 62) in keys
    assert ("fc1", "max_fan_in", 4100, 4096) in keys
    assert "fc2: max_delay = 63 exceeds limit 62" in str(e.value)
    assert "fc1: max_fan_in = 4100 exceeds limit 4096" in str(e.value)
    # the CLI refuses before writing anything
    rc = to_lava.main([str(path.parent), "--profile", "loihi2", "--out", str(out), "--no-eval"])
    assert rc == 2 and not out.exists() and list(tmp_path.iterdir()) == [tmp_path / "run"]


def test_graded_input_refused_on_loihi1(tmp_path):
    path = save_checkpoint(make_checkpoint(), tmp_path)
    with pytest.raises(ProfileViolation, match=r"input: graded_spike_bits = 8 exceeds limit 0"):
        export_checkpoint(path, "loihi1", calibration=make_features(4)[0])


def test_unknown_profile_lists_known(tmp_path):
    path = save_checkpoint(make_checkpoint(), tmp_path)
    with pytest.raises(ProfileError, match="unknown hardware profile 'loihi9'.*loihi2"):
        export_checkpoint(path, "loihi9", calibration=make_features(4)[0])


def test_numeric_check_catches_weights_lava_would_change(tmp_path):
    from hw_profiles import load_profile
    path = save_checkpoint(make_checkpoint(), tmp_path)
    x, y = make_features(8)
    net, _ = export_checkpoint(path, "loihi2", calibration=x, evaluation=False)
    assert check_numeric(net, load_profile("loihi2")) == []
    net.layers[0].weight[:3] = 301  # out of range and odd: Lava would clip and truncate
    net.layers[1].neurons.vth = 2 ** 17
    found = {(v.layer, v.key) for v in check_numeric(net, load_profile("loihi2"))}
    assert found == {("fc1", "weight_bits"), ("fc2", "vth_bits")}
