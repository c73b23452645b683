"""`budget` command: arguments checked before work; end to end on a small exported network."""
from __future__ import annotations

import json

import pytest

from lava_runtime.budget.cli import run_budget


@pytest.fixture(scope="module")
def net_h5(tmp_path_factory):
    from deployed.netx_h5 import save
    from deployed.synthetic import random_network

    net = random_network((10, 12, 4), time_steps=30, max_delay=6, density=0.3, seed=3,
                         input_weight_exp=0, vth=600)
    path = tmp_path_factory.mktemp("net") / "net.h5"
    save(net, path)
    return path


def test_bad_arguments_fail_before_work(tmp_path, net_h5):
    with pytest.raises(ValueError, match="unknown hardware profile 'loihi9'; known profiles"):
        run_budget(net_h5, profile="loihi9")
    with pytest.raises(ValueError, match=r"--json .*out.txt must end in .json"):
        run_budget(net_h5, json_path=tmp_path / "out.txt")
    with pytest.raises(ValueError, match=r"--plot .*folder .*nowhere does not exist"):
        run_budget(net_h5, plot_path=tmp_path / "nowhere" / "p.png")
    with pytest.raises(ValueError, match="--limit must be a positive integer, got 0"):
        run_budget(net_h5, limit=0)
    with pytest.raises(ValueError, match=r"network file .*missing.h5 does not exist"):
        run_budget(tmp_path / "missing.h5")
    assert list(tmp_path.iterdir()) == []


def test_all_profiles_json_and_plot(tmp_path, net_h5, capsys):
    out, png = tmp_path / "b.json", tmp_path / "b.png"
    budgets = run_budget(net_h5, profile="all", dataset="synthetic", limit=5, json_path=out,
                         plot_path=png, progress=False)
    text = capsys.readouterr().out
    assert "DOES NOT FIT xylo-audio2" in text and "energy per sample" in text
    data = json.loads(out.read_text())
    names = [p["profile"] for p in data["profiles"]]
    assert names == ["ann-45nm", "cpu", "gpu", "loihi1", "loihi2", "spinnaker2", "xylo-audio2"]
    loihi2 = data["profiles"][4]
    for key in ("synops_per_sample", "dense_synops_per_sample", "neuron_updates_per_sample",
                "energy_per_sample_joules", "memory_bytes", "cores", "profile", "sources"):
        assert key in loihi2
    assert loihi2["energy_per_sample_joules"]["total"] == pytest.approx(
        sum(loihi2["energy_per_sample_joules"]["breakdown"].values()))
    # the tables say what the figures are: dynamic energy, static apart, memory/cores a model
    head = next(line for line in text.splitlines() if line.startswith("profile  "))
    for col in ("memory B (model)", "cores (model)", "dynamic energy/sample",
                "static energy/sample"):
        assert col in head
    assert "memory (model estimate)" in text and "dynamic energy per sample" in text
    assert loihi2["energy_per_sample_joules"]["scope"] == "dynamic"
    assert loihi2["static_energy_per_sample_joules"] == pytest.approx(
        0.029 * loihi2["steps"] * loihi2["time_per_step_seconds"])
    spinn = data["profiles"][5]
    assert spinn["static_energy_per_sample_joules"] is None and spinn["static_energy_note"]
    assert "deployed.cores" in loihi2["memory_model"]
    assert data["synops_per_sample"] == budgets[0].synops_per_sample > 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.json", "b.png"]


def test_budget_of_a_saved_activity_equals_emulating_again(tmp_path, net_h5, capsys):
    """`run --save-activity` then `budget --activity`: the run's own spikes are budgeted, with the
    same figures as emulating the dataset again; a file that is not an activity is refused."""
    from lava_runtime.run_cli import run

    act = tmp_path / "act.npz"
    run(net_h5, dataset="synthetic", backend="emulator", limit=5, activity_path=act)
    saved = run_budget(net_h5, activity_path=act, progress=False)[0].to_json()
    again = run_budget(net_h5, dataset="synthetic", limit=5, progress=False)[0].to_json()
    assert saved == again and saved["n_samples"] == 5
    assert run_budget(net_h5, activity_path=act, limit=2, progress=False)[0].n_samples == 2
    (tmp_path / "bad.npz").write_bytes(b"not numpy")
    with pytest.raises(ValueError, match=r"activity file .*bad.npz is not one written by"):
        run_budget(net_h5, activity_path=tmp_path / "bad.npz")
