"""The content of the run report: plain report data -> the page dict of report.html.

`build_page(data, figures)` is pure: `data` is the dict lava_runtime.report.build.make_report
assembles (config, metrics, export report, accuracies, budgets as Budget.to_json dicts,
trainer.analyze's analysis.json); `figures` maps "budget" and "analysis/<png name>" to PNG bytes.
Every number carries its unit in the column header or the unit column.
"""
from __future__ import annotations

import json

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


def _value(v) -> str:
    if isinstance(v, (list, dict, bool)):
        return json.dumps(v, separators=(", ", ": "))
    return str(v)


def config_section(data: dict) -> dict:
    cfg = data["config"]
    rows = [[k, _value(cfg[k]), CONFIG_UNITS.get(k, "")] for k in sorted(cfg)]
    m = data["metrics"]
    rec = data["data_recipe"]
    run_rows = [
        ["run folder", data["run_dir"], ""],
        ["checkpoint SHA-256", data["checkpoint_sha256"][:16] + "...", ""],
        ["checkpoint epoch", data["epoch"], "epoch (best validation)"],
        ["validation accuracy", pct(data["val_accuracy"]), "%"],
        ["training time", num(m.get("seconds")), "s"],
        ["connections per layer", _value(m.get("connections")), "(pre, post) pairs"],
        ["dataset", rec.get("dataset"), ""],
        ["classes", len(data["class_names"]), "classes"],
        ["input channels", rec.get("n_mels"), "channels"],
        ["time steps per sample", rec.get("time_steps"), f"steps ({STEP_MS:g} ms each)"],
        ["data options", _value(rec.get("options", {})), ""],
        ["audio front end sample rate", (rec.get("frontend") or {}).get("resample_hz", "n/a"),
         "Hz (new audio is resampled to it)"],
    ]
    exp = data["export"]
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
                {"caption": "Training configuration (checkpoint config)",
                 "header": ["setting", "value", "unit"], "rows": rows},
                {"caption": f"Exported network ({exp['profile']['name']} "
                            f"v{exp['profile']['version']}, latency {exp['latency_steps']} "
                            f"steps, {exp['steps_per_sample']} steps per sample)",
                 "header": ["layer", "shape (in -> out)", "synapses", "connected pairs",
                            "density (%)", "max delay (steps)", "mean delay (steps)", "neurons",
                            "input messages (graded bits)"],
                 "rows": layer_rows,
                 "note": "; ".join(exp.get("warnings", [])) or None},
            ]}


def accuracy_section(data: dict) -> dict:
    f, emu, lava = data["float"], data["emulator"], data["lava"]
    f_data = f"{f['split']} split ({f['source']})"
    rows = [
        ["float model, training kernels", pct(f["accuracy_train_kernels"]), f.get("n_samples"),
         f_data],
        ["float model, integer delays", pct(f["accuracy"]), f.get("n_samples"), f_data],
        ["integer network, emulator (bit-exact fixed point)", pct(emu["accuracy"]),
         emu["samples"], f"{emu['split']} split, all samples"],
    ]
    tables = []
    notes = []
    if lava is None:
        rows.append(["integer network, Lava (Loihi 2 simulator, fixed_pt)", None, 0,
                     "Lava skipped (--lava-limit 0)"])
        notes.append("Lava was not run (--lava-limit 0): the Lava row is empty.")
    else:
        rows.append(["integer network, Lava (Loihi 2 simulator, fixed_pt)",
                     pct(lava["accuracy"]), lava["samples"],
                     f"{lava['split']} split, first {lava['samples']} samples"])
        tables_lava = {
            "caption": "Lava against the emulator on the same samples",
            "header": ["samples", "identical spikes and readout voltages (%)",
                       "same prediction (%)", "emulator accuracy on these samples (%)",
                       "Lava accuracy (%)", "Lava run time (s)", "Lava speed (steps/s)"],
            "rows": [[lava["samples"], pct(lava["exact_match_fraction"]),
                      pct(lava["prediction_agreement"]),
                      pct(lava["emulator_accuracy_same_samples"]), pct(lava["accuracy"]),
                      num(lava["seconds"]), num(lava.get("steps_per_second"))]],
            "note": "A sample counts as identical when every hidden spike and every readout "
                    "voltage of the whole window equals the emulator's."}
        tables.append(tables_lava)
    spikes = ", ".join(f"{v:.1f}" for v in emu["spikes_per_sample_per_layer"])
    return {"title": "Accuracy by stage",
            "intro": " ".join(notes + [f"Hidden spikes per sample (emulator), per hidden layer: "
                                       f"{spikes}."]),
            "tables": [{"caption": "Accuracy at each stage",
                        "header": ["stage", "accuracy (%)", "samples", "data"], "rows": rows,
                        "note": "Training kernels equal integer delays unless the method is "
                                "dcls (Gaussian kernels in training). Lava = Lava's Loihi 2 CPU "
                                "simulator (Loihi2SimCfg, fixed_pt) running this project's "
                                "ProcessModels for the input source, recorders, readout and "
                                "delay connections (docs/design.md, section 4). Nothing on this "
                                "page ran on a Loihi chip: the loihi2 backend is untested."}]
            + tables}


def _energy(b: dict):
    e = b["energy_per_sample_joules"]
    return None if e is None else e["total"]


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
        rows.append([b["profile"], b["kind"], "no" if b["refused"] else "yes", num(ops),
                     b["memory_bytes"]["total"], b["cores"], b["chips"], num(_energy(b)),
                     num(b.get("static_energy_per_sample_joules")),
                     num(b["time_per_step_seconds"]), ", ".join(b["energy_basis"]) or None])
        refusals += [[b["profile"], r] for r in b["refused"]]
        e = b["energy_per_sample_joules"]
        if e is not None:
            missing += [[b["profile"], part, why] for part, why in e["not_counted"].items()]
    tables = [
        {"caption": f"Counts per sample by layer ({first['n_samples']} samples of the "
                    f"{data['split']} split, {first['steps']} steps each; the same on every "
                    f"profile)",
         "header": ["layer", "shape (in -> out)", "synapses", "max delay (steps)",
                    "input events", "synaptic ops", "dense synaptic ops", "neuron updates",
                    "spikes out"],
         "rows": layer_rows},
        {"caption": "Budget per inference by hardware profile",
         "header": ["profile", "kind", "fits", "operations charged (per sample)",
                    "memory (bytes, model)", "cores (model)", "chips (model)",
                    "dynamic energy per sample (J)", "static energy per sample (J)",
                    "time per step (s)", "basis of the energy figures"],
         "rows": rows,
         "note": "Neuromorphic profiles are charged the synaptic operations of the recorded "
                 "spikes; dense and ann profiles every synapse every step. Dynamic energy counts "
                 "activity-dependent terms only; static energy (static power x steps x time "
                 "per step) is shown only where the profile gives a static power. Memory, cores "
                 "and chips come from this project's own model (deployed.cores: "
                 "weight, delay and index bits per synapse, a 24-bit accumulator per delay slot "
                 "per neuron, greedy core packing), not from a vendor compiler. '-' = not given "
                 "or not computed (see the tables below)."},
    ]
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
                                    "scale); "
                                    "profiles that refuse the network are marked",
                         "png": figures["budget"]}]}


def analysis_section(data: dict, figures: dict) -> dict:
    a = data["analysis"]
    st = a["statistic"]
    rows = []
    for L in a["layers"]:
        for which in ("trained", "before"):
            s = L[which]
            if s is None:
                continue
            rows.append([L["name"], which, s["n_synapses"], s["n_excitatory"], s["n_inhibitory"],
                         s["n_pairs"], num(s["observed_fraction"], 4), num(s["shuffle_mean"], 4),
                         num(s["shuffle_std"], 3), num(s["z"]), num(s["p_value"]),
                         s.get("note")])
    f = a["files"]
    figs = []
    for layer, name in f["receptive_fields"].items():
        figs.append({"caption": f"Receptive fields of {layer} (trained) in (input channel, "
                                f"delay in steps), the neurons with the largest total |weight|",
                     "png": figures[f"analysis/{name}"]})
        if layer in f.get("receptive_fields_before", {}):
            nb = f["receptive_fields_before"][layer]
            figs.append({"caption": f"Receptive fields of {layer} before rewiring, same neurons",
                         "png": figures[f"analysis/{nb}"]})
    figs += [{"caption": "E/I clustering: observed same-sign neighbour fraction against the "
                         "sign-shuffle null", "png": figures[f"analysis/{f['ei_clustering']}"]},
             {"caption": "Delay histograms (synapses per delay, steps)",
              "png": figures[f"analysis/{f['delay_histograms']}"]},
             {"caption": "Connections per delay (steps), excitatory and inhibitory",
              "png": figures[f"analysis/{f['connections_per_delay']}"]}]
    before = (f"; before rewiring: {a['before_checkpoint']} (epoch {a['before_epoch']})"
              if a.get("before_checkpoint") else "; no before-rewiring checkpoint in the run")
    return {"title": "Receptive fields and E/I clustering",
            "intro": f"{st['name']}, k = {st['k']} neighbours, {st['n_shuffles']} sign shuffles "
                     f"(seed {st['seed']}), kernel size {a['kernel_size']} steps{before}. "
                     f"{st['definition']}",
            "tables": [{"caption": "E/I clustering statistic per layer",
                        "header": ["layer", "checkpoint", "sites (synapses)", "excitatory",
                                   "inhibitory", "neighbour pairs", "same-sign fraction",
                                   "shuffle mean", "shuffle std", "z", "p", "note"],
                        "rows": rows}],
            "figures": figs}


def build_page(data: dict, figures: dict[str, bytes]) -> dict:
    """The page dict for report.html.render_html."""
    cfg = data["config"]
    notes = []
    if data["lava"] is None:
        notes.append("Lava was skipped (--lava-limit 0): only the emulator ran the integer "
                     "network.")
    return {
        "title": f"Run report: {cfg.get('method')} on {cfg.get('dataset')}",
        "subtitle": f"{data['run_dir']} - sparsity {cfg.get('sparsity')}, hidden "
                    f"{cfg.get('hidden')}, {cfg.get('epochs')} epochs, seed {cfg.get('seed')}; "
                    f"exported for {data['export']['profile']['name']}",
        "notes": notes,
        "sections": [config_section(data), accuracy_section(data),
                     budget_section(data, figures), analysis_section(data, figures)],
    }
