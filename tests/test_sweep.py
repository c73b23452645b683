"""experiments.sweep: a tiny synthetic grid run as Ray tasks on a local Ray with 1 CPU (one
ray.init for the module): one point JSON per (group, sparsity, seed) with the keys the report
needs, a failing point reported with its log while the others finish, a resumed sweep that runs
only what is missing (continuing a partly trained run), configs that differ refused before any
work, and the report built from hand-made point JSONs (intervals, paired verdicts, missing
points, README block)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from experiments import sweep as sw
from experiments import sweep_report as rep
from experiments.sweep_config import load_grid, matched_sparsity, plan, point_name
from experiments.sweep_trial import POINT_FORMAT

TINY = """\
dataset = "synthetic"
epochs = 2
seeds = [0, 1]
sparsities = [0, 0.75]
[set]
hidden = [16]
kernel_size = 8
time_steps = 40
batch_size = 32
data_options = {n_train = 120, n_test = 40}
[[group]]
name = "dcls"
method = "dcls"
[[group]]
name = "multi-matched"
method = "structure-multi"
match_synapses = true
"""
FAILING = "dcls_s0.75_seed1"     # its run folder is made corrupt before the first sweep
NAMES = sorted(["dcls_s0_seed0", "dcls_s0_seed1", "dcls_s0.75_seed0", FAILING,
                "multi-matched_s0.875_seed0", "multi-matched_s0.875_seed1",
                "multi-matched_s0.96875_seed0", "multi-matched_s0.96875_seed1"])
ISSUE_KEYS = ("method", "sparsity", "seed", "epochs", "test_accuracy", "emulator_accuracy",
              "synapses", "synops_per_sample", "energy_per_sample_joules", "ei_z")


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def ray_local():
    """The module's only Ray: started here with 1 CPU, shut down after the last test."""
    import ray

    sw.init_ray(num_cpus=1)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def swept(tmp_path_factory, ray_local):
    """The tiny grid once, with FAILING's run folder holding a matching config.json and a
    corrupt last.pt; returns (config path, results, runs, the run() result)."""
    from trainer.checkpoint import CONFIG, LAST

    root = tmp_path_factory.mktemp("sweep")
    config = _write(root / "tiny.toml", TINY)
    results, runs = root / "results", root / "runs"
    p = {q["name"]: q for q in plan(load_grid(config), device="cpu")[0]}[FAILING]
    _write(runs / FAILING / CONFIG, json.dumps({"config": p["config"]}))
    _write(runs / FAILING / LAST, "not a checkpoint")
    r = sw.run(config, results=results, runs=runs, progress=False)
    return config, results, runs, r


def test_grid_plans_points_densest_first_with_matched_synapse_counts(tmp_path):
    points, skipped = plan(load_grid(_write(tmp_path / "t.toml", TINY)))
    assert skipped == []
    assert [p["name"] for p in points] == [
        "dcls_s0_seed0", "multi-matched_s0.875_seed0", "dcls_s0_seed1",
        "multi-matched_s0.875_seed1", "dcls_s0.75_seed0", "multi-matched_s0.96875_seed0",
        "dcls_s0.75_seed1", "multi-matched_s0.96875_seed1"]
    m = points[5]
    assert m["method"] == "structure-multi" and m["nominal_sparsity"] == 0.75 and m["matched"]
    assert m["config"]["sparsity"] == matched_sparsity(0.75, 8) == 0.96875
    assert matched_sparsity(0.9, 25) == 0.996 and point_name("g", 0.996, 2) == "g_s0.996_seed2"
    assert m["config"]["hidden"] == [16] and m["config"]["epochs"] == 2


def test_committed_fsdd_grid_is_the_issue_grid():
    grid = load_grid(sw.REPO / "experiments" / "fsdd.toml")
    assert grid["dataset"] == "fsdd" and grid["epochs"] >= 40 and len(grid["seeds"]) >= 3
    assert grid["sparsities"] == [0, 0.5, 0.75, 0.9, 0.95, 0.98]
    names = [g["name"] for g in grid["groups"]]
    assert names[:4] == ["dcls", "structure", "structure-multi", "no-delay"]
    matched = [g for g in grid["groups"] if g["match_synapses"]]
    assert {g["method"] for g in matched} == {"structure-multi"}
    # the random-regrowth controls, also at the matched synapse count
    assert {g["name"] for g in grid["groups"] if g["set"].get("regrow") == "random"} == {
        "structure-random-regrowth", "structure-multi-random-regrowth",
        "structure-multi-matched-random-regrowth"}
    points, _ = plan(grid)
    assert points[0]["nominal_sparsity"] == 0 and points[-1]["nominal_sparsity"] == 0.98


def test_failing_point_is_reported_with_its_log_and_the_others_finish(swept):
    _, results, runs, r = swept
    assert sorted(r["points"]) == NAMES and r["skipped"] == []
    assert sorted(r["done"]) == sorted(set(NAMES) - {FAILING})
    [f] = r["failed"]
    assert f["name"] == FAILING and "CheckpointError" in f["error"] and "last.pt" in f["error"]
    assert Path(f["log"]) == runs / FAILING / "trial.log"
    assert "Traceback" in Path(f["log"]).read_text()
    assert sorted(p.stem for p in results.iterdir()) == sorted(set(NAMES) - {FAILING})


def test_point_json_holds_metrics_export_budget_and_analysis(swept):
    _, results, runs, _ = swept
    recs = {p.stem: json.loads(p.read_text()) for p in results.glob("*.json")}
    for name, rec in recs.items():
        assert rec["format"] == POINT_FORMAT and rec["name"] == name
        for key in ISSUE_KEYS:
            assert key in rec, key
        metrics = json.loads((runs / name / "metrics.json").read_text())
        assert rec["epochs"] == 2 and rec["n_test"] == 40
        assert rec["test_accuracy"] == metrics["test_accuracy"]
        assert rec["val_accuracy"] == metrics["val_accuracy"]
        assert rec["synapses"] == sum(metrics["connections"])
        assert 0 <= rec["emulator_accuracy"] <= 1
        assert rec["emulator_accuracy"] * 40 == round(rec["emulator_accuracy"] * 40)
        assert rec["synops_per_sample"] > 0 and rec["energy_per_sample_joules"] > 0
        assert set(rec["ei_z"]) == set(rec["ei_z_init"]) == {"fc1", "readout"}
        assert rec["ei_z"]["fc1"] is not None and rec["ei_z_init"]["fc1"] is not None
        assert rec["export"]["profile"]["name"] == "loihi2"
        assert "path" not in rec["export"]["checkpoint"]
        assert rec["budget"]["synops_per_sample"] == rec["synops_per_sample"]
        assert rec["train_seconds"] > 0 and rec["resumed"] is False
        assert len(rec["val_accuracy_history"]) == 2
        # the export's fidelity bound (export.fidelity): deploy's default, on validation
        # a point outside the bound is kept with its best network and says so
        assert rec["max_loss_bound"] == 0.5
        assert rec["within_max_loss_bound"] is (rec["fixed_point_loss_val"] <= 0.5 + 1e-9)
        assert rec["within_max_loss_bound"] is rec["export"]["fidelity"]["within_bound"]
        assert rec["emulator_val_accuracy"] == rec["export"]["fidelity"][
            "fixed_point_val_accuracy"]
        assert rec["qat_epochs"] >= 0 and len(rec["synapses_zeroed"]) == 2
        assert rec["synapses_zeroed"] == rec["export"]["synapses_zeroed"]
        # the same checkpoint exported without the bound, for the before/after gap
        assert rec["fixed_point_loss_val_as_exported"] == rec["export"]["fidelity"]["tried"][
            0]["loss_points"]
        if not rec["export"]["fidelity"]["changes_network"]:
            assert rec["emulator_accuracy_as_exported"] == rec["emulator_accuracy"]
        assert rec["emulator_accuracy_as_exported"] * 40 == round(
            rec["emulator_accuracy_as_exported"] * 40)
    # structure-multi matched to dcls at S keeps dcls's synapse count at S
    for s, ms in ((0, 0.875), (0.75, 0.96875)):
        assert recs[f"multi-matched_s{ms}_seed0"]["synapses"] == recs[f"dcls_s{s}_seed0"][
            "synapses"]
        assert recs[f"multi-matched_s{ms}_seed0"]["nominal_sparsity"] == s


def test_lava_points_runs_the_deployed_networks_in_lava_and_checks_they_are_the_points(
        swept, tmp_path):
    """experiments.lava_points: Lava equals the emulator on every test sample of a point's
    net.h5; a point whose emulator accuracy differs from its net.h5's is refused."""
    import shutil

    from experiments.lava_points import lava_points

    _, results, runs, _ = swept
    name = sorted(p.stem for p in results.glob("dcls_*.json"))[0]
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(results / f"{name}.json", one)
    out = lava_points(one, runs, tmp_path / "lava.json", progress=False)
    q = out["points"][name]
    rec = json.loads((one / f"{name}.json").read_text())
    assert q["lava_accuracy"] == q["emulator_accuracy"] == rec["emulator_accuracy"]
    assert q["lava_equals_emulator_fraction"] == 1.0 and q["n_test"] == rec["n_test"]
    assert json.loads((tmp_path / "lava.json").read_text()) == out
    # resuming skips a point held for the same net.h5 and runs one whose file changed since
    held = json.loads((tmp_path / "lava.json").read_text())
    held["points"][name]["lava_accuracy"] = -1.0
    (tmp_path / "lava.json").write_text(json.dumps(held))
    assert lava_points(one, runs, tmp_path / "lava.json",
                       progress=False)["points"][name]["lava_accuracy"] == -1.0
    held["points"][name]["net_sha256"] = "0" * 64          # as if re-exported since
    (tmp_path / "lava.json").write_text(json.dumps(held))
    again = lava_points(one, runs, tmp_path / "lava.json", progress=False)["points"][name]
    assert again["lava_accuracy"] == q["lava_accuracy"] and again["net_sha256"] == q["net_sha256"]
    rec["emulator_accuracy"] += 0.5
    (one / f"{name}.json").write_text(json.dumps(rec))
    with pytest.raises(ValueError, match="not the network the point deployed"):
        lava_points(one, runs, tmp_path / "other.json", progress=False)
    assert not (tmp_path / "other.json").exists()
    with pytest.raises(ValueError, match="no net.h5"):
        lava_points(one, tmp_path, tmp_path / "other.json", progress=False)
    # a point that shares its run with another (same_run_as) is run from that one's folder
    rec["emulator_accuracy"] -= 0.5
    rec.update(name="twin_s0_seed0", same_run_as=name)
    (one / f"{name}.json").unlink()
    (one / "twin_s0_seed0.json").write_text(json.dumps(rec))
    twin = lava_points(one, runs, tmp_path / "twin.json", progress=False)
    assert twin["points"]["twin_s0_seed0"]["lava_accuracy"] == q["lava_accuracy"]


def test_fidelity_agreement_counts_changed_answers_of_the_deployed_networks(swept, tmp_path):
    """experiments.fidelity_agreement: per split, the counts add up to the point's accuracies;
    a held point is skipped on resume; a point whose emulator accuracy differs from its net.h5's
    is refused."""
    import shutil

    from experiments.fidelity_agreement import fidelity_agreement

    _, results, runs, _ = swept
    name = sorted(p.stem for p in results.glob("dcls_*.json"))[0]
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(results / f"{name}.json", one)
    rec = json.loads((one / f"{name}.json").read_text())
    out = fidelity_agreement(one, runs, tmp_path / "agree.json", progress=False)
    a = out["points"][name]
    t = a["test"]
    assert t["n"] == rec["n_test"] and t["fixed_correct"] / t["n"] == rec["emulator_accuracy"]
    assert t["gap_points"] == round(100 * (t["float_correct"] - t["fixed_correct"]) / t["n"], 9)
    assert t["b"] + t["c"] <= t["disagree"] <= t["n"] and 0.0 <= a["p_test_over_1"] <= 1.0
    assert a["val"]["n"] > 0
    held = json.loads((tmp_path / "agree.json").read_text())
    held["points"][name]["test"]["b"] = -1
    (tmp_path / "agree.json").write_text(json.dumps(held))
    assert fidelity_agreement(one, runs, tmp_path / "agree.json",
                              progress=False)["points"][name]["test"]["b"] == -1
    rec["emulator_accuracy"] += 0.5
    (one / f"{name}.json").write_text(json.dumps(rec))
    with pytest.raises(ValueError, match="not the network the point deployed"):
        fidelity_agreement(one, runs, tmp_path / "other.json", progress=False)
    assert not (tmp_path / "other.json").exists()


def test_resumed_sweep_runs_only_the_missing_point_and_continues_its_run(swept, capsys):
    import trainer

    config, results, runs, _ = swept
    before = {p.name: p.stat().st_mtime_ns for p in results.iterdir()}
    # replace the corrupt folder by a run interrupted after its first of two epochs
    p = {q["name"]: q for q in plan(load_grid(config), device="cpu")[0]}[FAILING]
    import shutil
    shutil.rmtree(runs / FAILING)
    res = trainer.train(dict(p["overrides"]), out=runs / FAILING, stop_after_epoch=1,
                        progress=False)
    assert not res.completed
    capsys.readouterr()
    r = sw.run(config, results=results, runs=runs, progress=True)
    assert r["done"] == [FAILING] and r["failed"] == []
    assert capsys.readouterr().err.count("sweep: 100%") == 1     # the bar's last state, once
    assert sorted(r["skipped"]) == sorted(set(NAMES) - {FAILING})
    assert {n: (results / n).stat().st_mtime_ns for n in before} == before
    rec = json.loads((results / f"{FAILING}.json").read_text())
    assert rec["resumed"] is True and len(rec["val_accuracy_history"]) == 2
    # everything done: nothing to submit (returns before touching Ray)
    again = sw.run(config, results=results, runs=runs, progress=False)
    assert again["todo"] == [] and again["done"] == [] and sorted(again["skipped"]) == NAMES


def test_results_made_with_another_config_are_refused_before_any_work(swept, tmp_path):
    config, results, runs, _ = swept
    other = _write(tmp_path / "other.toml", TINY.replace("epochs = 2", "epochs = 3"))
    with pytest.raises(ValueError, match=r"8 result file\(s\) or run folder\(s\) hold another "
                                         r"config .*epochs: 2 -> 3"):
        sw.run(other, results=results, runs=runs, progress=False)


# TINY's trainer settings, one seed and epoch; K = 8, so 1 - (1 - 0.75) / 8 = 0.96875
TWINS = 'baseline = "multi"\n' + TINY.replace("epochs = 2", "epochs = 1").replace(
    "seeds = [0, 1]", "seeds = [0]").replace("sparsities = [0, 0.75]", "sparsities = [0.75]"
    ).replace('name = "dcls"\nmethod = "dcls"',
              'name = "multi"\nmethod = "structure-multi"\nsparsities = [0.96875]')


def test_points_with_the_same_trainer_config_are_trained_once(tmp_path, ray_local, capsys):
    """structure-multi at 1 - 0.25 / 8 and structure-multi matched at nominal 0.75 are one run:
    trained once, two records; a lost copy is rewritten from the other record without Ray."""
    config = _write(tmp_path / "twins.toml", TWINS)
    results, runs = tmp_path / "res", tmp_path / "runs"
    # the first in plan order (nominal sparsity 0.75 before 0.96875) trains
    trained, twin = "multi-matched_s0.96875_seed0", "multi_s0.96875_seed0"
    dry = sw.run(config, results=results, runs=runs, dry_run=True)
    assert dry["todo"] == [trained, twin] and dry["same_run_as"] == {twin: trained}
    r = sw.run(config, results=results, runs=runs, progress=False)
    assert r["done"] == [trained, twin] and r["failed"] == []
    assert f"; same run: {twin}" in capsys.readouterr().out   # one line per point, no bar
    assert [d.name for d in runs.iterdir()] == [trained]
    a, b = (json.loads((results / f"{n}.json").read_text()) for n in (trained, twin))
    assert "same_run_as" not in a and b["same_run_as"] == trained
    assert (b["name"], b["group"], b["nominal_sparsity"], b["matched"]) == (
        twin, "multi", 0.96875, False)
    assert (a["group"], a["nominal_sparsity"], a["matched"]) == ("multi-matched", 0.75, True)
    shared = {k for k in a if k not in ("name", "group", "nominal_sparsity", "matched")}
    assert {k: b[k] for k in shared} == {k: a[k] for k in shared}
    (results / f"{twin}.json").unlink()
    ray_local.shutdown()   # the copy needs no Ray: run() must not start one
    try:
        again = sw.run(config, results=results, runs=runs, address="127.0.0.1:1",
                       progress=False)
    finally:
        sw.init_ray(num_cpus=1)
    assert again["done"] == [twin] and again["same_run_as"] == {twin: trained}
    assert json.loads((results / f"{twin}.json").read_text()) == b


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace('method = "dcls"', 'method = "gradient"'),
     r"group 'dcls': unknown method 'gradient'"),
    (lambda t: t.replace("epochs = 2", "epochs = 0"), r"epochs must be a positive integer"),
    (lambda t: t.replace("seeds = [0, 1]", "seeds = [0, 0]"), r"seeds lists a value twice"),
    (lambda t: t.replace("sparsities = [0, 0.75]", "sparsities = [0, 1.0]"),
     r"sparsities must hold numbers in \[0, 1\)"),
    (lambda t: t + "colour = 1\n", r"unknown key\(s\) colour"),
    (lambda t: t.replace("[set]\n", "[set]\nsparsity = 0.5\n"), r"set may not name sparsity"),
    (lambda t: t.replace("[set]\n", "[set]\nhiden = [8]\n"), r"unknown config key\(s\) hiden"),
    (lambda t: t + 'baseline = "x"\n', r"baseline 'x' is not a group name"),
    (lambda t: t + '[[group]]\nname = "c"\nmethod = "structure"\nset = {regrowth = "random"}\n',
     r"group c: unknown config key\(s\) regrowth"),
])
def test_bad_config_is_refused_before_anything_is_written(tmp_path, edit, message):
    text = edit(TINY)
    if "baseline" in text:   # a top-level key must come before the first table
        text = 'baseline = "x"\n' + text.replace('baseline = "x"\n', "")
    config = _write(tmp_path / "bad.toml", text)
    with pytest.raises(ValueError, match=message):
        sw.run(config, results=tmp_path / "res", runs=tmp_path / "runs", progress=False)
    assert not (tmp_path / "res").exists() and not (tmp_path / "runs").exists()


def test_optional_group_without_trainer_support_is_skipped_with_a_message(tmp_path):
    config = _write(tmp_path / "t.toml", TINY + '[[group]]\nname = "control"\nmethod = '
                    '"structure"\nset = {not_yet_a_key = 1}\noptional = true\n')
    r = sw.run(config, results=tmp_path / "res", runs=tmp_path / "runs", dry_run=True)
    assert r["skipped_groups"] == ["group control skipped: the trainer has no config key(s) "
                                   "not_yet_a_key yet (the group is optional)"]
    assert len(r["points"]) == 8 and r["todo"] == r["points"]


def test_cli_reports_bad_input_with_exit_code_2(tmp_path, capsys):
    assert sw.main(["run", "--config", str(tmp_path / "none.toml")]) == 2
    assert f"sweep config {tmp_path / 'none.toml'} does not exist" in capsys.readouterr().err
    config = _write(tmp_path / "t.toml", TINY)
    assert sw.main(["run", "--config", str(config), "--seeds", "7", "--dry-run"]) == 2
    assert "seed(s) 7 not in the sweep config (it has 0, 1)" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the report

REPORT_GRID = """\
dataset = "synthetic"
epochs = 2
seeds = [0, 1, 2]
sparsities = [0.5, 0.9]
[[group]]
name = "dcls"
method = "dcls"
[[group]]
name = "structure"
method = "structure"
"""
README = "# x\n\nintro\n{begin}\nold text\n{end}\ntail\n"
# test accuracy per (group, sparsity) over seeds 0, 1, 2; structure 0.9 seed 2 is missing
ACC = {("dcls", 0.5): [0.90, 0.92, 0.94], ("dcls", 0.9): [0.70, 0.72, 0.71],
       ("structure", 0.5): [0.91, 0.93, 0.95], ("structure", 0.9): [0.80, 0.84]}


def _fixture_records(grid: dict) -> list[dict]:
    from trainer.config import identity

    by = {(p["group"], p["nominal_sparsity"], p["seed"]): p for p in plan(grid)[0]}
    out = []
    for (g, s), accs in ACC.items():
        for seed, acc in enumerate(accs):
            p = by[(g, s, seed)]
            out.append({"format": POINT_FORMAT, "version": 1, "name": p["name"], "group": g,
                        "method": p["method"], "sparsity": s, "nominal_sparsity": s,
                        "matched": False, "seed": seed, "epochs": 2, "test_accuracy": acc,
                        "emulator_accuracy": acc - 0.01, "val_accuracy": acc, "best_epoch": 2,
                        "n_test": 300, "synapses": round(12800 * (1 - s)),
                        "synops_per_sample": 40.0 * 12800 * (1 - s),
                        "energy_per_sample_joules": 1e-6, "train_seconds": 100.0,
                        "ei_z": {"fc1": 10.0 + seed if g == "structure" else 0.5, "readout": None},
                        "ei_z_init": {"fc1": 1.0, "readout": None},
                        "config": identity(p["config"])})
    return out


@pytest.fixture
def report_files(tmp_path):
    config = _write(tmp_path / "grid.toml", REPORT_GRID)
    results = tmp_path / "results"
    results.mkdir()
    for r in _fixture_records(load_grid(config)):
        (results / f"{r['name']}.json").write_text(json.dumps(r))
    stale = json.loads((results / "dcls_s0.5_seed0.json").read_text())
    stale.update(name="dcls_s0.5_seed9", seed=9)
    (results / "dcls_s0.5_seed9.json").write_text(json.dumps(stale))   # not in the grid
    (tmp_path / "docs").mkdir()
    readme = _write(tmp_path / "README.md", README.format(begin=rep.README_BEGIN,
                                                          end=rep.README_END))
    return config, results, tmp_path / "docs" / "results.md", readme


def test_interval_is_the_student_t_95_percent_interval():
    iv = rep.interval([0.70, 0.72, 0.71])
    half = 4.302652729911275 * 0.01 / math.sqrt(3)     # t(0.975, 2) * sd / sqrt(n)
    assert math.isclose(iv["mean"], 0.71) and math.isclose(iv["hi"] - iv["mean"], half)
    assert rep.interval([0.5]) == {"n": 1, "mean": 0.5, "lo": None, "hi": None}
    assert rep.verdict({"lo": 0.01, "hi": 0.2}) == "better"
    assert rep.verdict({"lo": -0.2, "hi": -0.01}) == "worse"
    assert rep.verdict({"lo": -0.1, "hi": 0.1}) == "not resolved"
    assert rep.verdict({"lo": None, "hi": None}) == "one seed"


def test_report_pairs_by_seed_states_the_answer_and_lists_missing_points(report_files):
    config, results, docs, readme = report_files
    shared = results / "structure_s0.5_seed0.json"      # a point whose run another one trained
    shared.write_text(json.dumps({**json.loads(shared.read_text()), "same_run_as": "x"}))
    r = rep.report(results, docs, config=config, readme=readme)
    comps = {(c["group"], c["nominal_sparsity"]): c for c in r["comparisons"]}
    hi = comps[("structure", 0.9)]       # seeds 0, 1: differences 0.10 and 0.12
    assert hi["seeds"] == [0, 1] and math.isclose(hi["diff"]["mean"], 0.11)
    half = 12.706204736174698 * math.sqrt(2e-4) / math.sqrt(2)     # t(0.975, 1) sd / sqrt(2)
    assert math.isclose(hi["diff"]["lo"], 0.11 - half) and hi["verdict"] == "not resolved"
    lo = comps[("structure", 0.5)]       # +1 point on every seed: the interval excludes 0
    assert lo["seeds"] == [0, 1, 2] and math.isclose(lo["diff"]["mean"], 0.01)
    assert lo["verdict"] == "better"
    assert r["answer"] == [                # high sparsity (>= 0.9) only
        "**Not resolved: no difference between structure and dcls is outside the 95% interval "
        "at the 1 high sparsity.** Paired difference in test accuracy (0.9: +11.0 points "
        "[-1.7, +23.7])."]
    assert [m["name"] for m in r["missing"]] == ["structure_s0.9_seed2"]
    assert r["extra"] == ["dcls_s0.5_seed9"] and r["stale"] == []
    text = docs.read_text()
    assert "1 of 12 planned points has no valid file" in text
    assert "- structure: sparsity 0.9 seed(s) 2" in text
    assert "`dcls_s0.5_seed9.json`: not a point of the grid" in text
    assert "| dcls | 0.9 | 3 | 71.0 [68.5, 73.5] | 70.0 [67.5, 72.5] | 1,280 |" in text
    assert "| structure | 0.9 | 2 | +11.0 points [-1.7, +23.7] | not resolved |" in text
    for name in (rep.PLOT_ACC, rep.PLOT_DIFF, rep.PLOT_EI):
        assert (docs.parent / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({name})" in text
    assert "[dcls_s0.9_seed1.json](../results/dcls_s0.9_seed1.json)" in text
    assert "counted once): 0.28 h." in text           # 10 of the 11 points at 100 s
    assert "| 100 (run of x) |" in text
    new = readme.read_text()
    assert new.startswith("# x\n\nintro\n") and new.endswith("\ntail\n")
    assert "old text" not in new and "11 of 12 points" in new and r["answer"][0] in new
    assert r["ei_answer"][1].startswith("**structure: fc1 clusters at 2 of 2 sparsities**")
    assert r["ei_answer"][1] in text and f"- E/I clustering, {r['ei_answer'][1]}" in new


def test_answer_says_when_a_group_has_more_synapses_than_the_baseline():
    def comp(s, lo, hi, syn, base):
        return {"group": "multi", "nominal_sparsity": s, "matched": False, "seeds": [0, 1, 2],
                "diff": {"n": 3, "mean": (lo + hi) / 2, "lo": lo, "hi": hi},
                "verdict": rep.verdict({"lo": lo, "hi": hi}), "synapses": syn,
                "baseline_synapses": base}
    [line] = rep.answer_lines([comp(0.9, -0.05, 0.04, 32000, 1280),
                               comp(0.98, 0.036, 0.089, 6400, 256)], "dcls", ["multi"])
    assert line.startswith("**Partly: multi beat dcls at 1 of 2 high sparsities and was worse "
                           "at none, with 25x dcls's synapses.**")
    [same] = rep.answer_lines([comp(0.9, 0.01, 0.02, 1280, 1280)], "dcls", ["multi"])
    assert same.startswith("**Yes: multi beat dcls at the 1 high sparsity.**")


def test_report_without_points_says_the_comparison_is_pending(tmp_path):
    config = _write(tmp_path / "grid.toml", REPORT_GRID)
    r = rep.report(tmp_path / "none", tmp_path / "results.md", config=config)
    text = (tmp_path / "results.md").read_text()
    assert "**The converged comparison is pending:**" in text
    assert len(r["missing"]) == 12 and "12 of 12 planned points have no valid file" in text


def test_report_refuses_a_readme_without_markers_before_writing(report_files):
    config, results, docs, readme = report_files
    readme.write_text("# no markers\n")
    with pytest.raises(ValueError, match="needs one line '<!-- sweep-summary:begin"):
        rep.report(results, docs, config=config, readme=readme)
    assert not docs.exists() and readme.read_text() == "# no markers\n"


def test_ei_answer_compares_with_initialisation_and_the_random_regrowth_control(tmp_path):
    grid = load_grid(_write(tmp_path / "grid.toml", REPORT_GRID + """
[[group]]
name = "structure-random"
method = "structure"
set = { regrow = "random" }
"""))
    assert rep.control_groups(grid) == {"structure": "structure-random"}

    def rec(g, seed, z, z0):
        return {"group": g, "method": "structure", "nominal_sparsity": 0.9, "sparsity": 0.9,
                "matched": False, "seed": seed, "epochs": 2, "n_test": 300,
                "test_accuracy": 0.9, "emulator_accuracy": 0.9, "synapses": 10,
                "synops_per_sample": 1.0, "energy_per_sample_joules": 1e-6,
                "train_seconds": 1.0, "ei_z": {"fc1": z}, "ei_z_init": {"fc1": z0}}
    records = [rec("structure", s, z, 0.0) for s, z in enumerate([6.0, 8.0, 7.0])] + \
              [rec("structure-random", s, z, None) for s, z in enumerate([1.0, -1.0, 0.5])]
    rows = rep.aggregate(records, ["structure", "structure-random"])
    found = rep.ei_findings(records, rows, rep.control_groups(grid))
    by = {f["group"]: f for f in found}
    assert by["structure"]["clusters"] and not by["structure-random"]["clusters"]
    assert math.isclose(by["structure"]["vs_control"]["mean"], 20.5 / 3)   # (5 + 9 + 6.5) / 3
    assert math.isclose(by["structure"]["change"]["mean"], 7.0)
    assert by["structure-random"]["vs_control"] is None
    lines = rep.ei_answer_lines(found, ["structure", "structure-random"])
    assert lines[0].startswith("**structure: fc1 clusters at 1 of 1 sparsity** (trained z, "
                               "0.9: 7.0 [")
    assert "higher than at initialisation at 1 of 1 (0.9: +7.0 [" in lines[0]
    assert "higher than with random regrowth (structure-random) at 1 of 1 (0.9: +6.8 [" in lines[0]
    assert lines[1].startswith("**structure-random: no clustering in fc1 at 1 sparsity** ")


def test_gradient_regrowth_is_compared_with_its_random_regrowth_control_by_seed():
    def rec(g, s, seed, acc):
        return {"group": g, "nominal_sparsity": s, "seed": seed, "matched": False,
                "test_accuracy": acc, "synapses": 100}
    records = [rec("structure", 0.5, i, a) for i, a in enumerate([0.90, 0.92, 0.94])] + \
              [rec("structure-random", 0.5, i, a) for i, a in enumerate([0.85, 0.86, 0.88])] + \
              [rec("structure", 0.9, 0, 0.8), rec("dcls", 0.5, 0, 0.99)]
    [c] = rep.control_comparisons(records, {"structure": "structure-random"})
    assert (c["group"], c["nominal_sparsity"], c["seeds"]) == ("structure", 0.5, [0, 1, 2])
    assert math.isclose(c["diff"]["mean"], 0.17 / 3) and c["verdict"] == "better"
    [line] = rep.answer_lines([c], "structure-random", ["structure"], high=0)
    assert line.startswith("**Yes: structure beat structure-random at the 1 sparsity.**")


# ----------------------------------------------------------------------------- committed results

def test_committed_docs_are_generated_from_the_committed_point_files(tmp_path, monkeypatch):
    """docs/results.md and the README block equal what the report command makes of
    docs/results/sweep now: no figure there is edited by hand or left stale."""
    for rel in ("docs/results/sweep", "docs/results/sweep_bound", "experiments/fsdd.toml",
                "docs/results/fidelity_agreement.json"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).symlink_to(sw.REPO / rel)
    (tmp_path / "README.md").write_text((sw.REPO / "README.md").read_text())
    monkeypatch.chdir(tmp_path)
    rep.report("docs/results/sweep", "docs/results.md", config="experiments/fsdd.toml",
               readme="README.md", bound_results="docs/results/sweep_bound",
               agreement="docs/results/fidelity_agreement.json")
    stale = ("stale: run python -m experiments.sweep report --results docs/results/sweep "
             "--docs docs/results.md --readme README.md --bound-results docs/results/sweep_bound "
             "--agreement docs/results/fidelity_agreement.json")
    for rel in ("docs/results.md", "README.md"):
        assert (tmp_path / rel).read_text() == (sw.REPO / rel).read_text(), f"{rel} is {stale}"
    assert (sw.REPO / "docs" / rep.PLOT_GAP).is_file(), f"docs/{rep.PLOT_GAP} is missing: {stale}"


def test_committed_point_files_hold_the_issue_keys():
    files = sorted((sw.REPO / "docs/results/sweep").glob("*.json"))
    assert files
    for f in files:
        rec = json.loads(f.read_text())
        assert rec["format"] == POINT_FORMAT and rec["name"] == f.stem
        assert all(k in rec for k in ISSUE_KEYS), f.name
        assert 0 <= rec["test_accuracy"] <= 1 and 0 <= rec["emulator_accuracy"] <= 1
        assert rec["epochs"] >= 40 and rec["synapses"] > 0


# ----------------------------------------------------------------------------- defaults, packages

def test_defaults_write_under_runs_and_the_function_defaults_are_the_commands():
    """A user's sweep and report write under runs/ (untracked), never into docs/results/."""
    import inspect

    a = sw.build_parser().parse_args(["run"])
    b = sw.build_parser().parse_args(["report"])
    for path in (a.results, a.runs, b.results, b.docs):
        assert Path(path).parts[0] == "runs", path
    run_defaults = inspect.signature(sw.run).parameters
    assert (run_defaults["results"].default, run_defaults["runs"].default) == (a.results, a.runs)
    report_defaults = inspect.signature(rep.report).parameters
    assert (report_defaults["results"].default, report_defaults["docs"].default) == (b.results,
                                                                                     b.docs)


def test_every_top_level_package_travels_to_a_cluster():
    """Ray ships PACKAGES with each task: the code a trial imports (deployed, delaysnn included)."""
    packages = {d.name for d in sw.REPO.iterdir() if (d / "__init__.py").is_file()} - {"tests"}
    assert set(sw.PACKAGES) == packages


# ----------------------------------------------------------------------------- report: folders

def test_report_says_why_points_of_another_config_are_left_out(report_files, tmp_path):
    """Points made with --epochs 2 against a 3-epoch grid: "0 of 12" says why and what to do,
    and --epochs 2 reports them; a --docs folder that does not exist yet is made."""
    config, results, docs, _ = report_files
    other = _write(tmp_path / "grid3.toml", REPORT_GRID.replace("epochs = 2", "epochs = 3"))
    r = rep.report(results, docs, config=other)
    assert r["summary"].splitlines()[0] == (
        f"0 of 12 points of the grid are in `{results}`; 12 are missing (listed below). 11 point "
        "files there were made with another config and are left out (epochs 2 (grid: 3)): report "
        "them with --epochs 2. 1 file there is not a point of the grid and left out "
        "(dcls_s0.5_seed9).")
    new_docs = tmp_path / "new" / "folder" / "results.md"
    r = rep.report(results, new_docs, config=other, epochs=2)
    assert r["summary"].startswith(f"11 of 12 points of the grid are in `{results}`; 1 is missing")
    assert new_docs.is_file() and (new_docs.parent / rep.PLOT_ACC).is_file()
    assert "--epochs 2 --docs" in new_docs.read_text()


def test_report_cli_makes_a_missing_docs_folder_and_refuses_a_file_as_folder(report_files,
                                                                            tmp_path, capsys):
    config, results, _, _ = report_files
    docs = tmp_path / "made" / "results.md"
    assert sw.main(["report", "--results", str(results), "--config", str(config),
                    "--docs", str(docs)]) == 0
    assert docs.is_file()
    blocker = _write(tmp_path / "a_file", "x")
    assert sw.main(["report", "--results", str(results), "--config", str(config),
                    "--docs", str(blocker / "results.md")]) == 2
    assert f"--docs {blocker / 'results.md'}: {blocker} is not a folder" in capsys.readouterr().err


# ----------------------------------------------------------------------------- a real cluster

CLUSTER_GRID = TINY.replace("epochs = 2", "epochs = 1").replace("seeds = [0, 1]", "seeds = [0]"
                                                                ).split("[[group]]")[0] + \
    '[[group]]\nname = "dcls"\nmethod = "dcls"\n'
CLUSTER_POINTS = ["dcls_s0.75_seed0", "dcls_s0_seed0"]


def _sweep_args(config: Path, root: Path) -> str:
    return f"--config {config} --results {root / 'R'} --runs {root / 'S'} --no-progress"


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A head and a worker node started by the README's cluster commands (token auth on, as
    `ray get-auth-token --generate` then plain `ray start --head` make it); always stopped, by
    killing exactly its processes. Skipped with the reason only when Ray cannot start here."""
    from helpers.ray_cluster import Cluster

    cluster = Cluster(sw.REPO / "README.md", cwd=sw.REPO)
    try:
        why = cluster.start()
        if why is not None:
            pytest.skip(f"Ray cannot start a head on this machine: {why}")
        yield cluster
    finally:
        cluster.stop()


def test_sweep_runs_on_a_cluster_started_as_the_readme_says(ray_cluster, tmp_path):
    """Issue 29: `ray get-auth-token --generate`, `ray start --head`, a worker with
    RAY_AUTH_MODE=token and `sweep run --address HEAD:PORT` with the token in ~/.ray/auth_token
    and no RAY_AUTH_MODE set for the sweep: both points are trained, on the worker (the head
    has no CPUs), and their JSONs written."""
    config = _write(tmp_path / "grid.toml", CLUSTER_GRID)
    assert "RAY_AUTH_MODE" not in ray_cluster.env
    r = ray_cluster.run("sweep", _sweep_args(config, tmp_path), timeout_s=180)
    assert r.returncode == 0, "\n".join(ray_cluster.log)
    assert sorted(p.stem for p in (tmp_path / "R").glob("*.json")) == CLUSTER_POINTS
    for name in CLUSTER_POINTS:
        rec = json.loads((tmp_path / "R" / f"{name}.json").read_text())
        assert rec["epochs"] == 1 and rec["n_test"] == 40 and 0 <= rec["test_accuracy"] <= 1
    assert "2 points: 0 already done, 2 run now, 0 failed" in r.stdout


def test_a_wrong_token_is_refused_with_one_line_saying_token(ray_cluster, tmp_path):
    """Issue 29 item 4, through the command: exit code 2, one line on stderr, nothing written."""
    config = _write(tmp_path / "grid.toml", CLUSTER_GRID)
    env = {**ray_cluster.env, "RAY_AUTH_TOKEN": "not-the-clusters-token"}
    r = ray_cluster.run("sweep", _sweep_args(config, tmp_path), timeout_s=120, env=env)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0] == "error: " + _wrong_token(ray_cluster.address, ray_cluster.home)
    assert not (tmp_path / "R").exists()


def _wrong_token(address: str, home: Path) -> str:
    return (f"the Ray cluster at {address} rejected the authentication token from the "
            "RAY_AUTH_TOKEN environment variable: it is not the cluster's token; copy the head's "
            "token file (~/.ray/auth_token on the head; `ray get-auth-token` prints it) to "
            f"{home / '.ray' / 'auth_token'} here, or set RAY_AUTH_TOKEN to its content")


# experiments.sweep.init_ray(address) in one process, timed: nothing listening, no token (HOME
# without ~/.ray/auth_token), a wrong token (RAY_AUTH_TOKEN), in that order (Ray's auth mode
# is process-wide: the first two leave it unset)
CONNECT = """
import json, os, sys, time
from experiments.sweep import init_ray
out = []
for address, env in json.loads(sys.argv[1]):
    os.environ.update(env)
    t0 = time.perf_counter()
    try:
        init_ray(address); error = None
    except ValueError as e:
        error = str(e)
    out.append({"error": error, "seconds": time.perf_counter() - t0})
print(json.dumps(out))
"""


def test_a_cluster_that_cannot_be_used_is_an_error_within_seconds(ray_cluster, tmp_path):
    """Unreachable, no token, wrong token: each a one-line ValueError within 5 s of calling
    init_ray (Ray alone retries for about 20 s, or minutes at a closed port)."""
    import shlex

    from helpers.ray_cluster import free_port, shell

    home = tmp_path / "home"          # no ~/.ray/auth_token
    home.mkdir()
    port = free_port()
    cases = [(f"127.0.0.1:{port}", {}), (ray_cluster.address, {}),
             (ray_cluster.address, {"RAY_AUTH_TOKEN": "not-the-clusters-token"})]
    env = {**ray_cluster.env, "HOME": str(home)}
    r = shell(f"python -c {shlex.quote(CONNECT)} {shlex.quote(json.dumps(cases))}", env,
              sw.REPO, 120)
    assert r.returncode == 0, r.stderr[-3000:]
    unreachable, no_token, wrong = json.loads(r.stdout)
    assert unreachable["error"].startswith(f"cannot reach Ray at 127.0.0.1:{port}")
    assert f"`ray start --head --port {port}`" in unreachable["error"]
    assert no_token["error"] == (
        f"the Ray cluster at {ray_cluster.address} requires token authentication and this "
        "machine has no token: copy the head's token file (~/.ray/auth_token on the head; "
        f"`ray get-auth-token` prints it) to {home / '.ray' / 'auth_token'} here, or set "
        "RAY_AUTH_TOKEN to its content")
    assert wrong["error"] == _wrong_token(ray_cluster.address, home)
    assert [c["seconds"] < 5 for c in (unreachable, no_token, wrong)] == [True] * 3
