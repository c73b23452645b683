"""The main job (make demo) end to end, at a tiny size: train (deployed method and the no-delay
baseline) -> export -> emulator + Lava -> budget; the next commands it prints are accepted by
the commands they name; its refusal to overwrite a folder that is not an earlier demo's."""
from __future__ import annotations

import json
import shlex

import pytest

from lava_runtime.demo import demo, format_summary


def check_next_command(cmd: str) -> None:
    """Parse ``cmd`` with the parser of the command it names and run the function behind it as
    far as it goes without long work: the report's input check, the whole budget, the trainer's
    config resolution (no training)."""
    import lava_runtime.__main__ as lava_cli
    import trainer.__main__ as trainer_cli
    from lava_runtime.budget.cli import run_budget
    from lava_runtime.report.build import check_inputs, report_options
    from trainer.config import resolve_config

    argv = shlex.split(cmd)
    assert argv[0] in ("python", ".venv/bin/python") and argv[1] == "-m", cmd
    if argv[2] == "lava_runtime":
        args = lava_cli.build_parser().parse_args(argv[3:])
        if args.command == "report":
            check_inputs(args.run_dir, args.out, **report_options(args))
        else:
            assert args.command == "budget", cmd
            budgets = run_budget(args.net, profile=args.profile, dataset=args.dataset,
                                 data_dir=args.data_dir, split=args.split, limit=args.limit,
                                 progress=False)
            assert len(budgets) > 1
    else:
        assert argv[2] == "trainer", cmd
        args = trainer_cli.build_parser().parse_args(argv[3:])
        cfg = resolve_config(args.config, {k: getattr(args, k) for k in
                                           ("dataset", "data_dir", "method", "epochs")}, args.sets)
        assert cfg["dataset"] == "fsdd" and cfg["data_dir"] == ""   # no folder needed: lookup/download


def test_demo_runs_every_stage_and_lava_equals_emulator(tmp_path):
    out = tmp_path / "demo"
    s = demo(out, epochs=1, hidden=8, lava_limit=3, json_path=tmp_path / "demo.json")
    for name in ("net.h5", "export.json", "run.json", "budget.json", "budget.png",
                 "summary.json", "train/checkpoint.pt", "train/metrics.json",
                 "baseline/checkpoint.pt", "baseline/metrics.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "summary.json").read_text()) == json.loads(json.dumps(s))
    assert json.loads((tmp_path / "demo.json").read_text()) == json.loads(json.dumps(s))
    a = s["accuracy"]
    assert a["lava_samples"] == 3
    assert a["lava_equals_emulator_fraction"] == 1.0
    assert 0.0 <= a["emulator"] <= 1.0 and 0.0 <= a["float_integer_delays"] <= 1.0
    # structure trains with the integer delays it deploys: no separate training-kernel figure
    assert a["float_train_kernels"] is None and "float (train kernels) n/a" in format_summary(s)
    bl = json.loads((out / "baseline" / "metrics.json").read_text())
    assert s["baseline"]["method"] == "no-delay" and s["baseline"]["epochs"] == 1
    assert s["baseline"]["test_accuracy"] == bl["test_accuracy"]
    assert s["delay_gain_points"] == round(100 * (a["float_integer_delays"] - bl["test_accuracy"]), 2)
    assert s["tau"] == 2.0 and s["seconds"]["baseline_train_s"] > 0
    # the printed next steps work on this demo's output
    printed = format_summary(s)
    assert len(s["next_commands"]) == 3
    for cmd in s["next_commands"]:
        assert cmd in printed
        check_next_command(cmd)
    # the demo folder itself is not a run folder: the report names the one to pass
    from lava_runtime.report.build import check_inputs
    with pytest.raises(ValueError, match="is a demo's output folder; its trained run is .*train: pass that"):
        check_inputs(out)
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


def test_demo_refuses_bad_arguments_before_work(tmp_path):
    with pytest.raises(ValueError, match="no-delay is the baseline"):
        demo(tmp_path / "d", method="no-delay")
    with pytest.raises(ValueError, match="tau"):
        demo(tmp_path / "d", tau=-1.0)
    with pytest.raises(ValueError, match=r"--json .*must be a \.json file in an existing folder"):
        demo(tmp_path / "d", json_path=tmp_path / "nowhere" / "demo.json")
    assert not (tmp_path / "d").exists()
