"""experiments.showcase (config -> train -> export -> Lava + emulator -> budget, one JSON) and
experiments.pareto (accuracy in fixed point against energy, Pareto front), at a tiny size."""
from __future__ import annotations

import json

import pytest

from experiments.pareto import main as pareto_main
from experiments.pareto import pareto_front
from experiments.showcase import main as showcase_main

CONFIG = """\
dataset = "synthetic"
method = "structure"
sparsity = 0.5
hidden = [16]
n_mels = 16
time_steps = 30
epochs = 1
batch_size = 40
num_threads = 1
tau = 2.0

[data_options]
n_train = 120
n_test = 40
"""


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    root = tmp_path_factory.mktemp("showcase")
    (root / "tiny.toml").write_text(CONFIG)
    code = showcase_main(["--config", str(root / "tiny.toml"), "--out", str(root / "run"),
                          "--json", str(root / "showcase.json"), "--no-progress"])
    assert code == 0
    return root, json.loads((root / "showcase.json").read_text())


def test_one_json_with_every_stage(result):
    root, s = result
    assert s["method"] == "structure" and s["n_test"] == 40
    assert s["lava_equals_emulator_fraction"] == 1.0
    assert s["lava_accuracy"] == s["emulator_accuracy"]
    assert s["synapses"] == round(0.5 * 16 * 16) + round(0.5 * 16 * 10)
    assert s["energy_per_sample_joules"] > 0 and s["synops_per_sample"] >= 0
    for f in ("train/checkpoint.pt", "net.h5", "run.json", "budget.json", "showcase.json"):
        assert (root / "run" / f).is_file()
    # the export's fidelity bound (export.fidelity), measured on validation, never on test
    assert s["max_loss_bound"] == 0.5 and s["fixed_point_loss_val"] <= 0.5
    assert 0 <= s["emulator_val_accuracy"] <= 1 and s["qat_epochs"] >= 0
    assert len(s["synapses_zeroed"]) == 2


def test_pareto_plot_and_front(result, tmp_path):
    root, s = result
    other = dict(s, name="cheaper-worse", emulator_accuracy=s["emulator_accuracy"] - 0.1,
                 energy_per_sample_joules=s["energy_per_sample_joules"] / 2)
    dominated = dict(s, name="dominated", emulator_accuracy=s["emulator_accuracy"] - 0.1,
                     energy_per_sample_joules=s["energy_per_sample_joules"] * 2)
    for rec in (other, dominated):
        (tmp_path / f"{rec['name']}.json").write_text(json.dumps(rec))
    (tmp_path / "unrelated.json").write_text(json.dumps({"x": 1}))
    code = pareto_main([str(root / "showcase.json"), str(tmp_path), "--plot",
                        str(tmp_path / "p.png"), "--json", str(tmp_path / "p.json")])
    assert code == 0 and (tmp_path / "p.png").stat().st_size > 1000
    out = json.loads((tmp_path / "p.json").read_text())
    front = {p["name"]: p["pareto"] for p in out["points"]}
    assert front["cheaper-worse"] and not front["dominated"]
    assert out["skipped"] == ["unrelated.json: no emulator_accuracy / energy_per_sample_joules"]


def test_front_rule():
    pts = [{"emulator_accuracy": a, "energy_per_sample_joules": e}
           for a, e in ((0.9, 1.0), (0.95, 2.0), (0.9, 3.0), (0.95, 2.0))]
    assert pareto_front(pts) == [True, True, False, True]


def test_bad_input(tmp_path, capsys):
    assert showcase_main(["--config", str(tmp_path / "none.toml"), "--out",
                          str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "o").exists()
    assert pareto_main([str(tmp_path / "none"), "--plot", str(tmp_path / "p.png")]) == 2


def test_recurrent_network_counts_its_recurrent_synapses(tmp_path):
    """A recurrent network's JSON counts every deployed synapse (the budget's count) and says
    how many are recurrent, their largest delay and their synaptic operations."""
    head, table = CONFIG.split("[data_options]")  # trainer keys go before the table
    (tmp_path / "rec.toml").write_text(head + "recurrent = true\nrecurrent_kernel_size = 5\n\n"
                                       "[data_options]" + table)
    code = showcase_main(["--config", str(tmp_path / "rec.toml"), "--out", str(tmp_path / "run"),
                          "--json", str(tmp_path / "s.json"), "--no-progress",
                          "--max-loss", "none"])
    assert code == 0
    s = json.loads((tmp_path / "s.json").read_text())
    feed_forward = round(0.5 * 16 * 16) + round(0.5 * 16 * 10)
    assert s["recurrent_synapses"] > 0
    assert s["synapses"] == feed_forward + s["recurrent_synapses"]
    assert 0 <= s["recurrent_max_delay"] <= 4
    assert 0 <= s["recurrent_synops_per_sample"] <= s["synops_per_sample"]
    assert s["lava_equals_emulator_fraction"] == 1.0
