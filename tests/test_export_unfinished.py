"""An interrupted training run (checkpoint.pt, no metrics.json) is not exported or deployed as
if it had finished: refused with the resume command, unless --allow-unfinished, and then the
export report says so."""
import json
import shutil

import pytest

import trainer
from export.errors import ExportError
from export.to_lava import export_checkpoint
from export.to_lava import main as export_main

TINY = {"dataset": "synthetic", "method": "dcls", "hidden": [8], "kernel_size": 5,
        "epochs": 3, "batch_size": 50, "num_threads": 1, "time_steps": 40,
        "data_options": {"n_train": 100, "n_test": 20}}


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    out = tmp_path_factory.mktemp("unfinished") / "run"
    trainer.train(TINY, out=out, progress=False, stop_after_epoch=2)
    return out


def test_cli_refuses_an_unfinished_run_and_writes_nothing(stopped, tmp_path, capsys):
    out, js = tmp_path / "net.h5", tmp_path / "export.json"
    rc = export_main([str(stopped), "--out", str(out), "--json", str(js), "--no-eval"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and not out.exists() and not js.exists()
    assert "\n" not in err
    assert err.startswith(f"error: {stopped} stopped after epoch 2 of 3 (no metrics.json")
    assert f"python -m trainer train --out {stopped} --resume" in err
    assert "--allow-unfinished" in err
    # the checkpoint file inside the run folder is the same run
    rc = export_main([str(stopped / "checkpoint.pt"), "--out", str(out), "--no-eval"])
    assert rc == 2 and "stopped after epoch 2 of 3" in capsys.readouterr().err


def test_cli_allow_unfinished_exports_and_records_it(stopped, tmp_path, capsys):
    import torch

    out, js = tmp_path / "net.h5", tmp_path / "export.json"
    rc = export_main([str(stopped), "--out", str(out), "--json", str(js), "--no-eval",
                      "--max-calibration", "16", "--allow-unfinished"])
    assert rc == 0 and out.is_file()
    ck = json.loads(js.read_text())["checkpoint"]
    epoch = torch.load(stopped / "checkpoint.pt", weights_only=True)["epoch"]
    assert ck["finished"] is False and ck["epoch"] == epoch and ck["epochs_planned"] == 3
    assert "WARNING: " in capsys.readouterr().out


def test_finished_run_is_recorded_as_finished(stopped, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(stopped, run)
    trainer.train(TINY, out=run, resume=True, progress=False)
    _, rep = export_checkpoint(run, evaluation=False, max_calibration=16)
    assert rep["checkpoint"]["finished"] is True and rep["checkpoint"]["epochs_planned"] == 3
    assert not any("stopped" in w for w in rep["warnings"])


def test_deploy_needs_the_same_flag(stopped):
    from lava_runtime.pipeline import deploy

    with pytest.raises(ExportError, match="stopped after epoch 2 of 3"):
        deploy(stopped, lava_limit=0)
    d = deploy(stopped, lava_limit=0, allow_unfinished=True, max_calibration=16)
    assert d.export_report["checkpoint"]["finished"] is False
