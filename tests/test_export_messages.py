"""What an export and a refusal tell the user (issue 23 items 7 and 8): whether the netx
approximation matters and what --netx-exact costs, rounded accuracies, and for every profile
violation the next step: an export option that fixes it, or another network or profile."""
from __future__ import annotations

import re

import numpy as np
import pytest
from helpers.export_checkpoints import make_checkpoint, make_features, save_checkpoint

from deployed.limits import FIX_KINDS
from export.errors import ProfileViolation
from export.report import format_report
from export.to_lava import export_checkpoint


@pytest.fixture(scope="module")
def graded_run(tmp_path_factory):
    """A checkpoint whose small features leave its graded-input layer threshold-limited: the
    default export shifts that layer's weight_exp below what netx can express."""
    d = make_checkpoint(seed=9)
    d["epoch"], d["val_accuracy"] = 3, 0.6833333373069763
    path = save_checkpoint(d, tmp_path_factory.mktemp("graded") / "run")
    x, y = make_features(24, seed=10)
    return path, (x * 0.02, y)


def test_default_export_says_the_netx_approximation_matters_only_for_netx(graded_run):
    path, data = graded_run
    net, report = export_checkpoint(path, "loihi2", calibration=data[0], evaluation=data)
    shift = report["layers"][0]["quantization"]["extra_shift"]
    assert shift > 0 and not report["netx"]["complete"]
    text = format_report(report)
    assert "INCOMPLETE" not in text and "WARNING" not in text, text
    assert ("netx layers: approximate for lava-dl's netx; exact for this project's Lava graph, "
            "emulator and budget") in text
    assert (f"export with --netx-exact (fc1's weight step {2 ** shift}x coarser; compare both "
            "exports' accuracy)") in text
    # figures rounded: no float printed at full precision
    assert "(epoch 3, val accuracy 68.33%)" in text
    assert re.search(r"float model, integer delays \(export.float_reference\): \d+\.\d\d%", text)
    assert not re.search(r"\d\.\d{6,}", text), text
    # the option does what the message says: netx then reads the file exactly
    _, exact = export_checkpoint(path, "loihi2", calibration=data[0], evaluation=data,
                                 netx_exact=True)
    assert exact["netx"]["complete"]
    assert "netx layers: exact (lava-dl's netx reads the same network)" in format_report(exact)


def _graded_bits_profile(tmp_path, bits: int):
    text = open("hw_profiles/loihi2.toml").read()
    text, n = re.subn(r"(\[limits\.graded_spike_bits\]\nvalue = )24", rf"\g<1>{bits}", text)
    assert n == 1
    path = tmp_path / f"graded{bits}.toml"
    path.write_text(text.replace('name = "loihi2"', f'name = "graded{bits}"'))
    return path


def test_a_violation_an_export_option_fixes_names_the_option(graded_run, tmp_path):
    path, data = graded_run
    prof = _graded_bits_profile(tmp_path, 4)
    with pytest.raises(ProfileViolation) as e:
        export_checkpoint(path, prof, calibration=data[0], evaluation=False)
    [v] = e.value.violations
    assert v.fix_option == "--num-message-bits 4"
    assert v.fix.startswith("export option: --num-message-bits 4")
    assert str(e.value).endswith("next: export again with --num-message-bits 4")
    # and it does: the same export with that option passes
    export_checkpoint(path, prof, calibration=data[0], evaluation=False, num_message_bits=4)


def test_violations_no_option_fixes_say_which_network_or_profile(tmp_path):
    d = make_checkpoint(sizes=(4100, 2, 3), density=1.0, max_delay=5, seed=1)
    d["layers"][1]["delay"][0] = 63
    path = save_checkpoint(d, tmp_path / "run")
    with pytest.raises(ProfileViolation) as e:
        export_checkpoint(path, "loihi2", calibration=np.ones((1, 25, 4100)))
    fixes = {v.key: v for v in e.value.violations}
    assert fixes["max_delay"].fix.startswith("another network: retrain with --kernel-size 63 "
                                             "(delays 0..62)")
    assert fixes["max_fan_in"].fix.startswith("another network: fewer synapses per neuron "
                                              "(a higher --sparsity)")
    assert all(v.fix.startswith(FIX_KINDS) and not v.fix_option for v in e.value.violations)
    message = str(e.value)
    assert message.count("\n    fix: ") == len(e.value.violations)
    assert message.endswith("next: no export option fixes these; each needs another network "
                            "or profile (see each)")


def test_loihi1_and_xylo_refusals_in_the_budget_say_what_to_do(tmp_path, capsys):
    from deployed.netx_h5 import save
    from deployed.synthetic import random_network
    from lava_runtime.budget.cli import run_budget

    net = random_network((40, 12, 10), time_steps=30, max_delay=6, density=0.3, seed=3)
    save(net, tmp_path / "net.h5")
    budgets = {b.profile: b for b in run_budget(tmp_path / "net.h5", profile="all",
                                                dataset="synthetic", limit=2, progress=False)}
    text = capsys.readouterr().out
    loihi1, xylo = budgets["loihi1"], budgets["xylo-audio2"]
    assert loihi1.refused_fixes == [
        "another profile: loihi1 takes binary spikes only and this exporter sends the input "
        "features as graded spikes (e.g. loihi2 takes them)"]
    assert any("--method no-delay" in f for f in xylo.refused_fixes)
    assert any("retrain with --set n_mels=16" in f for f in xylo.refused_fixes)
    assert any(f.startswith("another network: at most 8 classes") for f in xylo.refused_fixes)
    assert len(xylo.refused_fixes) == len(xylo.refused)
    block = text[text.index("DOES NOT FIT xylo-audio2:"):]
    assert "    fix: another network: one without synaptic delays" in block
    assert xylo.refused_next in block and xylo.refused_next.startswith("next: no export option")
