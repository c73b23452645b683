"""experiments.sweep: a tiny synthetic sweep through train -> evaluate -> summarize (+ docs),
resumption (a second invocation trains and evaluates nothing; a run without metrics.json is
continued with resume=True; a run locked by another process is not touched), config
mismatches and bad input refused before any work, and the aggregation / comparison text on
hand-made rows."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from experiments import sweep as sw

REPO = Path(__file__).resolve().parents[1]
METHODS = ["dcls", "structure"]
SPARSITIES = [0.0, 0.75]
SETS = ["hidden=[16]", "kernel_size=8", "time_steps=40", "batch_size=32",
        "data_options={n_train=120, n_test=40}"]
NAMES = sorted(sw.run_name(m, s, 0) for m in METHODS for s in SPARSITIES)


def _argv(out: Path, docs: Path | None = None, epochs: int = 1, jobs: int = 1) -> list[str]:
    argv = ["--out", str(out), "--dataset", "synthetic", "--methods", *METHODS,
            "--sparsities", *map(str, SPARSITIES), "--seeds", "0", "--epochs", str(epochs),
            "--jobs", str(jobs), "--device", "cpu", "--no-progress"]
    for s in SETS:
        argv += ["--set", s]
    if docs is not None:
        argv += ["--docs", str(docs)]
    return argv


def _kwargs(epochs: int = 1) -> dict:
    return dict(dataset="synthetic", methods=METHODS, sparsities=SPARSITIES, seeds=[0],
                epochs=epochs, jobs=1, device="cpu", sets=SETS, progress=False)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """The whole sweep once, in a fresh process through the CLI with 2 worker processes;
    returns (out, docs, the Lava modules that process had imported)."""
    root = tmp_path_factory.mktemp("sweep")
    out, docs = root / "out", root / "docs" / "results.md"
    docs.parent.mkdir()
    code = ("import json, sys\nfrom experiments.sweep import main\n"
            f"rc = main({_argv(out, docs, jobs=2)!r})\n"
            "lava = sorted(m for m in sys.modules if m == 'lava' or m.startswith('lava.'))\n"
            "print('LAVA_MODULES=' + json.dumps(lava))\nsys.exit(rc)\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("LAVA_MODULES=")][-1]
    return out, docs, json.loads(line.split("=", 1)[1])


def test_all_stages_write_results_table_plot_and_docs(swept):
    out, docs, lava_modules = swept
    assert lava_modules == []          # train and evaluate run without lava-nc
    res = json.loads((out / sw.RESULTS).read_text())
    assert sorted(res["runs"]) == NAMES
    for name, e in res["runs"].items():
        metrics = json.loads((out / "runs" / name / "metrics.json").read_text())
        assert e["connections"] == sum(metrics["connections"])
        assert e["test_accuracy"] == metrics["test_accuracy"]
        assert e["n_test"] == 40 and e["epochs"] == 1
        assert 0 <= e["emulator_accuracy"] <= 1
        assert e["emulator_accuracy"] * 40 == round(e["emulator_accuracy"] * 40)
        assert e["synops_per_sample"] > 0
        assert (out / "runs" / name / "net.h5").is_file()
    for m in METHODS:   # sparsity 0.75 keeps fewer synapses than dense
        assert res["runs"][sw.run_name(m, 0.75, 0)]["connections"] < \
            res["runs"][sw.run_name(m, 0.0, 0)]["connections"]

    table = (out / sw.RESULTS_MD).read_text()
    rows = [ln.split("|")[1:3] for ln in table.splitlines()
            if ln.startswith("| ") and not ln.startswith("| method")]
    assert sorted((m.strip(), float(s)) for m, s in rows) == \
        sorted((m, s) for m in METHODS for s in SPARSITIES)

    import matplotlib.pyplot as plt
    img = plt.imread(out / sw.PLOT)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert (docs.parent / sw.DOCS_PLOT).read_bytes() == (out / sw.PLOT).read_bytes()
    text = docs.read_text()
    assert "python -m experiments.sweep --out " in text and "--jobs 2" in text
    assert f"]({sw.DOCS_PLOT})" in text
    assert "structure-multi" not in text.split("## Did structure")[1]   # not in this sweep
    assert "at sparsity 0.75:" in text and "at sparsity 0:" in text
    assert "one test sample is 2.50 accuracy points (40 test samples)" in text
    log = json.loads((out / sw.LOG).read_text())
    assert len(log) == 1 and log[0]["jobs"] == 2 and sorted(log[0]["train"]["trained"]) == NAMES


def test_second_invocation_trains_and_evaluates_nothing(swept, monkeypatch):
    out, _, _ = swept
    import trainer

    def no_training(*a, **k):
        raise AssertionError("the sweep trained a completed run")

    def no_eval(*a, **k):
        raise AssertionError("the sweep evaluated an unchanged run")

    monkeypatch.setattr(trainer, "train", no_training)
    monkeypatch.setattr(sw, "evaluate_run", no_eval)
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*") if p.is_file()}
    r = sw.sweep(out, stage="all", **_kwargs())
    assert r["train"]["trained"] == [] and sorted(r["train"]["skipped"]) == NAMES
    assert r["evaluate"]["evaluated"] == [] and sorted(r["evaluate"]["skipped"]) == NAMES
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes


def test_partial_run_is_continued_with_resume(swept, monkeypatch):
    out, _, _ = swept
    import trainer

    real, calls = trainer.train, []

    def counting(*a, **k):
        calls.append(k)
        return real(*a, **k)

    monkeypatch.setattr(trainer, "train", counting)
    name = sw.run_name("structure", 0.75, 0)
    metrics = out / "runs" / name / "metrics.json"
    before = json.loads(metrics.read_text())
    metrics.unlink()                       # as if killed after the last epoch's last.pt
    assert sw.run_state(out / "runs" / name) == "partial"
    fd = sw._lock_run(out / "runs" / name)     # as if another sweep were training it
    try:
        with pytest.raises(RuntimeError, match=r"1 of 1 runs failed .*structure_s0.75_seed0 is "
                                               r"being trained by another process"):
            sw.sweep(out, stage="train", **_kwargs())
    finally:
        os.close(fd)
    assert calls == []
    r = sw.sweep(out, stage="train", **_kwargs())
    assert r["train"]["trained"] == [name] and len(calls) == 1 and calls[0]["resume"] is True
    after = json.loads(metrics.read_text())
    assert after["test_accuracy"] == before["test_accuracy"]
    assert after["history"] == before["history"]


def test_other_config_in_run_dir_is_refused_before_any_work(swept, monkeypatch):
    out, _, _ = swept
    import trainer

    monkeypatch.setattr(trainer, "train", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(ValueError, match=r"4 run folder\(s\) .* hold another config .*"
                                         r"epochs: 1 -> 2"):
        sw.sweep(out, stage="train", **_kwargs(epochs=2))


@pytest.mark.parametrize("change, message", [
    ({"methods": ["dcls", "gradient"]}, r"unknown method\(s\) gradient; choose from dcls"),
    ({"sparsities": [0.5, 1.0]}, r"sparsity must be in \[0, 1\), got 1.0"),
    ({"seeds": [0, 0]}, r"--seeds lists a value twice"),
    ({"jobs": 0}, r"jobs must be a positive integer, got 0"),
    ({"stage": "plot"}, r"unknown stage 'plot'; choose one of train, evaluate"),
    ({"sets": ["hiden=[8]"]}, r"unknown config key\(s\) hiden"),
])
def test_bad_input_is_refused_before_anything_is_written(tmp_path, change, message):
    out = tmp_path / "new"
    with pytest.raises(ValueError, match=message):
        sw.sweep(out, **{**_kwargs(), **change})
    assert not out.exists()


def test_cli_reports_bad_input_with_exit_code_2(tmp_path, capsys):
    rc = sw.main(["--out", str(tmp_path / "x"), "--dataset", "synthetic", "--epochs", "0"])
    assert rc == 2
    assert "epochs must be a positive integer, got 0" in capsys.readouterr().err


def _entry(method, sparsity, seed, acc, conn=100, n_test=300):
    return {"method": method, "sparsity": sparsity, "seed": seed, "test_accuracy": acc,
            "emulator_accuracy": acc - 0.01, "connections": conn, "synops_per_sample": 10.0 * conn,
            "n_test": n_test}


def test_aggregate_and_comparison_text():
    entries = [_entry("dcls", 0.9, 0, 0.80), _entry("dcls", 0.9, 1, 0.84),
               _entry("structure", 0.9, 0, 0.90), _entry("structure", 0.9, 1, 0.92),
               _entry("dcls", 0.5, 0, 0.95), _entry("structure", 0.5, 0, 0.93),
               _entry("dcls", 0.99, 0, 0.70), _entry("structure", 0.99, 0, 0.70),
               _entry("dcls", 0.0, 0, 0.97), _entry("structure", 0.0, 0, 0.99)]
    rows = sw.aggregate(entries)
    assert [(r["method"], r["sparsity"]) for r in rows] == [
        ("dcls", 0.0), ("dcls", 0.5), ("dcls", 0.9), ("dcls", 0.99),
        ("structure", 0.0), ("structure", 0.5), ("structure", 0.9), ("structure", 0.99)]
    d9 = rows[2]
    assert d9["n_seeds"] == 2 and d9["seeds"] == [0, 1]
    assert math.isclose(d9["test_accuracy"][0], 0.82)
    assert math.isclose(d9["test_accuracy"][1], math.sqrt(2 * 0.02 ** 2))   # ddof 1
    assert rows[0]["test_accuracy"][1] is None                              # one seed
    lines = sw.comparison_lines(rows, contenders=("structure",))
    assert lines == [
        "structure tied with dcls at sparsity 0.99: 70.0% vs 70.0% (1 vs 1 seeds).",
        "structure beat dcls at sparsity 0.9: 91.0% vs 82.0% (2 vs 2 seeds).",
        "structure did not beat dcls at sparsity 0.5: 93.0% vs 95.0% (1 vs 1 seeds).",
        "**Mixed: structure beat dcls at 1 of the 3 highest sparsities (0.5, 0.9, 0.99) on "
        "this data.**"]
    assert "0.33 accuracy points (300 test samples)" in sw.caveat_line(rows)
    table = sw.results_table(rows)
    assert "| dcls | 0.9 | 2 | 82.0 ± 2.8 | 81.0 ± 2.8 | 100 | 1,000 |" in table
    assert sw.comparison_lines(rows, contenders=("structure-multi",)) == []   # no such rows
    assert sw.comparison_lines(rows, baseline="no-delay") == [
        "No sparsity has both structure and no-delay results: no comparison."]


def test_matched_connection_comparison_pairs_nearest_count():
    """structure-multi at sparsity S has K times dcls's connections: compare at equal counts."""
    def row(method, s, acc, conn):
        return {"method": method, "sparsity": s, "n_seeds": 1, "test_accuracy": (acc, None),
                "connections": (conn, None)}
    rows = [row("dcls", 0.5, 0.83, 6400), row("dcls", 0.75, 0.87, 3200),
            row("structure-multi", 0.984375, 0.85, 5000),
            row("structure-multi", 0.96875, 0.70, 10000),
            row("structure-multi", 0.5, 0.20, 160000)]
    assert sw.matched_connection_lines(rows) == [
        "structure-multi with 5,000 connections (sparsity 0.984375) beat dcls with 6,400 "
        "connections (sparsity 0.5): 85.0% vs 83.0%.",
        "structure-multi with 10,000 connections (sparsity 0.96875) did not beat dcls with "
        "6,400 connections (sparsity 0.5): 70.0% vs 83.0%.",
        "structure-multi with 160,000 connections: no dcls run within 2x of that connection "
        "count."]
