"""The report of an exported network on given input spikes (`report NET --spikes EVENTS.npy`).

    python -m lava_runtime report NET.h5 --spikes EVENTS.npy [--labels LABELS.npy]
                                  [--out FILE.html] [--profiles all] [--limit 100]

is a thin layer over :func:`make_spikes_report` (same defaults). NET is an exported network (a
deployed.netx_h5 file, or a folder holding net.h5): one written by `export.from_netx` from a
lava-dl network, or by `export.to_lava`. There is no training run behind it here, so the page
has no float model, no training configuration and no E/I analysis; it holds what the network
does on the spikes: the emulator on every sample, Lava (Loihi 2 simulator, fixed_pt) on the
first `lava_limit` compared with the emulator, accuracy when labels are given (otherwise how
often Lava and the emulator agree), the budget on every profile of the set, and the layers.
Nothing is cached; the page (default NET's folder/<NET stem>_report.html) is written
atomically, and every argument is checked before any work.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from lava_runtime.report.page import LAVA_STAGE, budget_section, num, pct
from lava_runtime.report.profiles import parse_profile_set
from trainer.file_io import write_bytes_atomic

DEFAULT_PROFILE_SET = "all"
DEFAULT_LAVA_LIMIT = 100


def default_out(net_path: Path) -> Path:
    """NET.h5 -> NET_report.html beside it."""
    return net_path.with_name(f"{net_path.stem}_report.html")


def check_out(out: Path) -> Path:
    if out.suffix.lower() != ".html":
        raise ValueError(f"--out {out} must end in .html")
    if not out.parent.is_dir():
        raise ValueError(f"--out {out}: folder {out.parent} does not exist")
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give a file name ending in .html")
    return out


def make_spikes_report(net_path, spikes, labels=None, out=None, *,
                       profile_set: str = DEFAULT_PROFILE_SET,
                       lava_limit: int = DEFAULT_LAVA_LIMIT, profile: str | None = None,
                       timeout_s: float | None = None, progress: bool = True) -> dict:
    """Run NET on the input spikes (EVENTS.npy, lava_runtime.pipeline.load_spikes) and write
    one HTML page; return its data, with "html" = the page's path.

    labels: LABELS.npy (optional). profile_set: "all" or comma-separated profiles for the
    budgets. lava_limit: first N samples run through Lava (0 = skip). profile: the profile
    whose energy and fit head the page (None = the one the network was exported for; always
    budgeted). timeout_s: bound on the Lava run (s)."""
    from deployed.netx_h5 import load
    from hw_profiles import load_profile
    from lava_runtime.budget.text import PLOT_DPI, energy_figure
    from lava_runtime.pipeline import budget_stage, check_net_path, load_spikes
    from lava_runtime.report.html import render_html

    if isinstance(lava_limit, bool) or not isinstance(lava_limit, int) or lava_limit < 0:
        raise ValueError(f"--limit must be an integer >= 0 (0 skips Lava), got {lava_limit!r}")
    if timeout_s is not None and not timeout_s > 0:
        raise ValueError(f"--timeout must be > 0 seconds, got {timeout_s!r}")
    net_path = check_net_path(net_path)
    out = check_out(default_out(net_path) if out is None else Path(out))
    profiles = [load_profile(n) for n in parse_profile_set(profile_set)]
    net = load(net_path)
    head = load_profile(profile or net.profile_name)
    if head.name not in [p.name for p in profiles]:
        profiles.insert(0, head)
    payloads, y = load_spikes(net, spikes, labels)

    from deployed.emulator import emulate

    if progress:
        print(f"[1/3] emulator: {len(payloads)} samples of {spikes}", flush=True)
    act = emulate(net, payloads, progress=progress)
    pred = act.predictions(net)
    emu = {"samples": act.n_samples, "seconds": act.seconds,
           "accuracy": None if y is None else float(np.mean(pred == y)),
           "spikes_per_sample_per_layer": [c / act.n_samples for c in act.spike_counts()]}
    lava = None
    n = min(lava_limit, len(payloads))
    if n:
        if progress:
            print(f"[2/3] Lava: first {n} samples, Loihi 2 simulator (fixed_pt)", flush=True)
        lava = _lava(net, act, y, n, timeout_s, progress)
    elif progress:
        print("[2/3] Lava: skipped (--limit 0)", flush=True)
    if progress:
        print(f"[3/3] budget: {', '.join(p.name for p in profiles)}", flush=True)
    objs = budget_stage(net, act, profiles)
    budgets = []
    for b, p in zip(objs, profiles):
        d = b.to_json()
        d["energy_basis"] = sorted({f.basis for f in p.energy.values()})
        budgets.append(d)
    buf = io.BytesIO()
    energy_figure(objs).savefig(buf, format="png", dpi=PLOT_DPI)
    figure = buf.getvalue()
    data = {"network": str(net_path), "spikes": str(spikes),
            "labels": None if labels is None else str(labels), "head_profile": head.name,
            "output": "spikes" if net.readout.neurons.spiking else "voltage",
            "emulator": emu, "lava": lava, "lava_limit": lava_limit, "budgets": budgets,
            "layers": _layers(net), "input": {"n_channels": net.input.n_channels,
                                              "time_steps": net.input.time_steps,
                                              "message_bits": net.input.num_message_bits},
            "layer_start": net.layer_start, "latency_steps": net.latency,
            "profile": {"name": net.profile_name, "version": net.profile_version},
            "source": net.meta.get("netx_source", {}).get("file") or net.meta.get("exporter")}
    write_bytes_atomic(render_html(build_spikes_page(data, figure)).encode("utf-8"), out)
    if progress:
        print(f"wrote {out}")
    return {**data, "html": str(out)}


def _lava(net, emulated, y, n: int, timeout_s, progress: bool) -> dict:
    """The first n samples in Lava against the emulator's activity of the same samples."""
    from deployed.activity import first, output_spikes_match, outputs_match
    from lava_runtime.lava_graph.graph import run_network

    act = run_network(net, emulated.input_payload[:n], "lava", timeout_s=timeout_s,
                      progress=progress)
    ref = first(emulated, n)
    pred, ref_pred = act.predictions(net), ref.predictions(net)
    out = {"samples": n, "seconds": act.seconds,
           "accuracy": None if y is None else float(np.mean(pred == y[:n])),
           "emulator_accuracy_same_samples": None if y is None else
           float(np.mean(ref_pred == y[:n])),
           "exact_match_fraction": float(outputs_match(act, ref).mean()),
           "prediction_agreement": float(np.mean(pred == ref_pred)),
           "steps_per_second": act.extra.get("steps_per_second")}
    if net.readout.neurons.spiking:
        out["output_spike_agreement"] = float(output_spikes_match(act, ref).mean())
    return out


def _layers(net) -> list[dict]:
    return [{"name": L.name, "n_in": L.n_in, "n_out": L.n_out, "synapses": L.n_synapses,
             "recurrent_synapses": 0 if L.recurrent is None else L.recurrent.n_synapses,
             "max_delay": L.max_delay, "weight_bits": L.num_weight_bits,
             "input_message_bits": L.input_message_bits, "spiking": L.neurons.spiking}
            for L in net.layers]


# ------------------------------------------------------------------------------ page

def _energy_text(b: dict | None) -> str:
    if b is None or b["refused"]:
        return "does not fit" if b is not None else "not budgeted"
    e = b["energy_per_sample_joules"]
    if e is None:
        return "no figure"
    from lava_runtime.budget.text import format_energy

    return ("≥ " if e["not_counted"] else "") + format_energy(e["total"])


def headline(data: dict) -> dict:
    emu, lava, budgets = data["emulator"], data["lava"], data["budgets"]
    labelled = data["labels"] is not None
    if labelled:
        lines = [["emulator", f"{pct(emu['accuracy'])} %"],
                 ["Lava", "not run" if lava is None else f"{pct(lava['accuracy'])} %"]]
        detail = (f"Emulator on all {emu['samples']} samples"
                  + ("" if lava is None else f", Lava on the first {lava['samples']}") + ".")
        label = "Accuracy"
    else:
        what = "output spikes" if data["output"] == "spikes" else "spikes and voltages"
        agree = None if lava is None else lava.get("output_spike_agreement",
                                                   lava["exact_match_fraction"])
        lines = [[f"identical {what}", "Lava not run" if agree is None else f"{pct(agree)} %"],
                 ["same prediction", "-" if lava is None
                  else f"{pct(lava['prediction_agreement'])} %"]]
        detail = ("No labels: Lava against the emulator"
                  + ("" if lava is None else f" on the first {lava['samples']} samples") + ".")
        label = "Lava and emulator agree"
    head = next((b for b in budgets if b["profile"] == data["head_profile"]), None)
    fit = [[head["profile"] if head else data["head_profile"],
            "does not fit" if head and head["refused"] else "fits"]]
    if head is not None and head["cores"] is not None:
        fit.append(["cores", str(head["cores"])])
    syn = sum(L["synapses"] + L["recurrent_synapses"] for L in data["layers"])
    return {"title": "Headline", "cards": [
        {"label": label, "lines": lines, "detail": detail},
        {"label": "Energy per inference (dynamic)",
         "lines": [[data["head_profile"], _energy_text(head)]],
         "detail": "" if head is None else
         f"{', '.join(head['energy_basis']) or 'no basis'} figures."},
        {"label": "Fits the chip", "lines": fit,
         "detail": "Cores: this project's model (deployed.cores)."},
        {"label": "Synapses", "lines": [["synapses", str(syn)]],
         "detail": "Per layer: " + ", ".join(f"{L['name']} {L['synapses']}"
                                             for L in data["layers"]) + "."}]}


def runs_section(data: dict) -> dict:
    emu, lava = data["emulator"], data["lava"]
    rows = [["emulator (bit-exact fixed point)", emu["samples"], pct(emu["accuracy"]), None,
             None, num(emu["seconds"])]]
    if lava is not None:
        agree = lava.get("output_spike_agreement")
        rows.append([LAVA_STAGE, lava["samples"], pct(lava["accuracy"]),
                     pct(lava["exact_match_fraction"]) if agree is None else
                     f"{pct(lava['exact_match_fraction'])} (output spikes {pct(agree)})",
                     pct(lava["prediction_agreement"]), num(lava["seconds"])])
    spikes = ", ".join(f"{v:.1f}" for v in emu["spikes_per_sample_per_layer"])
    return {"title": "The network on the spikes",
            "intro": f"Input: {data['spikes']}" + (f", labels {data['labels']}"
                                                   if data["labels"] else ", no labels")
                     + f". Spikes per sample per spiking layer (emulator): {spikes}."
                     + (" Lava was skipped (--limit 0)." if lava is None else ""),
            "tables": [{"caption": "Backends on the same input spikes",
                        "header": ["backend", "samples", "accuracy (%)",
                                   "identical spikes and voltages as the emulator (%)",
                                   "same prediction as the emulator (%)", "seconds"],
                        "rows": rows,
                        "note": "Prediction: argmax of the output layer's spike counts (a "
                                "spiking output) or of the summed softmax of the readout "
                                "voltage (deployed.activity). '-': no labels or not compared."}]}


def network_section(data: dict) -> dict:
    rows = [[L["name"], f"{L['n_in']} -> {L['n_out']}", L["synapses"], L["recurrent_synapses"],
             L["max_delay"], L["weight_bits"], L["input_message_bits"] or "binary spikes",
             "spiking" if L["spiking"] else "readout (no spikes)"] for L in data["layers"]]
    inp = data["input"]
    return {"title": "Network", "tables": [{
        "caption": f"{data['network']} ({data['profile']['name']} "
                   f"v{data['profile']['version']}; layers start {data['layer_start']}, "
                   f"latency {data['latency_steps']} steps; input {inp['n_channels']} channels, "
                   f"{inp['time_steps']} steps per sample)",
        "header": ["layer", "shape (in -> out)", "synapses", "recurrent synapses",
                   "max delay (steps)", "weight bits", "input messages (graded bits)",
                   "neurons"],
        "rows": rows}]}


def build_spikes_page(data: dict, budget_png: bytes) -> dict:
    """The page dict for report.html.render_html."""
    return {"title": f"Network report: {Path(data['network']).name} on "
                     f"{Path(data['spikes']).name}",
            "subtitle": f"{data['network']}" + (f" (from {data['source']})"
                                                if data["source"] else ""),
            "headline": headline(data), "notes": [],
            "sections": [runs_section(data),
                         budget_section({**data, "samples_from": f"the input spikes "
                                                                 f"{data['spikes']}"},
                                        {"budget": budget_png}),
                         network_section(data)]}
