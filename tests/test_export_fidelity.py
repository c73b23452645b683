"""The fidelity bound at export (export.fidelity): float minus fixed-point accuracy on the
validation split, repaired by per-layer scales, kept synapses and fine-tuning, or refused.

A small network trained on the synthetic set loses nothing on loihi2 (its file must then be
the export without a bound, byte for byte) and loses a lot on made-up profiles with 3- and
2-bit weights (the coarse grid of tests/test_export_qat.py)."""
from __future__ import annotations

import filecmp
import json
import re
from pathlib import Path

import numpy as np
import pytest

import hw_profiles
import trainer
import trainer.data
from deployed import fixed_point as fp
from deployed import netx_h5
from export.build_network import evaluate
from export.errors import ExportError
from export.fidelity import FIDELITY_KEYS, FidelityError, export_with_bound
from export.float_reference import simulate_float
from export.quantize import QuantSettings, choose_input_encoding, quantize
from export.to_lava import export_checkpoint, main
from tests.helpers.export_checkpoints import make_checkpoint, make_features
from trainer.checkpoint import checkpoint_from_dict, load_checkpoint
from trainer.data import load_dataset

DATA = {"n_train": 300, "n_test": 100, "n_classes": 5, "data_seed": 79}
TASK = {"dataset": "synthetic", "method": "dcls", "n_mels": 10, "hidden": [16], "tau": 2.0,
        "epochs": 10, "batch_size": 32, "num_threads": 1, "data_options": DATA}


def weight_bits_profile(folder: Path, bits: int) -> str:
    """loihi2's profile with `bits`-bit weights (a made-up chip)."""
    text = (Path(hw_profiles.__file__).parent / "loihi2.toml").read_text()
    assert "[limits.weight_bits]\nvalue = 8" in text
    path = folder / f"w{bits}.toml"
    path.write_text(text.replace("[limits.weight_bits]\nvalue = 8",
                                 f"[limits.weight_bits]\nvalue = {bits}"))
    return str(path)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("fidelity")
    trainer.train(TASK, out=root / "run", progress=False)
    return root / "run", weight_bits_profile(root, 3), weight_bits_profile(root, 2)


def val_split():
    ds = load_dataset("synthetic", "val", n_mels=10, **DATA)
    return ds.x.numpy(), ds.y.numpy()


def measured_loss(run_dir, net, x, y) -> float:
    """Float minus fixed-point accuracy (points) of `net`, measured here, not by the bound."""
    acc = evaluate(load_checkpoint(run_dir), net, x, y, "val")
    return 100 * (acc["float"] - acc["quantized"])


def test_within_the_bound_the_file_is_the_export_without_a_bound(run, tmp_path):
    run_dir, _, _ = run
    plain, plain_rep = export_checkpoint(run_dir, evaluation=False)
    bound, rep = export_checkpoint(run_dir, evaluation=False, max_loss=0.5)
    netx_h5.save(plain, tmp_path / "plain.h5")
    netx_h5.save(bound, tmp_path / "bound.h5")
    assert filecmp.cmp(tmp_path / "plain.h5", tmp_path / "bound.h5", shallow=False)
    f = rep["fidelity"]
    assert f["within_bound"] and f["step"] == "as exported" and not f["changes_network"]
    assert [c["step"] for c in f["tried"]] == ["as exported"]
    assert rep["max_loss_bound"] == 0.5 and rep["qat_epochs"] == 0
    assert rep["fixed_point_loss_val"] <= 0.5
    assert rep["fixed_point_loss_val"] == pytest.approx(measured_loss(run_dir, bound, *val_split()))
    assert rep["synapses_zeroed"] == plain_rep["synapses_zeroed"] == [
        L["quantization"]["synapses_quantized_to_zero"] for L in rep["layers"]]
    assert plain_rep["max_loss_bound"] is None and plain_rep["emulator_val_accuracy"] is None


def test_a_coarse_network_is_repaired_within_the_bound(run):
    run_dir, w3, _ = run
    x, y = val_split()
    plain, _ = export_checkpoint(run_dir, w3, evaluation=False)
    assert measured_loss(run_dir, plain, x, y) > 0.5  # built to lose more than the bound
    net, rep = export_checkpoint(run_dir, w3, max_loss=0.5, qat_epochs=0)
    f = rep["fidelity"]
    assert f["within_bound"] and f["changes_network"] and f["step"] != "as exported"
    assert measured_loss(run_dir, net, x, y) == pytest.approx(rep["fixed_point_loss_val"])
    assert rep["fixed_point_loss_val"] <= 0.5 < f["tried"][0]["loss_points"]
    assert rep["accuracy"]["quantized"] == rep["emulator_val_accuracy"]  # same val split
    # the deployed file says what changed, and the layers that were rescaled
    assert net.meta["fidelity"]["step"] == f["step"] and net.meta["fidelity"]["changes"]
    assert net.meta["export_options"]["scale_factors"] == f["scale_factors"]
    assert any(s > 1 for s in f["scale_factors"])
    assert set(FIDELITY_KEYS) <= set(rep)


def test_an_unrepairable_network_is_refused_unless_allow_loss(run, tmp_path, capsys):
    run_dir, _, w2 = run
    out, js = tmp_path / "net.h5", tmp_path / "export.json"
    args = [str(run_dir), "--profile", w2, "--out", str(out), "--json", str(js),
            "--max-loss", "0.5", "--qat-epochs", "0", "--no-eval"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--allow-loss" in err
    assert re.search(r"float \d+\.\d\d%, fixed point \d+\.\d\d%", err)
    assert "nothing was written" in err
    assert not out.exists() and not js.exists() and list(tmp_path.iterdir()) == []
    assert main(args + ["--allow-loss"]) == 0
    text = capsys.readouterr().out
    assert "ABOVE THE BOUND" in text and "structure:" in text
    rep = json.loads(js.read_text())
    assert out.is_file() and not rep["fidelity"]["within_bound"]
    assert rep["fixed_point_loss_val"] > 0.5 and rep["max_loss_bound"] == 0.5
    assert any("written anyway (allow_loss)" in w for w in rep["warnings"])
    # the best candidate found is the one written
    best = max(c["val_fixed_point"] for c in rep["fidelity"]["tried"] if c["readout_ok"])
    assert rep["emulator_val_accuracy"] == best
    assert measured_loss(run_dir, netx_h5.load(out), *val_split()) == pytest.approx(
        rep["fixed_point_loss_val"])


def test_fine_tuning_repairs_what_cheap_remedies_cannot_and_never_reads_test(
        run, monkeypatch):
    run_dir, _, w2 = run
    real = trainer.data.dataset_from_recipe
    asked = []

    def no_test(recipe, split=None, **kw):
        asked.append(split)
        if split == "test":
            raise AssertionError("the fidelity bound read the test split")
        return real(recipe, split, **kw)

    monkeypatch.setattr(trainer.data, "dataset_from_recipe", no_test)
    with pytest.raises(AssertionError):
        trainer.data.dataset_from_recipe(load_checkpoint(run_dir).data_recipe, "test")
    asked.clear()
    net, rep = export_checkpoint(run_dir, w2, max_loss=0.5, qat_epochs=5, qat_lr=3e-3,
                                 evaluation=False)
    assert "test" not in asked and {"train", "val"} <= set(asked)
    f = rep["fidelity"]
    steps = [c["step"] for c in f["tried"]]
    assert steps[0] == "as exported" and "keep zeroed" in steps and steps[-1] == "qat"
    cheap_best = max(c["val_fixed_point"] for c in f["tried"] if not c["qat_epochs"])
    assert 100 * (f["float_val_accuracy"] - cheap_best) > 0.5  # the cheap remedies fell short
    # fine-tuning (through the best cheap candidate's grid) brought it within the bound and
    # stopped there; the file says so
    assert f["within_bound"] and f["step"] == "qat" and rep["fixed_point_loss_val"] <= 0.5
    assert rep["qat_epochs"] == f["qat"]["best_epoch"] == f["qat"]["epochs_run"] < 5
    assert net.meta["qat"]["best_epoch"] == rep["qat_epochs"]
    assert any("fine-tuned" in c for c in f["changes"])
    monkeypatch.setattr(trainer.data, "dataset_from_recipe", real)
    assert measured_loss(run_dir, net, *val_split()) == pytest.approx(rep["fixed_point_loss_val"])


def test_bound_options_are_checked_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path / "nothing"), "--out", str(tmp_path / "n.h5"), "--max-loss", "-1"])
    assert stop.value.code == 2 and "--max-loss" in capsys.readouterr().err
    with pytest.raises(ExportError, match="qat_epochs"):
        export_checkpoint(tmp_path / "nothing", max_loss=0.5, qat_epochs=-1)
    with pytest.raises(ExportError, match="max_loss"):
        export_checkpoint(tmp_path / "nothing", max_loss=float("nan"))


# ----------------------------------------------------------------- quantize options (no training)

def tiny_weights_case():
    """A handmade checkpoint whose fc1 has one weight 400x the others: W rounds most to 0."""
    ck_dict = make_checkpoint(bn=False)
    w = ck_dict["layers"][0]["weight"]
    w[0] = 400 * w.abs().max()
    x, _ = make_features()
    return checkpoint_from_dict(ck_dict), x.astype(np.float64)


def quantized(ck, x, **opts):
    qs = QuantSettings(**opts)
    enc, _ = choose_input_encoding(ck, x, 8)
    return quantize(ck, enc, simulate_float(ck, x), qs, "loihi2", "1")


def test_keep_zeroed_gives_the_smallest_level_with_the_trained_sign_and_nothing_else():
    ck, x = tiny_weights_case()
    plain, info = quantized(ck, x)
    kept, kinfo = quantized(ck, x, keep_zeroed=True)
    w_f = ck.layers[0].weight
    W0, W1 = plain.layers[0].weight, kept.layers[0].weight
    zero = (W0 == 0) & (w_f != 0)
    assert zero.sum() > 10 and info[0]["synapses_quantized_to_zero"] == zero.sum()
    assert kinfo[0]["synapses_kept_at_smallest_level"] == zero.sum()
    assert kinfo[0]["synapses_quantized_to_zero"] == 0
    assert np.array_equal(np.sign(W1[zero]), np.sign(w_f[zero]))
    level = 2 ** fp.truncate_bits(info[0]["sign_mode"], 8)  # W = +-1, as Lava stores it
    assert np.all(np.abs(W1[zero]) == level) and np.abs(W0[W0 != 0]).min() >= level
    assert np.array_equal(W1[~zero], W0[~zero])
    assert plain.layers[0].weight_exp == kept.layers[0].weight_exp


def test_a_scale_factor_gives_finer_levels_and_clips_only_the_largest_weights():
    ck, x = tiny_weights_case()
    plain, info = quantized(ck, x)
    scaled, sinfo = quantized(ck, x, scale_factors=(4.0, 1.0, 1.0))
    assert info[0]["scale_limited_by"] == "weight_range"
    assert sinfo[0]["scale"] == pytest.approx(4 * info[0]["scale"], rel=0.05)  # vth integer
    assert sinfo[0]["synapses_clipped"] == 1  # the outlier saturates
    assert sinfo[0]["synapses_quantized_to_zero"] < info[0]["synapses_quantized_to_zero"]
    assert sinfo[1] == info[1] and sinfo[2] == info[2]
    # never beyond the measured ranges without headroom
    huge, hinfo = quantized(ck, x, scale_factors=(1e6, 1.0, 1.0))
    lim = info[0]["scale_limits"]
    cap = min(lim["vth_range"], 2 * lim["a_in_range"], 2 * lim.get("negative_v_range", np.inf))
    assert hinfo[0]["scale"] <= cap and "without headroom" in hinfo[0]["scale_limited_by"]


def test_export_with_bound_needs_validation_labels():
    ck, x = tiny_weights_case()
    with pytest.raises(ExportError, match="validation labels"):
        export_with_bound(ck, provenance={}, source={}, validation=x, calibration=x,
                          evaluation=False)
    assert issubclass(FidelityError, ExportError)  # the CLI's exit 2, deploy's refusal


def test_the_demo_command_reports_both_exports_on_validation_and_test(run, tmp_path, capsys):
    from experiments.fidelity import main as demo_main

    run_dir, w3, _ = run
    assert demo_main([str(run_dir), "--json", str(tmp_path / "no" / "d.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert demo_main([str(run_dir), "--profile", w3, "--qat-epochs", "0",
                      "--json", str(tmp_path / "d.json")]) == 0
    d = json.loads((tmp_path / "d.json").read_text())
    x, y = val_split()
    for name in ("without_bound", "with_bound"):
        assert d[name]["val"]["samples"] == len(y) and d[name]["test"]["samples"] == 100
    assert d["without_bound"]["val"]["loss_points"] > 0.5 >= d["with_bound"]["val"]["loss_points"]
    assert d["with_bound"]["within_bound"] and d["with_bound"]["qat_epochs"] == 0
    assert "within" in capsys.readouterr().out


def test_scale_scan_measures_every_scale_choice_against_the_float_model(run, tmp_path, capsys):
    """experiments.scale_scan: one row per combination of per-layer factors, the first the
    plain export (the same network as export_checkpoint's), accuracies and agreements that
    match an independent evaluation."""
    from experiments.scale_scan import main as scan_main
    from experiments.scale_scan import scale_scan

    run_dir, _, _ = run
    assert scan_main([str(run_dir), "--factors", "9"]) == 2
    assert "--factors must be 1..8" in capsys.readouterr().err
    r = scale_scan(run_dir, factors=1, train_samples=50, json_path=tmp_path / "s.json",
                   progress=False)
    assert json.loads((tmp_path / "s.json").read_text()) == r
    assert len(r["candidates"]) == 2 ** 2 and r["train_samples"] == 50
    first = r["candidates"][0]
    assert first["scale_factors"] == [1.0, 1.0]
    plain, _ = export_checkpoint(run_dir, "loihi2", evaluation=False)
    x, y = val_split()
    acc = evaluate(load_checkpoint(run_dir), plain, x, y, "val")
    assert first["val"]["accuracy"] == acc["quantized"]
    assert first["val"]["agreement"] == acc["agreement_with_float"]
    assert r["float_accuracy"]["val"] == acc["float"]
    assert r["best_test_gap"] <= r["as_exported_test_gap"]


def test_fidelity_sources_splits_the_gap_by_source(run, tmp_path, capsys):
    """experiments.fidelity_sources: the float row agrees with itself, the emulator row is the
    plain export's (an independent evaluation), and the row of the deployed weights in float
    dynamics is measured against both."""
    from experiments.fidelity_sources import fidelity_sources
    from experiments.fidelity_sources import main as src_main

    run_dir, _, _ = run
    assert src_main([str(run_dir), "--json", str(tmp_path / "no" / "x.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    r = fidelity_sources(run_dir, json_path=tmp_path / "s.json", progress=False)
    assert json.loads((tmp_path / "s.json").read_text()) == r
    rows = {row["variant"]: row for row in r["variants"]}
    assert {"float", "input payloads", "deployed weights", "emulator",
            "emulator, neuron exponents", "weight noise 0.01",
            "grid 7 bits per neuron"} <= set(rows)
    assert rows["float"]["val"]["agreement"] == 1.0
    assert rows["emulator"]["val"]["agreement_with_emulator"] == 1.0
    plain, _ = export_checkpoint(run_dir, "loihi2", evaluation=False)
    x, y = val_split()
    acc = evaluate(load_checkpoint(run_dir), plain, x, y, "val")
    assert rows["emulator"]["val"]["accuracy"] == acc["quantized"]
    assert rows["emulator"]["val"]["agreement"] == acc["agreement_with_float"]
    assert rows["float"]["val"]["accuracy"] == acc["float"]
    assert 0.0 <= rows["deployed weights"]["test"]["agreement_with_emulator"] <= 1.0


def test_neuron_exponents_from_the_start_on_the_command_line(run, tmp_path):
    """--neuron-exponents exports with per-neuron exponents (a version 3 file whose netx part is
    approximate); with a bound, step 1 then has nothing left to try."""
    run_dir, _, _ = run
    out = tmp_path / "n.h5"
    assert main([str(run_dir), "--out", str(out), "--neuron-exponents", "--no-eval"]) == 0
    net = netx_h5.load(out)
    assert any(L.neuron_exp is not None for L in net.layers)
    assert net.meta["export_options"]["neuron_exponents"] is True
    assert netx_h5.file_version(net) == 3 and not net.meta["netx_complete"]
    _, rep = export_checkpoint(run_dir, evaluation=False, max_loss=0.5, neuron_exponents=True)
    assert "neuron exponents" not in [c["step"] for c in rep["fidelity"]["tried"]]
    assert rep["fidelity"]["tried"][0]["neuron_exponents"] is True
    assert main([str(run_dir), "--out", str(out), "--neuron-exponents", "--netx-exact",
                 "--no-eval"]) == 2
