"""`python -m lava_runtime report RUN_DIR`: the page's content, the stage cache, bad input, and
the page opened in a real headless browser (Debian's chromium; tools/ensure_chromium.sh).

One tiny structure run (16 hidden neurons, 16 channels, 30 steps, 4 classes) is trained once for
the module; threshold 0.1 makes its hidden layer spike, so Lava == emulator is not trivial.
"""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hw_profiles import list_profiles, load_profile
from lava_runtime.report.build import REPORT_DIR, make_report
from lava_runtime.report.html import render_html

REPO = Path(__file__).resolve().parents[1]
TINY = {"dataset": "synthetic", "method": "structure", "sparsity": 0.75, "epochs": 3,
        "hidden": [16], "batch_size": 8, "n_mels": 16, "time_steps": 30, "kernel_size": 8,
        "threshold": 0.1, "data_options": {"n_train": 80, "n_test": 24, "n_classes": 4}}
LAVA_LIMIT = 3
IMG_SRC = re.compile(r'<img src="([^"]*)"')


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    import trainer

    out = tmp_path_factory.mktemp("report") / "run"
    trainer.train(dict(TINY), out=out, progress=False)
    return out


@pytest.fixture(scope="module")
def report(run_dir):
    data = make_report(run_dir, lava_limit=LAVA_LIMIT, progress=False)
    return data, Path(data["html"]).read_text()


def _copy_run(run_dir: Path, dest: Path) -> Path:
    """A fresh run folder with only the trainer's files (no report products)."""
    dest.mkdir()
    for name in ("checkpoint.pt", "metrics.json", "config.json"):
        shutil.copy2(run_dir / name, dest / name)
    return dest


def _row(*cells) -> str:
    """The HTML of a table row's leading cells, as report.html writes them."""
    out = []
    for c in cells:
        text = html.escape(str(c))
        try:
            float(c)
            out.append(f'<td class="num">{text}</td>')
        except ValueError:
            out.append(f"<td>{text}</td>")
    return "".join(out)


# ------------------------------------------------------------------------------- content

def test_report_accuracies_match_independent_runs(run_dir, report):
    from deployed.netx_h5 import load
    from deployed.emulator import emulate
    from trainer.data import dataset_from_recipe

    data, page = report
    assert Path(data["html"]) == run_dir / "report.html"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert data["float"]["accuracy"] == metrics["test_accuracy"]
    assert data["float"]["accuracy_train_kernels"] == metrics["test_accuracy_train_kernels"]

    net = load(run_dir / REPORT_DIR / "net.h5")
    test = dataset_from_recipe(net.meta["data_recipe"], "test")
    act = emulate(net, net.input.encode(test.x.numpy()))
    acc = float(np.mean(act.predictions(net) == test.y.numpy()))
    assert data["emulator"]["samples"] == len(test) == 24
    assert data["emulator"]["accuracy"] == acc
    spikes = act.spike_counts()[0] / len(test)
    assert spikes > 1  # the hidden layer spikes: the Lava comparison below is not trivial
    assert data["emulator"]["spikes_per_sample_per_layer"] == [spikes]

    lava = data["lava"]
    assert lava["samples"] == LAVA_LIMIT
    assert lava["exact_match_fraction"] == 1.0  # Lava is bit-exact to the emulator
    assert lava["prediction_agreement"] == 1.0
    assert lava["accuracy"] == lava["emulator_accuracy_same_samples"] == float(
        np.mean(act.predictions(net)[:LAVA_LIMIT] == test.y.numpy()[:LAVA_LIMIT]))

    for stage, value, n in [("float model, training kernels",
                             data["float"]["accuracy_train_kernels"], 24),
                            ("float model, integer delays", data["float"]["accuracy"], 24),
                            ("integer network, emulator (bit-exact fixed point)", acc, 24),
                            ("integer network, Lava (Loihi 2 simulator, fixed_pt)",
                             lava["accuracy"], LAVA_LIMIT)]:
        assert _row(stage, f"{100 * value:.1f}", n) in page, stage
    # what "Lava" is, and that no figure came from a chip
    assert "running this project&#x27;s ProcessModels" in page
    assert "Nothing on this page ran on a Loihi chip: the loihi2 backend is untested" in page


def test_report_budgets_cover_every_profile_with_refusals(run_dir, report):
    from deployed.netx_h5 import load
    from lava_runtime.budget.estimate import estimate
    from deployed.emulator import emulate
    from trainer.data import dataset_from_recipe

    data, page = report
    budgets = data["budgets"]
    assert [b["profile"] for b in budgets] == list_profiles()
    refused = {b["profile"]: b["refused"] for b in budgets if b["refused"]}
    # this network has delays (up to 7 steps): Xylo Audio 2 has none and must refuse it
    assert "xylo-audio2" in refused and "loihi2" not in refused
    for profile, reasons in refused.items():
        assert _row(profile, "neuromorphic", "no") in page
        for r in reasons:
            assert _row(profile, r) in page

    net = load(run_dir / REPORT_DIR / "net.h5")
    test = dataset_from_recipe(net.meta["data_recipe"], "test")
    b = estimate(net, emulate(net, net.input.encode(test.x.numpy())), load_profile("loihi2"))
    mine = next(x for x in budgets if x["profile"] == "loihi2")
    assert mine["energy_per_sample_joules"]["total"] == b.energy_total
    assert mine["synops_per_sample"] == b.synops_per_sample
    assert f"{b.energy_total:.3g}" in page
    assert mine["static_energy_per_sample_joules"] == b.static_energy_per_sample_joules
    for head in ("dynamic energy per sample (J)", "static energy per sample (J)",
                 "memory (bytes, model)", "cores (model)"):
        assert f"<th>{head}</th>" in page
    assert "own model (deployed.cores" in page


def test_report_config_ei_statistic_and_figures(run_dir, report):
    data, page = report
    assert _row("kernel_size", 8, "steps (delays 0..K-1)") in page
    assert _row("sparsity", 0.75, "fraction of candidate connections absent") in page
    analysis = json.loads((run_dir / REPORT_DIR / "analysis" / "analysis.json").read_text())
    assert data["analysis"] == analysis
    for layer in analysis["layers"]:
        s = layer["trained"]
        assert _row(layer["name"], "trained", s["n_synapses"], s["n_excitatory"],
                    s["n_inhibitory"], s["n_pairs"], f"{s['observed_fraction']:.4g}") in page
    srcs = IMG_SRC.findall(page)
    # receptive fields of fc1 and readout, trained and at initialisation (the trainer writes
    # checkpoint_init.pt), E/I clustering, delay histograms, connections per delay, budget plot
    files = analysis["files"]
    assert len(files["receptive_fields_before"]) == 2
    assert len(srcs) == len(files["receptive_fields"]) + len(files["receptive_fields_before"]) \
        + 3 + 1 == 8
    import base64
    for s in srcs:
        assert s.startswith("data:image/png;base64,")
        assert base64.b64decode(s.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")
    # self-contained: nothing outside the file is referenced
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert "<link" not in page and "<script src" not in page and "url(" not in page


# ------------------------------------------------------------------------------- cache

def test_rerun_reuses_every_stage_and_writes_the_same_page(run_dir, report, capsys):
    folder = run_dir / REPORT_DIR
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.name != "report.json"}
    page = (run_dir / "report.html").read_bytes()
    make_report(run_dir, lava_limit=LAVA_LIMIT, progress=True)
    out = capsys.readouterr().out
    stages = [l for l in out.splitlines() if re.match(r"\[\d/6\]", l)]
    assert len(stages) == 6 and all(": reused" in l for l in stages), out
    assert (run_dir / "report.html").read_bytes() == page
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_deleted_network_is_re_exported_byte_for_byte(run_dir, report, capsys):
    folder = run_dir / REPORT_DIR
    net_bytes = (folder / "net.h5").read_bytes()
    (folder / "net.h5").unlink()
    make_report(run_dir, lava_limit=LAVA_LIMIT, progress=True)
    out = capsys.readouterr().out
    assert "[1/6] export: computing" in out
    assert (folder / "net.h5").read_bytes() == net_bytes
    # the same network: downstream stages keep their results
    for stage in ("emulator", "Lava", "budget", "E/I analysis"):
        assert f"{stage}: reused" in out, out


def test_lava_limit_zero_skips_lava_and_says_so(run_dir, report, tmp_path):
    lava_json = (run_dir / REPORT_DIR / "lava.json").read_bytes()
    data = make_report(run_dir, tmp_path / "nolava.html", lava_limit=0, progress=False)
    assert data["lava"] is None
    page = (tmp_path / "nolava.html").read_text()
    assert "Lava was skipped (--lava-limit 0)" in page
    assert _row("integer network, Lava (Loihi 2 simulator, fixed_pt)", "-", 0,
                "Lava skipped (--lava-limit 0)") in page
    assert (run_dir / REPORT_DIR / "lava.json").read_bytes() == lava_json  # left alone


def test_val_split_evaluates_the_float_model(run_dir, tmp_path):
    from trainer.evaluate import evaluate

    run = _copy_run(run_dir, tmp_path / "run")
    data = make_report(run, split="val", lava_limit=0, profile_set="loihi2,gpu",
                       progress=False)
    ref = evaluate(run, "val")
    assert data["float"]["source"] == "trainer.evaluate"
    assert data["float"]["accuracy"] == ref["accuracy"]
    assert data["float"]["n_samples"] == ref["n_samples"] == data["emulator"]["samples"]
    assert [b["profile"] for b in data["budgets"]] == ["loihi2", "gpu"]


# ------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("args, message", [
    (["{missing}"], r"run folder .*missing does not exist; pass a folder written by"),
    (["{empty}"], r"run folder .*empty has no checkpoint.pt"),
    (["{run}", "--profiles", "loihi2,loihi9"],
     r"unknown hardware profile 'loihi9'; known profiles: ann-45nm, cpu"),
    (["{run}", "--profiles", "loihi2,,gpu"], r"--profiles 'loihi2,,gpu' has an empty"),
    (["{run}", "--limit", "-1"], r"--limit must be an integer >= 0"),
    (["{run}", "--profile", "all"], r"--profile is the one profile the network is exported "
                                    r"for; --profiles all budgets it on every profile"),
    (["{run}", "--out", "{run}/page.md"], r"--out .*page.md must end in .html"),
    (["{run}", "--out", "{missing}/page.html"],
     r"--out .*missing/page.html: folder .*missing does not exist"),
    (["{run}", "--profile", "gpu"], r"--profile gpu is a dense profile"),
    # refused by the exporter itself (Loihi 1 has no graded spikes): no empty report/ is left
    (["{run}", "--profile", "loihi1"],
     r"network does not fit hardware profile 'loihi1'.*nothing was written"),
])
def test_bad_input_is_refused_before_any_work(run_dir, tmp_path, capsys, args, message):
    from lava_runtime.__main__ import main

    run = _copy_run(run_dir, tmp_path / "run")
    (tmp_path / "empty").mkdir()
    names = {"run": run, "empty": tmp_path / "empty", "missing": tmp_path / "missing"}
    argv = ["report"] + [a.format(**names) for a in args]
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert re.search("error: " + message, capsys.readouterr().err)
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt", "config.json",
                                                      "metrics.json"]


def test_bad_checkpoint_is_refused_before_any_work(tmp_path, capsys):
    from lava_runtime.__main__ import main

    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SystemExit):
        main(["report", str(run)])
    assert "checkpoint.pt is not a PyTorch file" in capsys.readouterr().err
    assert [p.name for p in run.iterdir()] == ["checkpoint.pt"]


# ------------------------------------------------------------------------------- browser

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def _chromium() -> str:
    exe = shutil.which("chromium")
    if exe is None:
        pytest.skip("chromium is not installed: run tools/ensure_chromium.sh (installs "
                    "Debian's chromium as root, or prints how to install it)")
    return exe


def _run_chromium(exe: str, profile_dir: Path, *args: str) -> str:
    """Run headless chromium with a fresh profile; stdout. Killed (whole group) on timeout."""
    proc = subprocess.Popen([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    assert proc.returncode == 0, err[-2000:]
    return out


def _images_in_browser(exe: str, page: Path, profile_dir: Path) -> tuple[int, int]:
    """(images on the page, images decoded with naturalWidth > 0) as the page's own script
    counted them after load."""
    dom = _run_chromium(exe, profile_dir, "--virtual-time-budget=10000", "--dump-dom",
                        page.resolve().as_uri())
    body = re.search(r"<body[^>]*>", dom).group(0)
    total = re.search(r'data-images-total="(\d+)"', body)
    decoded = re.search(r'data-images-decoded="(\d+)"', body)
    assert total and decoded, f"the page's render check did not run: {body}"
    return int(total.group(1)), int(decoded.group(1))


def test_chromium_renders_every_figure(report, tmp_path):
    from PIL import Image

    exe = _chromium()
    data, page = report
    n_img = len(IMG_SRC.findall(page))
    assert n_img >= 3
    assert _images_in_browser(exe, Path(data["html"]), tmp_path / "p1") == (n_img, n_img)

    shot = tmp_path / "shot.png"
    _run_chromium(exe, tmp_path / "p2", "--window-size=1200,3000", f"--screenshot={shot}",
                  Path(data["html"]).resolve().as_uri())
    im = np.asarray(Image.open(shot).convert("RGB"))
    assert im.shape[:2] == (3000, 1200)
    not_white = np.any(im < 245, axis=2).mean()
    colours = len(np.unique(im.reshape(-1, 3), axis=0))
    assert not_white > 0.05, f"screenshot nearly blank ({100 * not_white:.1f}% non-white)"
    # figures (colour maps, bars) bring many colours; text alone has few grey levels
    assert colours > 200, f"screenshot has only {colours} colours: figures not drawn?"


def test_chromium_check_catches_a_broken_figure(report, tmp_path):
    """The render check can fail: a PNG with a valid signature but corrupt data is counted as
    present and not decoded."""
    exe = _chromium()
    data, _ = report
    good = (Path(data["run_dir"]) / REPORT_DIR / "budget.png").read_bytes()
    broken = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    page = {"title": "t", "subtitle": "s", "notes": [],
            "sections": [{"title": "figs", "figures": [{"caption": "good", "png": good},
                                                       {"caption": "broken", "png": broken}]}]}
    path = tmp_path / "broken.html"
    path.write_text(render_html(page))
    assert _images_in_browser(exe, path, tmp_path / "p") == (2, 1)


def test_missing_chromium_skips_naming_the_install_script(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(pytest.skip.Exception, match=r"run tools/ensure_chromium.sh"):
        _chromium()


def test_ensure_chromium_is_idempotent_when_installed():
    if shutil.which("chromium") is None:
        pytest.skip("chromium is not installed: run tools/ensure_chromium.sh")
    r = subprocess.run(["sh", str(REPO / "tools" / "ensure_chromium.sh")], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"ensure_chromium: {shutil.which('chromium')} is installed"
