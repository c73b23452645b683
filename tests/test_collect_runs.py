"""experiments.collect_runs: the figures of finished runs into one JSON, E/I z where analysed."""
import json

import pytest

from experiments import collect_runs

METRICS = {"method": "structure-multi", "sparsity": 0.9, "seed": 0, "epochs": 2,
           "best_epoch": 2, "val_accuracy": 0.8, "test_accuracy": 0.75, "seconds": 10.0,
           "connections": [100, 10], "history": [{}, {}]}


def _run(path, analysed):
    path.mkdir()
    (path / "metrics.json").write_text(json.dumps(METRICS))
    if analysed:
        (path / "analysis").mkdir()
        (path / "analysis" / "analysis.json").write_text(json.dumps({"layers": [
            {"name": "fc1", "trained": {"z": 8.5}, "before": {"z": 0.9}},
            {"name": "readout", "trained": {"z": 0.2}, "before": None}]}))
    return path


def test_runs_are_recorded_with_their_ei_z_and_other_labels_kept(tmp_path):
    out = tmp_path / "out.json"
    out.write_text(json.dumps({"older": {"command": "x", "note": "", "runs": []}}))
    a, b = _run(tmp_path / "a", True), _run(tmp_path / "b", False)
    assert collect_runs.main([str(a), str(b), "--label", "new", "--command", "cmd",
                              "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert set(doc) == {"older", "new"} and doc["new"]["command"] == "cmd"
    ra, rb = doc["new"]["runs"]
    assert ra["ei_z"] == {"fc1": {"trained": 8.5, "init": 0.9},
                          "readout": {"trained": 0.2, "init": None}}
    assert "ei_z" not in rb and rb["seconds_per_epoch"] == 5.0 and rb["test_accuracy"] == 0.75


def test_a_folder_without_metrics_is_refused_before_writing(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as e:
        collect_runs.main([str(tmp_path / "empty"), "--label", "l", "--command", "c",
                           "--json", str(tmp_path / "out.json")])
    assert e.value.code == 2 and "missing" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()
