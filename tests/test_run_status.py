"""trainer.run_status: a run stopped before metrics.json is unfinished, its message's resume
command really resumes it, and folders that are no training run are told apart."""
import shlex
import shutil

import pytest
import torch

import trainer
from trainer.__main__ import main as trainer_main
from trainer.checkpoint import CheckpointError
from trainer.run_status import resume_command, run_status, training_run_dir

TINY = {"dataset": "synthetic", "method": "dcls", "hidden": [16], "kernel_size": 9,
        "epochs": 3, "batch_size": 50, "num_threads": 1, "seed": 3,
        "data_options": {"n_train": 200, "n_test": 60}}


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    """A run 'killed' after epoch 2 of 3 (checkpoint.pt and last.pt, no metrics.json)."""
    out = tmp_path_factory.mktemp("status") / "run"
    trainer.train(TINY, out=out, progress=False, stop_after_epoch=2)
    return out


def command_of(message: str) -> list[str]:
    """The arguments after `python -m trainer` of the command quoted in a message."""
    cmd = shlex.split(message.split("`")[1])
    assert cmd[:4] == ["python", "-m", "trainer", "train"]
    return cmd[3:]


def test_unfinished_run_says_so_and_its_command_resumes_it(stopped, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(stopped, run)
    st = run_status(run)
    ck_epoch = torch.load(run / "checkpoint.pt", weights_only=True)["epoch"]
    assert (st.finished, st.checkpoint_epoch, st.epochs_planned) == (False, ck_epoch, 3)
    assert st.message.startswith(f"{run} stopped after epoch 2 of 3 (no metrics.json")
    assert "\n" not in st.message
    args = command_of(st.message)
    assert args[:4] == ["train", "--out", str(run), "--resume"]
    assert trainer_main(args + ["--no-progress"]) == 0      # the quoted command works as is
    done = run_status(run)
    assert done.finished and done.epochs_planned == 3
    assert done.checkpoint_epoch == torch.load(run / "checkpoint.pt", weights_only=True)["epoch"]


def test_stopped_during_the_final_evaluation(stopped, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(stopped, run)
    trainer.train(TINY, out=run, resume=True, progress=False)
    (run / "metrics.json").unlink()          # as if killed after the last epoch, before _finish
    st = run_status(run)
    assert not st.finished
    assert "trained all 3 epochs" in st.message and "(no metrics.json)" in st.message
    assert trainer_main(command_of(st.message) + ["--no-progress"]) == 0
    assert run_status(run).finished


def test_killed_before_the_first_epoch(stopped, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(stopped / "config.json", run / "config.json")
    with pytest.raises(CheckpointError, match="stopped before its first epoch ended") as e:
        run_status(run)
    assert command_of(str(e.value))[:4] == ["train", "--out", str(run), "--resume"]


def test_resume_command_round_trips_every_kind_of_value():
    from trainer.__main__ import build_parser
    from trainer.config import identity, resolve_config

    cfg = resolve_config(None, {"dale": True, "sparsity": 0.5, "method": "structure",
                                "lr": 2e-4, "hidden": [8, 4], "regrow": "random",
                                "data_dir": "my data/x", "batchnorm": False, "device": "cpu",
                                "data_options": {"n_train": 20, "weird key": "a b"}})
    a = build_parser().parse_args(shlex.split(resume_command("runs/a b", cfg))[3:])
    assert a.out == "runs/a b" and a.resume and a.device is None   # device is left to the user
    keys = ("dataset", "data_dir", "method", "sparsity", "epochs", "seed", "batch_size",
            "kernel_size", "dale")
    again = resolve_config(None, {k: getattr(a, k) for k in keys}, a.sets)
    assert identity(again) == identity(cfg) and again["data_dir"] == "my data/x"


def test_folders_that_are_no_training_run(stopped, tmp_path):
    assert training_run_dir(stopped) == stopped
    assert training_run_dir(stopped / "checkpoint.pt") == stopped
    qat = tmp_path / "qat"                      # export.qat's output: checkpoint.pt + qat.json
    qat.mkdir()
    shutil.copy(stopped / "checkpoint.pt", qat / "checkpoint.pt")
    (qat / "qat.json").write_text("{}")
    assert training_run_dir(qat) is None and training_run_dir(qat / "checkpoint.pt") is None
    with pytest.raises(CheckpointError, match="not a training run folder"):
        run_status(qat)
