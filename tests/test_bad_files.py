"""Every command refuses an unusable input file with ONE line naming the file and what is wrong,
a non-zero exit code and no traceback: network files (HDF5), checkpoints, config and profile
TOML, JSON. Each CLI is called through its main() (the error path is the same in a fresh
interpreter; one subprocess test checks that too)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from deployed import netx_h5
from helpers.export_checkpoints import make_checkpoint, save_checkpoint
from deployed.synthetic import random_network

REPO = Path(__file__).resolve().parents[1]


def one_line_error(capsys, main, argv) -> tuple[int, str]:
    """Run a CLI main(argv); return (exit code, its only stderr line)."""
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's parser.exit
        code = e.code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return code, lines[0]


def lava_runtime_main(argv):
    from lava_runtime.__main__ import main
    return main(argv)


def trainer_main(argv):
    from trainer.__main__ import main
    return main(argv)


def analyze_main(argv):
    from trainer.analyze import main
    return main(argv)


def to_lava_main(argv):
    from export.to_lava import main
    return main(argv)


def to_onnx_main(argv):
    from export.to_onnx import main
    return main(argv)


# ---------------------------------------------------------------- network files (net.h5)

@pytest.fixture(scope="module")
def good_h5(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("net") / "net.h5"
    netx_h5.save(random_network((6, 8, 3), time_steps=10, max_delay=4, seed=1), path)
    return path


def _not_hdf5(good: Path, path: Path) -> None:
    path.write_text("this is a text file\n")


def _truncated(good: Path, path: Path) -> None:
    data = good.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _foreign(good: Path, path: Path) -> None:
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(3)


def _future_version(good: Path, path: Path) -> None:
    shutil.copy(good, path)
    with h5py.File(path, "a") as f:
        f["delaysnn"].attrs["version"] = 99


def _damaged(good: Path, path: Path) -> None:
    shutil.copy(good, path)
    with h5py.File(path, "a") as f:
        del f["delaysnn/layers/0/pre"]


NET_CASES = {
    "not_hdf5": (_not_hdf5, "is not an HDF5 file"),
    "truncated": (_truncated, "is a truncated HDF5 file"),
    "not_from_export": (_foreign, "was not written by export.to_lava"),
    "unknown_version": (_future_version, "format version 99; this code reads versions 1, 2"),
    "damaged": (_damaged, "is damaged or incomplete ("),  # then h5py's words, naming 'pre'
}


@pytest.mark.parametrize("command", ["run", "budget"])
@pytest.mark.parametrize("case", list(NET_CASES))
def test_bad_network_file(case, command, good_h5, tmp_path, capsys):
    make, message = NET_CASES[case]
    bad = tmp_path / "net.h5"
    make(good_h5, bad)
    code, line = one_line_error(capsys, lava_runtime_main, [command, str(bad)])
    assert code == 2
    assert line.startswith(f"error: network file {bad} ") and message in line
    if case == "damaged":
        assert "'pre'" in line


def test_bad_network_file_in_a_fresh_interpreter(tmp_path):
    """The issue's report: `python -m lava_runtime run` on a non-HDF5 file printed a traceback."""
    bad = tmp_path / "net.h5"
    bad.write_text("not a network\n")
    r = subprocess.run([sys.executable, "-m", "lava_runtime", "run", str(bad)], cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"error: network file {bad} is not an HDF5 file (no HDF5 signature); pass a network "
        "written by python -m export.to_lava"]


# ---------------------------------------------------------------- checkpoints (checkpoint.pt)

def _ck_text(path: Path) -> None:
    path.write_text("not a checkpoint")


def _ck_truncated(path: Path) -> None:
    torch.save(make_checkpoint(sizes=(6, 8, 3)), path)
    path.write_bytes(path.read_bytes()[:2000])


def _ck_format(path: Path) -> None:
    torch.save({**make_checkpoint(sizes=(6, 8, 3)), "format": "something-else"}, path)


def _ck_version(path: Path) -> None:
    torch.save({**make_checkpoint(sizes=(6, 8, 3)), "version": 7}, path)


CK_CASES = {
    "not_torch": (_ck_text, "is not a PyTorch file"),
    "truncated": (_ck_truncated, "is truncated or damaged"),
    "wrong_format": (_ck_format, "delaysnn-checkpoint"),
    "unknown_version": (_ck_version, "version 7"),
}
CK_COMMANDS = {
    "export.to_lava": (to_lava_main, lambda run, tmp: [str(run), "--out", str(tmp / "n.h5")]),
    "export.to_onnx": (to_onnx_main, lambda run, tmp: [str(run), "--out", str(tmp / "m.onnx")]),
    "trainer evaluate": (trainer_main, lambda run, tmp: ["evaluate", str(run)]),
    "trainer.analyze": (analyze_main, lambda run, tmp: [str(run), "--out", str(tmp / "a")]),
    "lava_runtime report": (lava_runtime_main, lambda run, tmp: ["report", str(run)]),
}


@pytest.mark.parametrize("command", list(CK_COMMANDS))
@pytest.mark.parametrize("case", list(CK_CASES))
def test_bad_checkpoint(case, command, tmp_path, capsys):
    make, message = CK_CASES[case]
    run = tmp_path / "run"
    run.mkdir()
    make(run / "checkpoint.pt")
    main, argv = CK_COMMANDS[command]
    code, line = one_line_error(capsys, main, argv(run, tmp_path))
    assert code == 2
    assert str(run / "checkpoint.pt") in line and message in line
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["checkpoint.pt", "run"]


# ---------------------------------------------------------------- TOML: config and profiles

TOML_CASES = {
    "invalid_toml": (b"epochs = [\n", "not valid TOML"),
    "not_text": (b"\xff\xfe\x00binary", "not a TOML text file (byte 0 is not UTF-8)"),
}


@pytest.mark.parametrize("case", list(TOML_CASES))
def test_bad_config_toml(case, tmp_path, capsys):
    content, message = TOML_CASES[case]
    cfg = tmp_path / "cfg.toml"
    cfg.write_bytes(content)
    code, line = one_line_error(capsys, trainer_main,
                                ["train", "--config", str(cfg), "--out", str(tmp_path / "run")])
    assert code == 2 and f"config file {cfg}" in line and message in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["budget", "export.to_lava"])
@pytest.mark.parametrize("case", list(TOML_CASES) + ["bad_field"])
def test_bad_profile_toml(case, command, good_h5, tmp_path, capsys):
    prof = tmp_path / "p.toml"
    if case == "bad_field":
        text = (REPO / "hw_profiles" / "loihi2.toml").read_text()
        prof.write_text(text.replace('kind = "neuromorphic"', 'kind = "quantum"', 1))
        message = "kind"
    else:
        content, message = TOML_CASES[case]
        prof.write_bytes(content)
    if command == "budget":
        code, line = one_line_error(capsys, lava_runtime_main,
                                    ["budget", str(good_h5), "--profile", str(prof)])
    else:
        run = tmp_path / "run"
        save_checkpoint(make_checkpoint(sizes=(6, 8, 3)), run)
        code, line = one_line_error(capsys, to_lava_main, [str(run), "--profile", str(prof),
                                                           "--out", str(tmp_path / "n.h5")])
    assert code == 2 and str(prof) in line and message in line
    assert not (tmp_path / "n.h5").exists()


# ---------------------------------------------------------------- JSON in a run folder

def test_bad_metrics_json_in_report(tmp_path, capsys):
    run = tmp_path / "run"
    save_checkpoint(make_checkpoint(sizes=(6, 8, 3)), run)
    (run / "metrics.json").write_text("{not json")
    code, line = one_line_error(capsys, lava_runtime_main, ["report", str(run)])
    assert code == 2 and f"{run / 'metrics.json'} is not readable JSON" in line
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt", "metrics.json"]


def test_bad_config_json_on_resume(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{not json")
    code, line = one_line_error(capsys, trainer_main, ["train", "--out", str(run), "--resume"])
    assert code == 2 and f"{run / 'config.json'} is corrupt" in line
    assert [p.name for p in run.iterdir()] == ["config.json"]


def test_bad_sweep_point_json(tmp_path, capsys):
    from experiments.sweep import main
    results = tmp_path / "results"
    results.mkdir()
    bad = results / "dcls_s0.9_seed0.json"
    bad.write_bytes(b"[{\"method\": ")
    code, line = one_line_error(capsys, main, [
        "report", "--results", str(results), "--docs", str(tmp_path / "results.md")])
    assert code == 2
    assert str(bad) in line and "not a readable JSON file" in line
    assert [p.name for p in results.iterdir()] == [bad.name]  # nothing written
    assert not (tmp_path / "results.md").exists()
