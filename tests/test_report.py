"""`python -m lava_runtime report RUN_DIR`: the page's content, the stage cache, bad input, and
the page opened in a real headless browser (Debian's chromium; tools/ensure_chromium.sh).

One tiny structure run (16 hidden neurons, 16 channels, 30 steps, 4 classes) is trained once for
the module; threshold 0.1 makes its hidden layer spike, so Lava == emulator is not trivial. A
second one is stopped after 2 of its 3 epochs (an unfinished run).
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
from lava_runtime.budget.text import format_energy
from lava_runtime.report.build import REPORT_DIR, make_report
from lava_runtime.report.html import render_html

REPO = Path(__file__).resolve().parents[1]
TINY = {"dataset": "synthetic", "method": "structure", "sparsity": 0.75, "epochs": 3,
        "hidden": [16], "batch_size": 8, "n_mels": 16, "time_steps": 30, "kernel_size": 8,
        "threshold": 0.1, "data_options": {"n_train": 80, "n_test": 24, "n_classes": 4}}
LAVA_LIMIT = 3
IMG_SRC = re.compile(r'<img src="([^"]*)"')
LAVA_STAGE = "integer network, Lava (Loihi 2 simulator, fixed_pt)"


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

    # every stage on the same samples: the first LAVA_LIMIT, and all 24 (Lava: not run there)
    from trainer.checkpoint import load_checkpoint_dict
    from trainer.evaluate import model_from_checkpoint, predict

    model = model_from_checkpoint(load_checkpoint_dict(run_dir / "checkpoint.pt"))
    y = test.y.numpy()
    fpred = predict(model, test.x, hard=True).numpy()
    assert data["float"]["accuracy"] == float(np.mean(fpred == y))
    n = LAVA_LIMIT
    same = {"float": float(np.mean(fpred[:n] == y[:n])), "lava": lava["accuracy"],
            "emulator": float(np.mean(act.predictions(net)[:n] == y[:n]))}
    assert data["same_samples"] == {"samples": n, "of": 24, "split": "test",
                                    "float_train_kernels": same["float"], **same}
    assert (f"Accuracy at each stage on the same samples: the first {n} of the test split, "
            f"which Lava ran, and all 24") in page
    for stage, first, whole in [
            ("float model, training kernels", same["float"], data["float"]["accuracy"]),
            ("float model, integer delays", same["float"], data["float"]["accuracy"]),
            ("integer network, emulator (bit-exact fixed point)", same["emulator"], acc)]:
        assert _row(stage, f"{100 * first:.1f}", f"{100 * whole:.1f}") in page, stage
    assert _row(LAVA_STAGE, f"{100 * lava['accuracy']:.1f}") + "<td>-</td></tr>" in page
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
    assert f"<td>{format_energy(b.energy_total)}</td>" in page
    assert mine["static_energy_per_sample_joules"] == b.static_energy_per_sample_joules
    for head in ("dynamic energy per sample", "static energy per sample",
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


def _headline_html(page: str) -> str:
    m = re.search(r'<section id="headline".*?</section>', page, re.S)
    assert m, "the page has no headline"
    return m.group(0)


def _kv(key, value) -> str:
    return (f'<span class="k">{html.escape(str(key))}</span>'
            f'<span class="v">{html.escape(str(value))}</span>')


def test_headline_leads_and_configuration_comes_last(run_dir, report):
    data, page = report
    head = _headline_html(page)
    h2 = re.findall(r"<h2>(.*?)</h2>", page)
    assert h2 == ["Accuracy by stage", "Hardware budgets", "Receptive fields and E/I clustering",
                  "Run and configuration"]
    # the headline sits right under the title, before any section and any table
    assert page.index("<h1>") < page.index(head) < page.index("<h2>") < page.index("<table>")
    assert page.index("Training configuration (checkpoint config)") > page.index(
        "<h2>Run and configuration</h2>") > page.index("<h2>Receptive fields")

    # accuracy of every stage on the same samples (the ones Lava ran)
    same = data["same_samples"]
    assert same["samples"] == LAVA_LIMIT
    assert f"On the first {LAVA_LIMIT} of 24 test samples (the ones Lava ran)" in head
    for key, stage in (("float", "float"), ("fixed point", "emulator"), ("Lava", "lava")):
        assert _kv(key, f"{100 * same[stage]:.1f} %") in head, key
    # energy per inference on the export profile, and the lowest among the profiles that fit
    budgets = {b["profile"]: b for b in data["budgets"]}
    mine = budgets["loihi2"]["energy_per_sample_joules"]
    assert not mine["not_counted"]
    assert _kv("loihi2", format_energy(mine["total"])) in head
    fit = {p: b["energy_per_sample_joules"] for p, b in budgets.items() if not b["refused"]}
    best = min(fit, key=lambda p: fit[p]["total"])
    bound = "≥ " if fit[best]["not_counted"] else ""
    assert _kv(f"lowest: {best}", bound + format_energy(fit[best]["total"])) in head
    # fits loihi2, on how many cores; who refuses it
    assert budgets["loihi2"]["cores"] == 1 and budgets["loihi2"]["chips"] == 1
    assert _kv("loihi2", "fits") in head and _kv("cores", "1 on 1 chip") in head
    assert "Refused by loihi1, xylo-audio2" in head
    # synapses (sum over the exported layers) and sparsity
    layers = data["export"]["layers"]
    assert _kv("synapses", sum(L["synapses"] for L in layers)) in head
    assert _kv("sparsity (config)", 0.75) in head
    assert "Per layer: fc1 64, readout 16" in head
    # the checkpoint's real epoch in the subtitle
    assert (f"checkpoint from epoch {data['epoch']} of {TINY['epochs']} (best validation)"
            in page)
    assert "None" not in re.sub(r"<[^>]+>", " ", page)


def test_figure_captions_match_what_the_figures_show(report):
    """The comparison checkpoint is the run's initial one: "before rewiring" only where the
    run rewired (sparsity > 0); connections per delay compare trained with initial."""
    from lava_runtime.report.page import analysis_section

    data, page = report
    assert "Connections per delay (steps): trained (solid) against initial (epoch 0, before " \
           "training and rewiring) (dashed)" in page
    assert "excitatory and inhibitory synapses per delay (steps), trained (top row) and " \
           "initial (bottom row)" in page
    assert "Receptive fields of readout (trained) in (fc1 neuron, delay in steps)" in page
    figures = {k: b"" for k in [f"analysis/{n}" for n in _analysis_pngs(data["analysis"])]}
    dense = {**data, "config": {**data["config"], "method": "dcls", "sparsity": 0.0}}
    captions = " ".join(f["caption"] for f in analysis_section(dense, figures)["figures"])
    intro = analysis_section(dense, figures)["intro"]
    assert "rewiring" not in captions.replace("never rewired", "") and "rewiring" not in intro
    assert "initial (epoch 0, before training; this dense run never rewired)" in captions
    assert "excitatory and inhibitory" not in analysis_section(
        dense, figures)["figures"][-1]["caption"]


def _analysis_pngs(analysis: dict) -> list[str]:
    from lava_runtime.report.build import _analysis_files

    return _analysis_files(analysis)


def test_energy_plot_labels_every_bar_and_marks_refusals(run_dir, report):
    from deployed.emulator import emulate
    from deployed.netx_h5 import load
    from lava_runtime.budget.estimate import compare
    from lava_runtime.budget.text import energy_figure
    from trainer.data import dataset_from_recipe

    net = load(run_dir / REPORT_DIR / "net.h5")
    test = dataset_from_recipe(net.meta["data_recipe"], "test")
    budgets = compare(net, emulate(net, net.input.encode(test.x.numpy())),
                      [load_profile(p) for p in ("loihi1", "loihi2", "gpu", "ann-45nm")])
    fig = energy_figure(budgets)
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    labels = {}
    for b in budgets:
        if b.refused:
            continue
        lower = ">= " if b.energy_per_sample_joules["not_counted"] else ""
        labels[b.profile] = lower + format_energy(b.energy_total)
    assert sorted(texts) == sorted(list(labels.values()) + ["does not fit"])
    assert labels["ann-45nm"].startswith(">= ")  # neuron updates are not counted there
    refused = [t for t in ax.texts if t.get_text() == "does not fit"][0]
    assert refused.get_color() == "#b00000"
    ticks = {t.get_text(): t.get_color() for t in ax.get_xticklabels()}
    assert ticks["loihi1"] == "#b00000" and ticks["loihi2"] != "#b00000"
    # the report shows it at its own size: no wider than the page's column
    assert fig.get_figwidth() * fig.dpi <= 1060


# ------------------------------------------------------------------------------- unfinished

@pytest.fixture(scope="module")
def unfinished_run(tmp_path_factory) -> Path:
    import trainer

    out = tmp_path_factory.mktemp("report") / "stopped"
    trainer.train(dict(TINY), out=out, progress=False, stop_after_epoch=2)
    assert not (out / "metrics.json").exists()
    return out


def test_unfinished_run_is_refused_with_the_resume_command(unfinished_run, capsys):
    from lava_runtime.__main__ import main

    before = sorted(p.name for p in unfinished_run.iterdir())
    with pytest.raises(SystemExit) as e:
        main(["report", str(unfinished_run), "--limit", "0"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert re.search(r"error: .*stopped after epoch 2 of 3 \(no metrics.json[^)]*\): resume with "
                     r"`python -m trainer train --out \S+ --resume .*`; or pass "
                     r"--allow-unfinished to report on its checkpoint \(epoch \d\) anyway", err)
    assert sorted(p.name for p in unfinished_run.iterdir()) == before  # nothing written


def test_unfinished_run_with_flag_says_so_and_shows_the_real_epoch(unfinished_run, tmp_path):
    from lava_runtime.__main__ import main
    from trainer.checkpoint import load_checkpoint

    out = tmp_path / "page.html"
    assert main(["report", str(unfinished_run), "--allow-unfinished", "--limit", "0",
                 "--profiles", "loihi2", "--out", str(out)]) == 0
    page = out.read_text()
    epoch = load_checkpoint(unfinished_run / "checkpoint.pt").epoch
    banner = re.search(r'<div class="banner" role="alert">(.*?)</div>', page, re.S)
    assert banner and page.index(banner.group(0)) < page.index('<section id="headline"')
    assert (f"<strong>Did not finish: every figure on this page is for the checkpoint from "
            f"epoch {epoch} of 3 planned</strong>") in banner.group(1)
    assert "stopped after epoch 2 of 3" in banner.group(1)
    assert "<code>python -m trainer train --out " in banner.group(1)
    assert f"checkpoint from epoch {epoch} of 3 planned (best validation so far)" in page
    assert "3 epochs" not in page
    assert _row("checkpoint epoch", epoch, "epoch of 3 planned (best validation)") in page
    assert _row("training time", "not recorded: the run did not finish (no metrics.json)") \
        in page
    assert "<td>connected pairs per layer</td><td>[64, 16]</td>" in page
    assert "None" not in re.sub(r"<[^>]+>", " ", page)
    export = json.loads((unfinished_run / REPORT_DIR / "export.json").read_text())
    assert export["checkpoint"]["finished"] is False


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
    assert "Lava was skipped (--limit 0)" in page
    # one column: every stage that ran is scored on all 24 samples
    assert "<th>stage</th>\n<th>accuracy on all 24 samples (%)</th>\n</tr>" in page
    assert _row(LAVA_STAGE) + "<td>-</td></tr>" in page
    assert '<span class="k">Lava</span><span class="v">not run</span>' in page
    assert (run_dir / REPORT_DIR / "lava.json").read_bytes() == lava_json  # left alone


def test_val_split_evaluates_the_float_model(run_dir, tmp_path):
    from trainer.evaluate import evaluate

    run = _copy_run(run_dir, tmp_path / "run")
    data = make_report(run, split="val", lava_limit=0, profile_set="gpu", progress=False)
    ref = evaluate(run, "val")
    assert data["float"]["source"] == "trainer.evaluate.predict"
    assert data["float"]["accuracy"] == ref["accuracy"]
    assert data["float"]["n_samples"] == ref["n_samples"] == data["emulator"]["samples"]
    # the export profile is budgeted too, though not in the set: the headline needs it
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


# Test-only probe: after load, writes where the headline and its cards are drawn (CSS px)
# onto <body>, so --dump-dom reports them.
HEADLINE_PROBE = """<script>
window.addEventListener("load", function () {
  var h = document.getElementById("headline");
  var boxes = [h].concat(Array.prototype.slice.call(h.querySelectorAll(".card")));
  document.body.setAttribute("data-viewport", window.innerWidth + "," + window.innerHeight);
  document.body.setAttribute("data-boxes", boxes.map(function (e) {
    var r = e.getBoundingClientRect();
    return [r.left, r.top, r.right, r.bottom].map(Math.round).join(",");
  }).join(";"));
});
</script>"""
FIRST_SCREEN = (1200, 800)  # a laptop browser window (CSS px)


def test_chromium_shows_the_headline_on_the_first_screen(report, tmp_path):
    """Accuracy, energy, fit and synapses are read without scrolling: the headline and its four
    cards lie inside the first 700 px of a 1200 x 800 window, and the screenshot shows text in
    each card."""
    from PIL import Image

    exe = _chromium()
    data, page = report
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", HEADLINE_PROBE + "\n</body>"))
    w, h = FIRST_SCREEN
    dom = _run_chromium(exe, tmp_path / "p1", f"--window-size={w},{h}",
                        "--virtual-time-budget=10000", "--dump-dom", probe.as_uri())
    body = re.search(r"<body[^>]*>", dom).group(0)
    viewport = re.search(r'data-viewport="(\d+),(\d+)"', body)
    boxes = re.search(r'data-boxes="([^"]*)"', body)
    assert viewport and boxes, f"the probe did not run: {body[:300]}"
    vw, vh = map(int, viewport.groups())
    rects = [tuple(map(int, b.split(","))) for b in boxes.group(1).split(";")]
    (_, top, _, bottom), cards = rects[0], rects[1:]
    assert len(cards) == 4
    assert 0 < top and bottom <= min(700, vh), (rects, vh)
    assert all(0 <= c[0] and c[2] <= vw and c[3] <= bottom for c in cards), (rects, vw)

    shot = tmp_path / "first_screen.png"
    _run_chromium(exe, tmp_path / "p2", f"--window-size={w},{h}", f"--screenshot={shot}",
                  Path(data["html"]).resolve().as_uri())
    im = np.asarray(Image.open(shot).convert("L"))
    assert im.shape == (h, w)
    for x0, y0, x1, y1 in cards:  # text in every card (device pixels = CSS px here)
        dark = (im[y0:y1, x0:x1] < 100).mean()
        assert dark > 0.02, f"card {(x0, y0, x1, y1)} looks empty ({100 * dark:.1f}% dark)"


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
