"""The content of the run report: plain report data -> the page dict of report.html.

`build_page(data, figures)` is pure: `data` is the dict lava_runtime.report.build.make_report
assembles (config, metrics, training status, export report, accuracies, budgets as
Budget.to_json dicts, trainer.analyze's analysis.json); `figures` maps "budget" and
"analysis/<png name>" to PNG bytes. The page leads with a headline (the accuracy of every stage
on the same samples, energy per inference, whether the network fits and on how many cores,
synapses and sparsity); then accuracy, budgets and analysis; the configuration comes last.
Every number carries its unit in the column header, the unit column or its label.
"""
from __future__ import annotations

import json

from lava_runtime.budget.text import format_energy
from lava_runtime.budget.units import format_count

STEP_MS = 10.0  # one time step (docs/design.md section 1)

# Units of the training config keys (trainer/defaults.toml); "" = dimensionless / a name.
CONFIG_UNITS = {
    "n_mels": "input channels", "time_steps": "steps (10 ms each)", "val_fraction": "fraction",
    "sparsity": "fraction of candidate connections absent", "epochs": "epochs",
    "batch_size": "samples", "hidden": "neurons per hidden layer",
    "kernel_size": "steps (delays 0..K-1)", "tau": "steps", "threshold": "membrane units",
    "dropout": "probability", "lr": "", "max_lr": "", "lr_positions": "",
    "sigma_final": "taps", "sigma_end": "taps", "sigma_decay_fraction": "fraction of training",
    "surrogate_alpha": "", "l1": "", "seed": "", "dale": "", "batchnorm": "", "method": "",
    "dataset": "", "data_dir": "", "device": "", "data_options": "",
}
LAVA_STAGE = "integer network, Lava (Loihi 2 simulator, fixed_pt)"
EMULATOR_STAGE = "integer network, emulator (bit-exact fixed point)"


def pct(v) -> str | None:
    """0..1 fraction -> percent with one decimal (None stays None)."""
    return None if v is None else f"{100 * v:.1f}"


def num(v, digits: int = 3) -> str | None:
    """Integers as is, other numbers with `digits` significant digits."""
    if v is None:
        return None
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) < 1e9):
        return str(int(v))
    return f"{v:.{digits}g}"


def _value(v) -> str | None:
    if isinstance(v, (list, dict, bool)):
        return json.dumps(v, separators=(", ", ": "))
    return None if v is None else str(v)


def _energy(b: dict):
    e = b["energy_per_sample_joules"]
    return None if e is None else e["total"]


def _rewired(data: dict) -> bool:
    """Whether training rewired connections: every layer of a run with sparsity > 0 is
    sparse and rewired by DEEP R / RigL (trainer.layers.DelayConnection.sparse)."""
    return float(data["config"].get("sparsity") or 0) > 0


def _unfinished(data: dict) -> bool:
    st = data.get("status")
    return st is not None and not st["finished"]


def epoch_text(data: dict) -> str:
    """"checkpoint from epoch E of N" with what that epoch is."""
    st, e = data.get("status"), data["epoch"]
    if st is None:
        return f"checkpoint from epoch {e} (best validation; training status unknown)"
    if st["finished"]:
        return f"checkpoint from epoch {e} of {st['epochs_planned']} (best validation)"
    return (f"checkpoint from epoch {e} of {st['epochs_planned']} planned (best validation so "
            f"far); the run did not finish")


# ------------------------------------------------------------------------------ headline

def _best_energy(budgets: list[dict]) -> dict | None:
    fits = [b for b in budgets if not b["refused"] and _energy(b) is not None]
    return min(fits, key=_energy) if fits else None


def _energy_value(b: dict) -> str:
    """format_energy of the total, with "≥" when some terms are not counted (a lower bound)."""
    e = b["energy_per_sample_joules"]
    return ("≥ " if e["not_counted"] else "") + format_energy(e["total"])


def headline(data: dict) -> dict:
    """Four cards a reader takes in at a glance: accuracy of each stage on the same samples,
    energy per inference, fit and cores, synapses and sparsity (html.render_html: headline)."""
    same, budgets = data["same_samples"], data["budgets"]
    n, total, split = same["samples"], same["of"], same["split"]
    where = (f"all {total} {split} samples" if n == total else
             f"the first {n} of {total} {split} samples (the ones Lava ran)")
    acc_lines = [["float", f"{pct(same['float'])} %"],
                 ["fixed point", f"{pct(same['emulator'])} %"],
                 ["Lava", "not run" if same["lava"] is None else f"{pct(same['lava'])} %"]]
    acc_detail = f"On {where}"
    if n != total:
        acc_detail += (f"; on all {total}: float {pct(data['float']['accuracy'])} %, fixed "
                       f"point {pct(data['emulator']['accuracy'])} %")
    acc_detail += (". Float: the trained model with integer delays; fixed point: the exported "
                   "network in the bit-exact emulator; Lava: Loihi 2 simulator.")
    cards = [{"label": "Accuracy, same samples", "lines": acc_lines, "detail": acc_detail}]

    chosen = data["export"]["profile"]["name"]
    mine = next((b for b in budgets if b["profile"] == chosen), None)
    best = _best_energy(budgets)
    e_lines, e_detail = [], []
    if mine is not None and _energy(mine) is not None:
        basis = ", ".join(mine["energy_basis"]) or "no basis"
        e_lines.append([chosen, _energy_value(mine)])
        e_detail.append(f"{chosen}: {basis} figures")
    else:
        e_lines.append([chosen, "no figure"])
    if best is not None:
        fit_n = sum(1 for b in budgets if not b["refused"] and _energy(b) is not None)
        e_lines.append([f"lowest: {best['profile']}", _energy_value(best)])
        e_detail.append(f"lowest of the {fit_n} profiles that fit and give a figure")
    if any(b["energy_per_sample_joules"]["not_counted"] for b in budgets
           if _energy(b) is not None and b["profile"] in (chosen, best and best["profile"])):
        e_detail.append("≥: a lower bound (terms not counted)")
    cards.append({"label": "Energy per inference (dynamic)", "lines": e_lines,
                  "detail": "; ".join(e_detail) + "."})

    refused = [b["profile"] for b in budgets if b["refused"]]
    fit_lines = [[chosen, "not budgeted" if mine is None else
                  "does not fit" if mine["refused"] else "fits"]]
    if mine is not None and mine["cores"] is not None:
        chips = f" on {mine['chips']} chip{'s' if mine['chips'] != 1 else ''}"
        fit_lines.append(["cores", f"{mine['cores']}{chips}"])
    fit_detail = ("Cores: this project's model (deployed.cores). "
                  + (f"Refused by {', '.join(refused)} (reasons under Hardware budgets)."
                     if refused else "Every profile of the set fits it."))
    cards.append({"label": "Fits the chip", "lines": fit_lines, "detail": fit_detail})

    layers = data["export"]["layers"]
    synapses = sum(L["synapses"] for L in layers)
    pairs = sum(L["connected_pairs"] for L in layers)
    possible = sum(L["n_in"] * L["n_out"] for L in layers)
    per_layer = ", ".join(f"{L['name']} {L['synapses']}" for L in layers)
    cards.append({"label": "Synapses and sparsity",
                  "lines": [["synapses", str(synapses)],
                            ["sparsity (config)", str(data["config"].get("sparsity"))]],
                  "detail": f"Per layer: {per_layer}; {pct(pairs / possible)} % of (pre, post) "
                            f"pairs connected."})
    return {"title": "Headline", "cards": cards}


def status_banner(data: dict) -> list[dict]:
    """Alerts that change how the whole page reads (an unfinished run)."""
    st = data.get("status")
    if st is None or st["finished"]:
        return []
    return [{"title": f"Did not finish: every figure on this page is for the checkpoint from "
                      f"epoch {st['checkpoint_epoch']} of {st['epochs_planned']} planned",
             "text": f"{st['message']}. Reported anyway because --allow-unfinished was given."}]


# ------------------------------------------------------------------------------ sections

def accuracy_section(data: dict) -> dict:
    f, emu, lava, same = data["float"], data["emulator"], data["lava"], data["same_samples"]
    n, total = same["samples"], same["of"]
    both = n != total
    rows = [["float model, training kernels", pct(same["float_train_kernels"]),
             pct(f["accuracy_train_kernels"])],
            ["float model, integer delays", pct(same["float"]), pct(f["accuracy"])],
            [EMULATOR_STAGE, pct(same["emulator"]), pct(emu["accuracy"])],
            [LAVA_STAGE, pct(same["lava"]), None]]
    if both:
        header = ["stage", f"accuracy on the first {n} samples (%)",
                  f"accuracy on all {total} samples (%)"]
        caption = (f"Accuracy at each stage on the same samples: the first {n} of the "
                   f"{same['split']} split, which Lava ran, and all {total}")
    else:
        header = ["stage", f"accuracy on all {total} samples (%)"]
        rows = [r[:2] for r in rows]
        caption = f"Accuracy at each stage on the same {total} samples of the {same['split']} split"
    notes = []
    tables = []
    if lava is None:
        notes.append("Lava was not run (--limit 0): the Lava row is empty.")
    else:
        tables.append({
            "caption": "Lava against the emulator on the same samples",
            "header": ["samples", "identical spikes and readout voltages (%)",
                       "same prediction (%)", "emulator accuracy on these samples (%)",
                       "Lava accuracy (%)", "Lava run time (s)", "Lava speed (steps/s)"],
            "rows": [[lava["samples"], pct(lava["exact_match_fraction"]),
                      pct(lava["prediction_agreement"]),
                      pct(lava["emulator_accuracy_same_samples"]), pct(lava["accuracy"]),
                      num(lava["seconds"]), num(lava.get("steps_per_second"))]],
            "note": "A sample counts as identical when every hidden spike and every readout "
                    "voltage of the whole window equals the emulator's."})
    spikes = ", ".join(f"{v:.1f}" for v in emu["spikes_per_sample_per_layer"])
    return {"title": "Accuracy by stage",
            "intro": " ".join(notes + [f"Hidden spikes per sample (emulator), per hidden layer: "
                                       f"{spikes}."]),
            "tables": [{"caption": caption, "header": header, "rows": rows,
                        "note": "Every stage is scored on the same samples (float: "
                                "trainer.evaluate.predict on the checkpoint). Training kernels "
                                "equal integer delays unless the method is dcls (Gaussian "
                                "kernels in training). Lava = Lava's Loihi 2 CPU "
                                "simulator (Loihi2SimCfg, fixed_pt) running this project's "
                                "ProcessModels for the input source, recorders, readout and "
                                "delay connections (docs/design.md, section 4). Nothing on this "
                                "page ran on a Loihi chip: the loihi2 backend is untested."}]
            + tables}


def budget_section(data: dict, figures: dict) -> dict:
    budgets = data["budgets"]
    first = budgets[0]
    layer_rows = [[L["name"], f"{L['n_in']} -> {L['n_out']}", L["n_synapses"], L["max_delay"],
                   num(L["input_events"]), num(L["synops"]), num(L["dense_synops"]),
                   num(L["neuron_updates"]), num(L["spikes_out"])] for L in first["layers"]]
    rows, refusals, missing = [], [], []
    for b in budgets:
        ops = b["synops_per_sample"] if b["kind"] == "neuromorphic" else \
            b["dense_synops_per_sample"]
        rows.append([b["profile"], b["kind"], "no" if b["refused"] else "yes", format_count(ops),
                     b["memory_bytes"]["total"], b["cores"], b["chips"],
                     None if _energy(b) is None else _energy_value(b),
                     format_energy(b.get("static_energy_per_sample_joules")),
                     num(b["time_per_step_seconds"]), ", ".join(b["energy_basis"]) or None])
        refusals += [[b["profile"], r] for r in b["refused"]]
        e = b["energy_per_sample_joules"]
        if e is not None:
            missing += [[b["profile"], part, why] for part, why in e["not_counted"].items()]
    tables = [
        {"caption": f"Counts per sample by layer ({first['n_samples']} samples of "
                    f"{data.get('samples_from') or 'the ' + data['split'] + ' split'}, "
                    f"{first['steps']} steps each; the same on every profile)",
         "header": ["layer", "shape (in -> out)", "synapses", "max delay (steps)",
                    "input events", "synaptic ops", "dense synaptic ops", "neuron updates",
                    "spikes out"],
         "rows": layer_rows},
        {"caption": "Budget per inference by hardware profile",
         "header": ["profile", "kind", "fits", "operations charged (per sample; k = 1e3, "
                    "M = 1e6)",
                    "memory (bytes, model)", "cores (model)", "chips (model)",
                    "dynamic energy per sample", "static energy per sample",
                    "time per step (s)", "basis of the energy figures"],
         "rows": rows,
         "note": "Neuromorphic profiles are charged the synaptic operations of the recorded "
                 "spikes; dense and ann profiles every synapse every step. Dynamic energy counts "
                 "activity-dependent terms only; static energy (static power x steps x time "
                 "per step) is shown only where the profile gives a static power. Memory, cores "
                 "and chips come from this project's own model (deployed.cores: "
                 "weight, delay and index bits per synapse, a 24-bit accumulator per delay slot "
                 "per neuron, greedy core packing), not from a vendor compiler. '≥' = a lower "
                 "bound (terms not counted); '-' = not given or not computed (see the tables "
                 "below)."},
    ]
    _recurrent_columns(tables[0], first["layers"])
    if refusals:
        tables.append({"caption": "Profiles that refuse this network, with every reason",
                       "header": ["profile", "reason"], "rows": refusals})
    if missing:
        tables.append({"caption": "Energy terms not counted (the total is a lower bound or "
                                  "absent)", "header": ["profile", "term", "why"],
                       "rows": missing})
    return {"title": "Hardware budgets",
            "tables": tables,
            "figures": [{"caption": "Estimated dynamic energy per inference by profile (J, log "
                                    "scale), the total written above each bar; profiles that "
                                    "refuse the network are hatched and marked 'does not fit'",
                         "png": figures["budget"]}]}


def _recurrent_columns(table: dict, layers: list[dict]) -> None:
    """Recurrent synapses, their largest delay and their synaptic ops (part of 'synaptic ops')
    per layer, added to the per-layer counts table only when some layer is recurrent."""
    if not any(L.get("recurrent_synapses") for L in layers):
        return
    table["header"] = table["header"] + ["recurrent synapses", "recurrent max delay (steps)",
                                         "recurrent synaptic ops (in synaptic ops)"]
    for row, L in zip(table["rows"], layers):
        row += [L["recurrent_synapses"], L["recurrent_max_delay"], num(L["recurrent_synops"])]


def _before_words(data: dict) -> str | None:
    """What the analysis's comparison checkpoint is, in words (None when there is none)."""
    from trainer.analyze import before_label

    a = data["analysis"]
    if not a.get("before_checkpoint"):
        return None
    if before_label(a["before_epoch"]) == "initial":
        return ("initial (epoch 0, before training and rewiring)" if _rewired(data) else
                "initial (epoch 0, before training; this dense run never rewired)")
    return f"before: {a['before_checkpoint']} (epoch {a['before_epoch']})"


def analysis_section(data: dict, figures: dict) -> dict:
    from trainer.analyze import before_label

    a = data["analysis"]
    st = a["statistic"]
    label = before_label(a.get("before_epoch"))
    rows = []
    for L in a["layers"]:
        for which in ("trained", "before"):
            s = L[which]
            if s is None:
                continue
            rows.append([L["name"], "trained" if which == "trained" else label, s["n_synapses"],
                         s["n_excitatory"], s["n_inhibitory"], s["n_pairs"],
                         num(s["observed_fraction"], 4), num(s["shuffle_mean"], 4),
                         num(s["shuffle_std"], 3), num(s["z"]), num(s["p_value"]),
                         s.get("note")])
    f = a["files"]
    words = _before_words(data)
    names = [L["name"] for L in a["layers"]]
    figs = []
    for layer, name in f["receptive_fields"].items():
        i = names.index(layer)
        source = "input channel" if i == 0 else f"{names[i - 1]} neuron"
        figs.append({"caption": f"Receptive fields of {layer} (trained) in ({source}, delay in "
                                f"steps), the neurons with the largest total |weight|",
                     "png": figures[f"analysis/{name}"]})
        if layer in f.get("receptive_fields_before", {}):
            nb = f["receptive_fields_before"][layer]
            figs.append({"caption": f"Receptive fields of {layer}, {words}; same neurons",
                         "png": figures[f"analysis/{nb}"]})
    vs = f" against {words}" if words else ""
    rows_b = f" (top row) and {label} (bottom row)" if words else ""
    dashed = f" against {words} (dashed)" if words else ""
    figs += [{"caption": f"E/I clustering: observed same-sign neighbour fraction against the "
                         f"sign-shuffle null, trained{vs}",
              "png": figures[f"analysis/{f['ei_clustering']}"]},
             {"caption": f"Delay histograms: excitatory and inhibitory synapses per delay "
                         f"(steps), trained{rows_b}",
              "png": figures[f"analysis/{f['delay_histograms']}"]},
             {"caption": f"Connections per delay (steps): trained (solid){dashed}",
              "png": figures[f"analysis/{f['connections_per_delay']}"]}]
    compared = (f"; compared with {words}: {a['before_checkpoint']}" if words else
                "; no initial checkpoint in the run, so no comparison")
    return {"title": "Receptive fields and E/I clustering",
            "intro": f"{st['name']}, k = {st['k']} neighbours, {st['n_shuffles']} sign shuffles "
                     f"(seed {st['seed']}), kernel size {a['kernel_size']} steps{compared}. "
                     f"{st['definition']}",
            "tables": [{"caption": "E/I clustering statistic per layer",
                        "header": ["layer", "checkpoint", "sites (synapses)", "excitatory",
                                   "inhibitory", "neighbour pairs", "same-sign fraction",
                                   "shuffle mean", "shuffle std", "z", "p", "note"],
                        "rows": rows}],
            "figures": figs}


def config_section(data: dict) -> dict:
    cfg = data["config"]
    rows = [[k, _value(cfg[k]), CONFIG_UNITS.get(k, "")] for k in sorted(cfg)]
    m = data["metrics"]
    rec = data["data_recipe"]
    exp = data["export"]
    st = data.get("status")
    if m.get("seconds") is not None:
        seconds: str | None = num(m["seconds"])
    elif _unfinished(data):
        seconds = "not recorded: the run did not finish (no metrics.json)"
    else:
        seconds = None
    run_rows = [
        ["run folder", data["run_dir"], ""],
        ["training status", "finished" if st and st["finished"] else
         "did not finish" if st else "unknown (not a trainer run folder)", st and st["message"]],
        ["checkpoint SHA-256", data["checkpoint_sha256"][:16] + "...", ""],
        ["checkpoint epoch", data["epoch"],
         f"epoch of {st['epochs_planned']} planned (best validation)" if st else
         "epoch (best validation)"],
        ["validation accuracy", pct(data["val_accuracy"]), "%"],
        ["training time", seconds, "s" if m.get("seconds") is not None else ""],
        ["connected pairs per layer", _value([L["connected_pairs"] for L in exp["layers"]]),
         "(pre, post) pairs with a synapse, from the checkpoint"],
        ["dataset", rec.get("dataset"), ""],
        ["classes", len(data["class_names"]), "classes"],
        ["input channels", rec.get("n_mels"), "channels"],
        ["time steps per sample", rec.get("time_steps"), f"steps ({STEP_MS:g} ms each)"],
        ["data options", _value(rec.get("options", {})), ""],
        ["audio front end sample rate", (rec.get("frontend") or {}).get("resample_hz", "n/a"),
         "Hz (new audio is resampled to it)"],
    ]
    layer_rows = []
    for L in exp["layers"]:
        d = L["delay"]
        layer_rows.append([L["name"], f"{L['n_in']} -> {L['n_out']}", L["synapses"],
                           L["connected_pairs"], pct(L["density"]), d["max"], num(d["mean"]),
                           "spiking LIF" if L["spiking"] else "readout (no spikes)",
                           L["input_message_bits"] or "binary spikes"])
    return {"title": "Run and configuration",
            "tables": [
                {"caption": "Run", "header": ["item", "value", "unit"], "rows": run_rows},
                {"caption": f"Exported network ({exp['profile']['name']} "
                            f"v{exp['profile']['version']}, latency {exp['latency_steps']} "
                            f"steps, {exp['steps_per_sample']} steps per sample)",
                 "header": ["layer", "shape (in -> out)", "synapses", "connected pairs",
                            "density (%)", "max delay (steps)", "mean delay (steps)", "neurons",
                            "input messages (graded bits)"],
                 "rows": layer_rows,
                 "note": "; ".join(exp.get("warnings", [])) or None},
                {"caption": "Training configuration (checkpoint config)",
                 "header": ["setting", "value", "unit"], "rows": rows},
            ]}


def build_page(data: dict, figures: dict[str, bytes]) -> dict:
    """The page dict for report.html.render_html."""
    cfg = data["config"]
    notes = []
    if data["lava"] is None:
        notes.append("Lava was skipped (--limit 0): only the emulator ran the integer "
                     "network.")
    return {
        "title": f"Run report: {cfg.get('method')} on {cfg.get('dataset')}",
        "subtitle": f"{data['run_dir']} - sparsity {cfg.get('sparsity')}, hidden "
                    f"{cfg.get('hidden')}, {epoch_text(data)}; exported for "
                    f"{data['export']['profile']['name']}",
        "banner": status_banner(data),
        "headline": headline(data),
        "notes": notes,
        "sections": [accuracy_section(data), budget_section(data, figures),
                     analysis_section(data, figures), config_section(data)],
    }
