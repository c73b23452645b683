"""The README block of "Bring your lava-dl network": the measured example of
docs/results/lava_dl_example.json (written by ``python -m experiments.lava_dl_example``),
registered in ``experiments.figures_readme.BLOCKS``."""
from __future__ import annotations

from experiments.figures_common import link, pct, secs, si, table, whole, wrap

SOURCE = "docs/results/lava_dl_example.json"


def lava_dl_example(d: dict) -> str:
    task, tr, net = d["task"], d["training"], d["network"]
    acc, agree, s, b = d["accuracy"], d["agreement"], d["seconds"], d["budget"]
    layers = net["layers"]
    shape = " -> ".join([str(layers[0]["n_in"])] + [str(L["n_out"]) for L in layers])
    n = s["samples"]
    if n != task["samples"]:
        raise ValueError(f"seconds cover {n} samples, the task {task['samples']}")
    machine = ", ".join(p for p in d["machine"].split(", ") if not p.startswith("Python"))
    intro = wrap(
        f"Measured ({link(SOURCE)}, written by `{d['command']}` on {machine}): a SLAYER "
        f"network ({shape}, CUBA neurons, one learnable axonal delay per hidden neuron, up to "
        f"{layers[0]['max_delay']} steps after training) trained by lava-dl for "
        f"{tr['epochs']} epochs on CPU ({secs(tr['seconds'])} s) on the synthetic timing task "
        f"as binary spikes ({task['classes']} classes, {task['channels']} channels, "
        f"{task['time_steps']} steps, {task['n_train']} training samples, "
        f"{task['input_spikes_per_sample']:.1f} input spikes per sample), written by lava-dl's "
        f"`export_hdf5` and converted by `export.from_netx`. The same {n} test samples through "
        f"every backend ({net['window_steps']} steps each):")
    netx_note = (f"{secs(s['netx_lava'])} (one sample at a time, a fresh netx network each: "
                 f"{secs(s['netx_lava_build_and_first_step'])} s building and compiling, "
                 f"{secs(s['netx_lava_other_steps'])} s stepping)")
    rows = [["SLAYER's float simulation (lava-dl)", pct(acc["slayer_float"]), "-", "-"],
            ["emulator (this project)", pct(acc["emulator"]), "reference",
             secs(s["emulator"])],
            ["Lava graph (this project, Loihi 2 simulator)", pct(acc["lava"]),
             pct(agree["lava_vs_emulator_output_spikes"]),
             f"{secs(s['lava'])} (samples side by side in lanes)"],
            ["`netx.hdf5.Network` in Lava (lava-dl)", pct(acc["netx_lava"]),
             pct(agree["netx_vs_emulator_output_spikes"]) + " (every layer: "
             + pct(agree["netx_vs_emulator_every_layer"]) + ")", netx_note]]
    tab = table(["backend", "accuracy", "samples with output spikes identical to the emulator's",
                 "wall seconds"], rows, ["", "r", "r", ""])
    cores = f"{b['cores']} core{'s' if b['cores'] != 1 else ''}"
    load = d["load_avg_1min"]
    budget = wrap(
        f"Budget on {b['profile']} (`budget --spikes`, from the emulator's activity): "
        f"{whole(b['synops_per_sample'])} synaptic operations and {b['spikes_per_sample']:.1f} "
        f"spikes per sample, {si(b['energy_per_sample_joules'], 'J')} dynamic energy per "
        f"inference ({si(b['static_energy_per_sample_joules'], 'J')} static), {cores} "
        f"({'fits' if b['fits'] else 'does not fit'}). Wall seconds are whole runs as a user "
        "starts them (the Lava ones include starting the worker process); the 1-minute load "
        f"was {load['before']:.1f} before and {load['after']:.1f} after.")
    return "\n\n".join([intro, tab, budget])
