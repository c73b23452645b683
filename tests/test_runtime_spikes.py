"""`python -m lava_runtime run|budget|report --spikes EVENTS.npy [--labels LABELS.npy]`: input
spikes that are not this project's audio front end (issue 25 items 2 and 5).

Networks: a netx file written by hand in lava-dl's layout (two CUBA dense layers, the output
layer spiking, binary input; converted by export.from_netx) and a random network of this
project (graded 8-bit input, voltage readout). The emulator runs most cases; Lava one tiny one.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from deployed import netx_h5
from deployed.activity import Activity
from deployed.emulator import emulate
from deployed.synthetic import random_network
from export.from_netx import netx_to_network
from lava_runtime.budget.cli import run_budget
from lava_runtime.pipeline import load_spikes
from lava_runtime.run_cli import run

REPO = Path(__file__).resolve().parents[1]
T, C, HIDDEN, OUT = 16, 6, 10, 3


def cli(*args, timeout=180):
    """The command in a fresh process (as a user runs it)."""
    return subprocess.run([sys.executable, "-m", "lava_runtime", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def main_exit(capsys, *args) -> tuple[int, str, str]:
    """The command in this process (fast): (exit code, stdout, stderr)."""
    from lava_runtime.__main__ import main

    capsys.readouterr()
    try:
        code = main([str(a) for a in args])
    except SystemExit as e:
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def _netx_file(path: Path) -> None:
    """lava-dl's netx layout: input layer, dense (per-post delays) -> dense, CUBA neurons."""
    rng = np.random.default_rng(6)
    layers = [(2 * rng.integers(-10, 40, (HIDDEN, C)), rng.integers(0, 4, HIDDEN), 200),
              (2 * rng.integers(-30, 40, (OUT, HIDDEN)), None, 300)]
    with h5py.File(path, "w") as f:
        g = f.create_group("layer/0")
        g.create_dataset("type", (1,), "S10", [b"input"])
        g.create_dataset("shape", data=np.array([C]))
        for i, (w, d, vth) in enumerate(layers, start=1):
            g = f.create_group(f"layer/{i}")
            g.create_dataset("type", (1,), "S10", [b"dense"])
            g.create_dataset("shape", data=np.array([w.shape[0]]))
            g.create_dataset("weight", data=w.astype(np.float32))
            if d is not None:
                g.create_dataset("delay", data=d.astype(np.float32))
            for key, value in {"type": "CUBA", "iDecay": 1024, "vDecay": 256, "vThMant": vth,
                               "refDelay": 1, "gradedSpike": False}.items():
                g.create_dataset(f"neuron/{key}", data=value)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("spikes")
    _netx_file(d / "net.net")
    net, _ = netx_to_network(d / "net.net", time_steps=T)
    netx_h5.save(net, d / "spiking.h5")
    rng = np.random.default_rng(0)
    events = (rng.random((7, T, C)) < 0.3).astype(np.uint8)
    np.save(d / "events.npy", events)
    np.save(d / "labels.npy", np.arange(7) % OUT)
    voltage = random_network((C, 12, 4), time_steps=T, max_delay=5, vth=40, seed=3)
    netx_h5.save(voltage, d / "voltage.h5")
    graded = rng.integers(0, 256, (4, T, C)) * (rng.random((4, T, C)) < 0.3)
    np.save(d / "graded.npy", graded)
    return {"dir": d, "spiking": d / "spiking.h5", "voltage": d / "voltage.h5",
            "events": d / "events.npy", "labels": d / "labels.npy", "graded": d / "graded.npy",
            "payloads": events.astype(np.int64)}


def test_run_with_labels_scores_output_spike_counts(files, tmp_path):
    """A spiking output layer predicts the class whose neuron spikes most (not the voltage)."""
    out = tmp_path / "r.json"
    rep = run(files["spiking"], spikes=files["events"], labels=files["labels"],
              backend="emulator", json_path=out)
    net = netx_h5.load(files["spiking"])
    act = emulate(net, files["payloads"])
    counts = act.spikes[-1].sum(axis=1)
    # a meaningful check: classes vary, and the old rule (softmax of v) would differ
    assert len(set(counts.argmax(axis=1))) == OUT
    L = net.latency
    v = act.readout_v[:, L:L + T].astype(float)
    e = np.exp(v - v.max(axis=-1, keepdims=True))
    assert not np.array_equal((e / e.sum(-1, keepdims=True)).sum(1).argmax(1),
                              counts.argmax(axis=1))
    y = np.load(files["labels"])
    assert rep["accuracy"] == float(np.mean(counts.argmax(axis=1) == y))
    assert np.array_equal(act.predictions(net), counts.argmax(axis=1))
    assert json.loads(out.read_text())["spikes"] == str(files["events"])
    assert rep["output"] == "spikes" and "dataset" not in rep


def test_run_without_labels_reports_agreement_and_saves_output_spikes(files, tmp_path):
    act_path = tmp_path / "act.npz"
    r = cli("run", files["spiking"], "--spikes", files["events"], "--backend", "emulator",
            "--compare", "lava", "--limit", 3, "--save-activity", act_path,
            "--json", tmp_path / "r.json")
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["accuracy"] is None and rep["compare"]["accuracy"] is None
    assert rep["compare"]["output_spike_agreement"] == 1.0
    assert rep["compare"]["exact_match_fraction"] == 1.0
    assert "no labels on 3 samples" in r.stdout and "output spikes on 100.0%" in r.stdout
    assert "output layer:" in r.stdout
    with np.load(act_path) as z:
        out = z["output_spikes"]
        steps = T + netx_h5.load(files["spiking"]).latency
        assert out.shape == (3, steps, OUT) and out.dtype == np.uint8
        assert np.array_equal(out, z["spikes_1"]) and out.sum() > 0
    # the budget reads that file like any other activity
    assert run_budget(files["spiking"], activity_path=act_path, progress=False)[0].n_samples == 3


def test_voltage_readout_saves_no_output_spikes(files, tmp_path):
    """Graded payloads within the input's 8 message bits; no output_spikes for a readout."""
    act_path = tmp_path / "act.npz"
    rep = run(files["voltage"], spikes=files["graded"], backend="emulator",
              activity_path=act_path)
    assert rep["samples"] == 4 and rep["accuracy"] is None
    with np.load(act_path) as z:
        assert "output_spikes" not in z.files
    assert Activity.load(act_path).n_samples == 4


def test_shorter_samples_end_in_silence(files, tmp_path):
    short = files["payloads"][:, :T - 5]
    np.save(tmp_path / "short.npy", short)
    net = netx_h5.load(files["spiking"])
    p, y = load_spikes(net, tmp_path / "short.npy")
    assert y is None and p.shape == (7, T, C) and p.dtype == np.int64
    assert np.array_equal(p[:, :T - 5], short) and not p[:, T - 5:].any()
    np.save(tmp_path / "float.npy", short.astype(np.float32))  # whole-number floats: accepted
    assert np.array_equal(load_spikes(net, tmp_path / "float.npy")[0], p)


def test_budget_on_spikes_equals_the_emulated_activity(files, tmp_path):
    from hw_profiles import load_profile
    from lava_runtime.budget.estimate import compare

    net = netx_h5.load(files["spiking"])
    got = run_budget(files["spiking"], spikes=files["events"], limit=5, progress=False,
                     json_path=tmp_path / "b.json")[0]
    want = compare(net, emulate(net, files["payloads"][:5]), [load_profile("loihi2")])[0]
    assert got.n_samples == 5 and got.synops_per_sample == want.synops_per_sample > 0
    assert got.energy_total == want.energy_total
    with pytest.raises(ValueError, match="pass one"):
        run_budget(files["spiking"], spikes=files["events"], activity_path=tmp_path / "x.npz")


def _bad(files, tmp_path):
    """name -> (spikes file made here, labels file or None, text the error must hold)."""
    d = tmp_path
    ev = files["payloads"]
    cases = {
        "wrong_channels": (np.zeros((2, T, C + 1), np.int64), None, f"has {C + 1} channels"),
        "non_integer": (ev * 0.5, None, "not whole numbers (e.g. 0.5 at sample"),
        "out_of_range": (ev * 2, None, "values 0..2; the network's input takes binary spikes"),
        "too_long": (np.zeros((2, T + 3, C), np.int64), None, f"has {T + 3} steps"),
        "not_3d": (np.zeros((T, C), np.int64), None, "expected (N, T, C)"),
        "strings": (np.full((2, T, C), "a"), None, "holds <U1 values"),
        "labels_out_of_range": (ev, np.full(7, OUT), f"class indices 0..{OUT - 1}"),
        "labels_count": (ev, np.zeros(3, np.int64), "expected (7,)"),
    }
    out = {}
    for name, (x, y, text) in cases.items():
        np.save(d / f"{name}.npy", x)
        lab = None
        if y is not None:
            lab = d / f"{name}_labels.npy"
            np.save(lab, y)
        out[name] = (d / f"{name}.npy", lab, text)
    (d / "text.npy").write_text("0 1 0\n")
    out["not_npy"] = (d / "text.npy", None, "is not a .npy file")
    out["missing"] = (d / "missing.npy", None, "does not exist")
    out["labels_missing"] = (files["events"], d / "nolabels.npy", "does not exist")
    return out


@pytest.mark.parametrize("command", ["run", "budget", "report"])
def test_bad_spikes_one_line_exit_2_nothing_written(files, tmp_path, command, capsys):
    bad = _bad(files, tmp_path)
    outs = tmp_path / "out"
    outs.mkdir()
    for name, (spikes, labels, text) in bad.items():
        if command == "budget" and labels is not None:
            continue  # the budget takes no labels
        extra = ["--labels", labels] if labels is not None else []
        save = {"run": ["--save-activity", outs / "a.npz", "--backend", "emulator",
                        "--json", outs / "r.json"],
                "budget": ["--json", outs / "r.json", "--plot", outs / "b.png"],
                "report": ["--out", outs / "r.html", "--limit", 0]}[command]
        code, out, err = main_exit(capsys, command, files["spiking"], "--spikes", spikes,
                                   *extra, *save)
        err = err.strip()
        assert code == 2, (name, out, err)
        assert len(err.splitlines()) == 1 and text in err, (name, err)
        assert str(labels if "labels" in name else spikes) in err, (name, err)
        assert list(outs.iterdir()) == [], name
    if command == "run":  # as a user runs it: a fresh process, one case
        r = cli(command, files["spiking"], "--spikes", bad["wrong_channels"][0])
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_spikes_and_dataset_options_exclude_each_other(files, capsys):
    for args, text in ((["--spikes", files["events"], "--dataset", "synthetic"], "--dataset"),
                       (["--spikes", files["events"], "--split", "val"], "--split"),
                       (["--labels", files["labels"]], "--labels goes with --spikes")):
        code, _, err = main_exit(capsys, "run", files["spiking"], "--backend", "emulator",
                                 *args)
        assert code == 2 and text in err, err
    code, _, err = main_exit(capsys, "budget", files["spiking"], "--spikes", files["events"],
                             "--dataset", "synthetic")
    assert code == 2 and "--dataset" in err


def test_report_on_spikes(files, tmp_path):
    """report NET --spikes: emulator, Lava on the first samples, budget, one HTML page."""
    from lava_runtime.__main__ import main

    out = tmp_path / "page.html"
    assert main(["report", str(files["spiking"]), "--spikes", str(files["events"]),
                 "--labels", str(files["labels"]), "--limit", "2", "--profiles", "loihi2,gpu",
                 "--out", str(out)]) == 0
    html = out.read_text()
    assert "Backends on the same input spikes" in html and "Hardware budgets" in html
    assert "data:image/png;base64," in html and "Accuracy" in html
    from lava_runtime.report.spikes import make_spikes_report

    data = make_spikes_report(files["spiking"], files["events"], lava_limit=0,
                              profile_set="loihi2", progress=False)
    assert data["html"] == str(files["dir"] / "spiking_report.html")
    assert data["lava"] is None and data["emulator"]["accuracy"] is None
    assert "Lava and emulator agree" in Path(data["html"]).read_text()
    for extra in (["--allow-unfinished"], ["--split", "val"]):
        with pytest.raises(SystemExit) as e:
            main(["report", str(files["spiking"]), "--spikes", str(files["events"]), *extra])
        assert e.value.code == 2


def test_ops_charged_in_one_format(files, capsys):
    """Issue 23: the comparison table's ops column mixed 7.52e+04 with 163200 (so did the
    per-layer counts)."""
    from lava_runtime.budget.text import format_comparison, format_layers
    from lava_runtime.budget.units import format_count

    assert [format_count(v) for v in (75220.5, 163200, 512, 0.25, 1.2e6)] == [
        "75.2k", "163k", "512", "0.25", "1.2M"]
    budgets = run_budget(files["voltage"], spikes=files["graded"], profile="all",
                         progress=False)
    text = format_comparison(budgets)
    assert "e+" not in text
    for b in budgets:
        ops = b.synops_per_sample if b.kind == "neuromorphic" else b.dense_synops_per_sample
        assert f" {format_count(ops)} " in text
    layers = format_layers(budgets[0])
    assert "e+" not in layers
    assert f" {format_count(budgets[0].dense_synops_per_sample)} " in layers
