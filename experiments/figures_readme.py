"""The README's generated figure blocks: one function per block, each making the block's text
from the committed JSON it cites (docs/results/...). Registered in ``BLOCKS`` (file order);
``python -m experiments.readme_figures`` checks and writes them."""
from __future__ import annotations

import json
import math
import re

from experiments.figures_common import (
    Block,
    bullet,
    count_words,
    energy_parts,
    energy_sum,
    g,
    indent,
    link,
    pct,
    pts,
    sci,
    secs,
    si,
    span,
    table,
    whole,
    wrap,
)
from experiments.figures_lava_dl import SOURCE as LAVA_DL_SOURCE
from experiments.figures_lava_dl import lava_dl_example
from experiments.figures_speed import (
    SWEEP_S09,
    dcls_speed_summary,
    lava_speed,
    profile_step,
    train_speed,
    training_runs,
)

R = "docs/results/"
# The targets the sparse showcase network was built to meet (its issue): Lava accuracy at least,
# points below its float model at most, synapses at most, dynamic energy per sample under (J).
SHOWCASE_TARGETS = {"lava_accuracy": 0.975, "float_gap_points": 0.5, "synapses": 1280,
                    "energy_j": 2.0e-6}


# ----------------------------------------------------------------------------- top, install

def make_test(fresh: dict) -> str:
    first = fresh["runs"][0]
    return (f"A fresh `make test` took about {round(first['total_s'] / 60)} minutes on "
            f"{fresh['cpu_count']} cores (Install notes).")


def _step(run: dict, text: str) -> float:
    found = [s["s"] for s in run["steps"] if text in s["step"]]
    if len(found) != 1:
        raise ValueError(f"fresh_clone JSON: {len(found)} install steps mention {text!r}, "
                         "expected one")
    return found[0]


def install_time(fresh: dict, busy: dict) -> str:
    first, second = fresh["runs"][0], fresh["runs"][1]
    b = busy["runs"][0]

    def mins(s: float) -> str:
        return f"{s / 60:.1f} min"
    return bullet(
        f"Time: a fresh `make test` in a new clone, empty caches, on a {fresh['cpu_count']}-core "
        f"machine shared with other jobs (1-minute load {fresh['load_avg_1min_before']:.1f} "
        f"before, {first['load_avg_1min_after']:.1f} after), took {first['total_s'] / 60:.0f} "
        f"min: {first['install_s'] / 60:.0f} min installing (torch "
        f"{mins(_step(first, 'installing torch'))}, delaysnn and its dependencies "
        f"{mins(_step(first, 'installing delaysnn'))}, the patched wheels "
        f"{mins(_step(first, 'patched'))}), then {first['test_s'] / 60:.0f} min of tests "
        f"(pytest: {first['summary']}). A second `make test` (installed, caches such as the FSDD "
        f"features filled) took {second['total_s'] / 60:.0f} min. Chromium was already present "
        f"there; when it had to be installed too and the load was "
        f"{busy['load_avg_1min_before']:.1f} to {b['load_avg_1min_after']:.1f}, the first run "
        f"took {b['total_s'] / 60:.0f} min ({b['install_s'] / 60:.0f} min installing). `make` "
        "prints a line before each long step. Measured by `.venv/bin/python "
        "bench/fresh_clone.py` (`docs/results/fresh_clone_make_test.json`, and "
        "`fresh_clone_make_test_busy.json` for the busy run).")


# ----------------------------------------------------------------------------- NIR

def nir(d: dict) -> str:
    acc = d["test_accuracy"]
    lava = d["lava_vs_emulator"]
    same = "equals" if lava["identical"] else "differs from"
    return wrap(
        f"Measured ({link(R + 'nir_snntorch_fsdd.json')}, written by `{d['command']}`): an "
        f"snnTorch network ({d['network']}) trained for {d['epochs']} epochs on FSDD and "
        f"exported with snnTorch's own `export_to_nir` scores {pct(acc['snntorch'])} on the "
        f"{d['test_samples']} test recordings in snnTorch, {pct(acc['imported_float'])} as the "
        f"imported float model and {pct(acc['quantized_emulator'])} quantized (bit-exact "
        f"emulator; same class as the float model on {pct(acc['quantized_agrees_with_float'])})"
        f"; Lava's fixed-point simulation {same} the emulator on the {lava['samples']} test "
        "samples run there.")


# ----------------------------------------------------------------------------- main job

METHOD_NOTES = {"structure": " (frozen random delays, DEEP R + RigL)",
                "structure-multi": " (delays chosen by which synapses exist)",
                "dcls": " (learnable delay positions)"}


def demo(d: dict) -> str:
    b, base, acc = d["budget"], d["baseline"], d["accuracy"]
    layers = b["layers"]
    n_in, n_out = layers[0]["n_in"], layers[-1]["n_out"]
    s = d["seconds"]
    m = d["machine"]
    epochs = (f"each for {d['epochs']} epochs" if base["epochs"] == d["epochs"] else
              f"for {d['epochs']} and {base['epochs']} epochs")
    size = "dense" if base["sparsity"] == 0 else f"sparsity {g(base['sparsity'])}"
    runs = "all " if acc["lava_samples"] == b["n_samples"] else ""
    kernels = acc["float_train_kernels"]
    parts = energy_parts(b["energy_per_sample_joules"], "demo.json")
    threads = m["training_threads"]
    lines = [
        bullet(f"It trains `{d['method']}` learning{METHOD_NOTES.get(d['method'], '')} at "
               f"sparsity {g(d['sparsity'])}, and a `{base['method']}` baseline of the same "
               f"shape ({size}), {epochs}, {n_in} -> {d['hidden']} -> {n_out} with delays up "
               f"to {max(l['max_delay'] for l in layers)} steps. Then it exports the first to "
               f"{b['profile']} and runs {runs}{acc['lava_samples']} test samples through the "
               "emulator and Lava."),
        bullet(f"What delays buy (test accuracy): **{d['method']} "
               f"{pct(acc['float_integer_delays'])}, {base['method']} "
               f"{pct(base['test_accuracy'])}** (chance is {g(100 / n_out)}%): "
               f"{d['delay_gain_points']:+.1f} points."),
        bullet("The deployed network:"), "",
        indent(table(["float, training kernels", "float, integer delays", "emulator",
                       "Lava (this project's ProcessModels)"],
                      [[f"n/a ({d['method']} trains with its integer delays)" if kernels is None
                        else pct(kernels), pct(acc["float_integer_delays"]),
                        pct(acc["emulator"]), pct(acc["lava"])]])), "",
        bullet(f"Lava equalled the emulator (spikes and voltages) on "
               f"{g(100 * acc['lava_equals_emulator_fraction'])}% of samples."),
        bullet(f"Took {secs(s['total_s'])} s by the demo's own clock (training "
               f"{secs(s['train_s'])} s, baseline {secs(s['baseline_train_s'])} s, export "
               f"{secs(s['export_s'])} s, emulator {secs(s['emulator_s'])} s, Lava "
               f"{secs(s['lava_s'])} s for {acc['lava_samples']} samples) on "
               f"{m['cpu_count']} cores at a 1-minute load average of "
               f"{m['load_average_1min_at_start']:g} at the start and "
               f"{m['load_average_1min_at_end']:g} at the end; {d['cpu_s']:.0f} CPU seconds."),
        bullet(f"Training runs on {threads} thread{'s' if threads != 1 else ''} "
               "(`--num-threads`): with a fixed thread count the seed fixes the run."),
        bullet(f"Ends with the {b['profile']} budget: {sci(b['synops_per_sample'])} synaptic "
               f"operations and {si(energy_sum(b['energy_per_sample_joules'], 'demo.json'), 'J')}"
               f" dynamic energy per sample ({parts}), "
               f"{b['cores']} core{'s' if b['cores'] != 1 else ''} in this project's memory/core "
               "model. Then it prints the next commands: the HTML report of `runs/demo/train`, "
               "the budget of `runs/demo/net.h5` on every profile, and training on the real "
               "FSDD recordings."),
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- showcase

FRACTIONS = {2: "half", 3: "a third", 4: "a quarter", 5: "a fifth", 6: "a sixth",
             7: "a seventh", 8: "an eighth", 9: "a ninth", 10: "a tenth", 12: "a twelfth"}


def _fraction(part: float, whole: float) -> str:
    """'a tenth' for part/whole near 1/10 (within 5%), else '1/12.3'."""
    k = round(whole / part)
    if k in FRACTIONS and abs(whole / part - k) <= 0.05 * k:
        return FRACTIONS[k]
    return f"1/{whole / part:.1f}"


def showcase_title(dense: dict, sparse: dict) -> str:
    acc = ("more accurate" if sparse["lava_accuracy"] > dense["lava_accuracy"] else
           "as accurate" if sparse["lava_accuracy"] == dense["lava_accuracy"] else
           "less accurate")
    return (f"**A sparse keyword spotter on FSDD: "
            f"{_fraction(sparse['synapses'], dense['synapses'])} of the synapses, {acc}, "
            f"{_fraction(sparse['energy_per_sample_joules'], dense['energy_per_sample_joules'])} "
            "of the energy**")

def _showcase_row(label: str, cfg_note: str, d: dict, bold: bool) -> list[str]:
    def b(x: str) -> str:
        return f"**{x}**" if bold else x
    return [b(label), f"[{d['config']}]({d['config']}) ({cfg_note})", b(f"{d['synapses']:,}"),
            str(d["hidden_neurons"]), pct(d["test_accuracy_float"], 2),
            pct(d["emulator_accuracy"], 2), b(pct(d["lava_accuracy"], 2)),
            f"{round(d['lava_equals_emulator_fraction'] * d['n_test'])}/{d['n_test']}",
            sci(d["synops_per_sample"]), b(si(d["energy_per_sample_joules"], "J")),
            si(d["static_energy_per_sample_joules"], "J")]


def _net_note(d: dict, n_in: int = 40, n_out: int = 10) -> str:
    sp = f", sparsity {g(d['sparsity'])}" if d["sparsity"] else ""
    return f"{d['method'].upper() if d['method'] == 'dcls' else d['method']}, " \
           f"{n_in} -> {d['hidden_neurons']} -> {n_out}{sp}"


def _breakdown(d: dict) -> dict:
    return {"total": d["energy_per_sample_joules"], "breakdown": d["energy_breakdown_joules"],
            "not_counted": {}}


def showcase(dense: dict, sparse: dict) -> str:
    from hw_profiles import load_profile

    for d, f in ((dense, "showcase_dense.json"), (sparse, "showcase_sparse.json")):
        energy_sum(_breakdown(d), f)
    head = ["network", "config", "synapses", "hidden neurons", "float", "emulator", "Lava",
            "Lava = emulator", "synaptic ops / sample", "dynamic energy / sample",
            "static energy / sample (proxy)"]
    rows = [_showcase_row("dense", _net_note(dense), dense, False),
            _showcase_row("**sparse**", _net_note(sparse), sparse, True)]
    rows[1][0] = "**sparse**"
    both_equal = all(d["lava_equals_emulator_fraction"] == 1.0 for d in (dense, sparse))

    t = SHOWCASE_TARGETS
    gap = 100 * (sparse["test_accuracy_float"] - sparse["lava_accuracy"])  # points below float
    met = [sparse["lava_accuracy"] >= t["lava_accuracy"], gap <= t["float_gap_points"],
           sparse["synapses"] <= t["synapses"], sparse["energy_per_sample_joules"] < t["energy_j"]]
    prof = load_profile(sparse["profile"])
    e_syn, e_neu = prof.energy["synop"].value, prof.energy["neuron_update"].value
    parts = sparse["energy_breakdown_joules"]
    if not math.isclose(sparse["synops_per_sample"] * e_syn, parts["synaptic_ops"], rel_tol=1e-6):
        raise ValueError(f"showcase_sparse.json: synaptic-op energy is not synops x "
                         f"hw_profiles/{sparse['profile']}.toml's synop energy; the profile "
                         "changed since the run: rerun the showcase")
    updates = parts["neuron_updates"] / e_neu
    neurons = updates / sparse["steps_per_sample"]
    if abs(neurons - round(neurons)) > 1e-6:
        raise ValueError("showcase_sparse.json: neuron-update energy is not a whole number of "
                         "neurons x steps at the profile's figure; rerun the showcase")
    routing = parts["routing_local"] + parts["routing_cross_core"]
    above = "above" if gap < 0 else "below"
    verdict = ("meets the four targets of its issue" if all(met) else
               f"meets {count_words(sum(met))} of the four targets of its issue")
    qat = [f"{'gains' if q > 0 else 'loses'} {abs(q):.2f} points" for q in
           (100 * (d["emulator_accuracy"] - d["test_accuracy_float"]) for d in (dense, sparse))]
    lines = [
        table(head, rows), "",
        bullet(f"Figures: {link(R + 'showcase_dense.json')} and "
               f"{link(R + 'showcase_sparse.json')}. \"Lava\" is Lava's Loihi 2 CPU simulator "
               "(`Loihi2SimCfg`, fixed_pt) with this project's ProcessModels; its spikes and "
               f"voltages {'equalled' if both_equal else 'did not always equal'} the emulator's "
               f"{'on every test recording' if both_equal else '(column Lava = emulator)'}."),
        bullet(f"The sparse network {verdict}: at least {pct(t['lava_accuracy'])} through Lava "
               f"({pct(sparse['lava_accuracy'], 2)}), at most {t['float_gap_points']} points "
               f"below its float model (it is {abs(gap):.2f} {above}), at most "
               f"{t['synapses']:,} synapses ({sparse['synapses']:,}), under "
               f"{si(t['energy_j'], 'J', 2)} of dynamic energy per sample "
               f"({si(sparse['energy_per_sample_joules'], 'J')} = "
               f"{si(parts['synaptic_ops'], 'J')} for {sparse['synops_per_sample']:,.0f} "
               f"synaptic operations at {si(e_syn, 'J')} + {si(parts['neuron_updates'], 'J')} for "
               f"{round(neurons)} neurons x {sparse['steps_per_sample']} steps at "
               f"{si(e_neu, 'J', 2)} + {si(routing, 'J')} spike routing; per-operation figures "
               f"from `hw_profiles/{sparse['profile']}.toml`, Loihi 1's as a proxy)."),
        bullet(f"Quantization-aware fine-tuning was **{'not needed' if all(met) else 'not tried'}"
               f"** here: against its float model the quantized dense network {qat[0]} and the "
               f"sparse one {qat[1]} (emulator)."),
        bullet(f"Training time (metrics.json `seconds`, `train_seconds` in the JSONs; shared "
               f"2-core machine): dense {dense['train_seconds']:.0f} s, sparse "
               f"{sparse['train_seconds']:.0f} s."),
    ]
    return "\n".join(lines)


def candidates(c: dict, chosen: dict) -> str:
    runs = [(label, r, v["command"]) for label, v in c.items() for r in v["runs"]]
    synapses = {sum(r["connections"]) for _, r, _ in runs}
    if len(synapses) != 1:
        raise ValueError(f"showcase_candidates.json: candidates differ in synapse count "
                         f"{sorted(synapses)}")
    seeds = sorted({r["seed"] for _, r, _ in runs})
    main_seed = seeds[0]
    ranked = sorted([x for x in runs if x[1]["seed"] == main_seed],
                    key=lambda x: (-x[1]["val_accuracy"], x[1]["epochs"]))
    best = ranked[0][1]["val_accuracy"]
    tied = [x for x in ranked if x[1]["val_accuracy"] == best]
    pick = tied[0]
    if f"--method {chosen['method']} --sparsity {g(chosen['sparsity'])} " \
       f"--set hidden=[{chosen['hidden_neurons']}]" not in pick[2]:
        raise ValueError("showcase_candidates.json: the best candidate on validation is not the "
                         "network of showcase_sparse.json; update the README's choice")
    order = ", ".join(f"{label} {pct(r['val_accuracy'], 2)}" for label, r, _ in ranked)
    text = (f"How it was chosen: {count_words(len(ranked))} {synapses.pop():,}-synapse candidates "
            f"at seed {main_seed} ({link(R + 'showcase_candidates.json')}; configs in "
            f"`configs/candidates/`), ranked on validation: {order}. ")
    if len(tied) > 1:
        text += (f"The tie at {pct(best, 2)} went to the shorter run, {pick[0]} "
                 f"({pick[1]['epochs']} epochs). ")
    else:
        text += f"{pick[0]} was chosen. "
    repeats = [x for x in runs if x[1]["seed"] != main_seed]
    def config(cmd: str) -> str:
        return re.sub(r"--seed \d+ ", "", cmd)
    for label, r, cmd in repeats:
        same = [x for x in ranked if config(x[2]) == config(cmd) and x[1]["epochs"] == r["epochs"]]
        if same:
            diff = 100 * (r["val_accuracy"] - same[0][1]["val_accuracy"])
            text += (f"The same configuration at seed {r['seed']} ({label}) scored "
                     f"{pct(r['val_accuracy'], 2)} on validation, {abs(diff):.1f} points "
                     f"{'above' if diff > 0 else 'below'} its seed {main_seed}: one seed per "
                     "candidate leaves rankings within seed noise. ")
    text += ("Test accuracies and budgets of the candidates: "
             "`docs/results/showcase_candidate_*.json`.")
    return bullet(text)


# ----------------------------------------------------------------------------- new voices

HELDOUT_ROWS = (("dense", "dense"), ("showcase", "sparse"))


def heldout(h: dict, dense: dict, sparse: dict) -> str:
    official = {"dense": dense, "sparse": sparse}
    rows, cost, aug = [], {}, {}
    for net, label in HELDOUT_ROWS:
        runs = {r["augmentation"]: r for r in h["runs"] if r["network"] == net}
        if set(runs) != {False, True}:
            raise ValueError(f"heldout_speaker.json: network {net!r} needs one run with and one "
                             "without augmentation")
        syn = sum(runs[False]["connections"])
        if syn != official[label]["synapses"]:
            raise ValueError(f"heldout_speaker.json: {net} has {syn} synapses, "
                             f"showcase_{label}.json {official[label]['synapses']}")
        rows.append([f"{label} ({syn:,} synapses)", pct(runs[False]["heldout_accuracy"]),
                     pct(runs[True]["heldout_accuracy"]),
                     pct(official[label]["lava_accuracy"], 2)])
        cost[label] = 100 * (official[label]["lava_accuracy"] - runs[False]["heldout_accuracy"])
        aug[label] = 100 * (runs[True]["heldout_accuracy"] - runs[False]["heldout_accuracy"])
    val = [r["val_accuracy"] for r in h["runs"]]
    sec = [r["seconds"] for r in h["runs"]]
    commands = list(dict.fromkeys(r["command"] for r in h["runs"]))
    opposite = (aug["dense"] > 0) != (aug["sparse"] > 0)
    more = "sparse" if cost["sparse"] > cost["dense"] else "dense"
    lines = [
        table(["network", "augmentation off", "augmentation on",
               "same network, official split (Lava)"], rows), "",
        wrap(f"(validation, carved from the five training speakers, was "
             f"{span(val, lambda v: pct(v))} in every run; training took "
             f"{span(sec, lambda v: f'{v:.0f}')} s; figures from "
             f"{link(R + 'heldout_speaker.json')}, written by "
             + " and ".join(f"`{c} --json docs/results/heldout_speaker.json`" for c in commands)
             + ")"), "",
        bullet(f"A voice never heard in training costs {span(list(cost.values()), whole)} points:"
               f" what the networks learn from five speakers does not carry over to the "
               f"sixth, and the {more} network ({sparse['hidden_neurons']} hidden neurons against "
               f"{dense['hidden_neurons']}) loses more. The augmentation moved the two networks "
               f"{'in opposite directions' if opposite else 'in the same direction'} "
               f"({pts(aug['dense'])} and {pts(aug['sparse'])} points)"
               + (", so it shows no consistent gain." if opposite else ".")),
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- deploying dense

def deploy_dense(dense: dict, lanes: dict, one: dict) -> str:
    if lanes["network"] != one["network"] or lanes["samples"] != one["samples"]:
        raise ValueError("lava_fsdd_lanes.json and lava_fsdd_one_lane.json must time the same "
                         "network on the same samples")
    same = lanes["compare"]["exact_match_fraction"] == 1
    return "\n".join([
        bullet(f"The dense network's {dense['n_test']} test recordings ran in "
               f"{dense['lava_seconds']:.1f} s of Lava time (`lava_seconds` in "
               "`docs/results/showcase_dense.json`).", 1),
        bullet(f"Lanes against one lane, on a quicker FSDD network ({pct(lanes['accuracy'])} "
               f"accurate): the same {one['samples']} recordings took "
               f"{lanes['lava_run_seconds']:.1f} s of Lava run time in {lanes['lanes']} lanes "
               f"(`docs/results/lava_fsdd_lanes.json`) and {one['lava_run_seconds']:.1f} s with "
               f"{one['lanes']} lane{'s' if one['lanes'] != 1 else ''} "
               "(`docs/results/lava_fsdd_one_lane.json`), "
               f"{one['lava_run_seconds'] / lanes['lava_run_seconds']:.0f}x longer; Lava "
               f"{'equalled' if same else 'did not always equal'} the emulator"
               f"{' on every sample' if same else ''}.", 1),
    ])


# ----------------------------------------------------------------------------- budget

KIND_LABEL = {"neuromorphic": "neuromorphic", "dense": "dense float", "ann": "equivalent ANN"}
KIND_ORDER = ("neuromorphic", "dense", "ann")


def _refusal(profile: str, reason: str) -> str:
    """A refusal without its source: 'layer fc1 ... at most 0 (`graded_spike_bits`)'."""
    text, _, source = reason.strip().partition(f" ({profile} ")
    key = source.split(":", 1)[0]
    return f"{text} (`{key}`)" if source else text


def _proxy(p: dict) -> bool:
    return any(k.startswith("energy.") and k != "energy.static_power" and "[proxy]" in v
               for k, v in (p.get("sources") or {}).items())


def budget(d: dict) -> str:
    profiles = sorted(d["profiles"], key=lambda p: (
        KIND_ORDER.index(p["kind"]), bool(p["refused"]),
        (p["energy_per_sample_joules"] or {}).get("total") or 0, p["profile"]))
    rows, parts, refused = [], [], []
    for p in profiles:
        name, kind = p["profile"], p["kind"]
        if p["refused"]:
            rows.append([name, KIND_LABEL[kind], "-", "-", "-", "refused (below)", "-"])
            refused.append(f"{name}: " + "; ".join(_refusal(name, r) for r in p["refused"]))
            continue
        e = p["energy_per_sample_joules"]
        total = energy_sum(e, f"budget_dense_all.json, {name}")
        ops = (f"{sci(p['synops_per_sample'])} synops" if kind == "neuromorphic" else
               f"{sci(p['dense_synops_per_sample'])} MACs")
        step = p.get("time_per_step_seconds")
        rows.append([name, KIND_LABEL[kind], ops, f"{p['memory_bytes']['total']:,}",
                     str(p["cores"]) if p["cores"] is not None else "-",
                     si(total, "J") + (" (proxy figures)" if _proxy(p) else ""),
                     si(step, "s", 2) if step else "-"])
        parts.append(f"{name} {si(total, 'J')} = {energy_parts(e, name)}")
    l2 = next(p for p in d["profiles"] if p["profile"] == "loihi2")
    mem = l2["memory_bytes"]
    lines = [
        f"{d['n_samples']} test samples of {d['steps']} steps; per-sample figures are means.", "",
        table(["profile", "kind", "ops / sample", "memory (bytes, model)", "cores (model)",
               "dynamic energy / sample", "time / step"], rows), ""]
    if refused:
        lines += [bullet("**Refused** by the profile check, before any estimate:"),
                  *[bullet(r + ".", 1) for r in refused]]
    lines += [
        bullet("**What each energy counts** (the parts add up to the total):"),
        *[bullet(x + ".", 1) for x in parts],
        bullet("**How synaptic operations are counted:** each spike, or nonzero graded payload, "
               "times its fan-out over the existing (post, delay) synapses. That gives "
               f"{sci(d['synops_per_sample'])} per sample, against a dense count of "
               f"{sci(d['dense_synops_per_sample'])}."),
        bullet(f"**Delay lines are memory:** on loihi2 the delay accumulators take "
               f"{mem['delay_accumulators'] / 1000:.0f} KB of the {mem['total'] / 1000:.0f} KB."),
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- new voices

def loso(d: dict, source: str = "loso.json") -> str:
    """Leave-one-speaker-out: a fold table per network and its mean (docs/results/loso.json)."""
    out = []
    for name, net in d["networks"].items():
        folds = net["folds"]
        if not folds:
            out.append(f"`{name}` ({net['config']}): no fold has run yet.")
            continue
        rows = [[f["speaker"], f["val_speaker"], pct(f["float_accuracy"]),
                 pct(f["emulator_accuracy"]),
                 "-" if f["lava_accuracy"] is None else
                 f"{pct(f['lava_accuracy'])} (= emulator on "
                 f"{pct(f['lava_equals_emulator_fraction'])} of recordings)",
                 str(f["n_test"])] for f in folds]
        rows.append(["**mean**", "", pct(net["mean_float_accuracy"]),
                     f"**{pct(net['mean_emulator_accuracy'])}**", "", ""])
        budget = ("within" if net["within_showcase_budget"] else "outside")
        out.append(wrap(
            f"`{name}` ({net['config']}; at most {net['max_synapses']:,} synapses and "
            f"{si(net['max_energy_per_sample_joules'], 'J')} dynamic energy per sample on "
            f"loihi2, {budget} the showcase budget of 1,280 synapses and 2.0 uJ)"
            + ("" if net["complete"] else
               f"; folds still missing: {', '.join(net['missing'])}") + ":"))
        out.append(table(["held-out speaker (test)", "validation speaker", "float", "emulator",
                          "Lava", "test recordings"], rows))
    return "\n\n".join(out) + "\n\n" + wrap(
        f"Figures from {link(R + source)}, written by `{d['command']}` ({d['validation']}).")


def loso_voices(d: dict, before: dict) -> str:
    """Leave-one-speaker-out with the screen's winner (docs/results/loso_voices.json), each
    network paired fold by fold with its lever-free twin of docs/results/loso.json."""
    from experiments.sweep_report import interval

    twins = {"showcase-voices": "showcase", "dense-voices": "dense",
             "sparse128-voices": "showcase"}
    lines = []
    for name, net in d["networks"].items():
        base = before["networks"].get(twins.get(name, ""))
        if base is None:
            continue
        old = {f["speaker"]: f["emulator_accuracy"] for f in base["folds"]}
        old_val = {f["speaker"]: f["val_accuracy"] for f in base["folds"]}
        pairs = [(old[f["speaker"]], f["emulator_accuracy"]) for f in net["folds"]
                 if f["speaker"] in old]
        vals = [(old_val[f["speaker"]], f["val_accuracy"]) for f in net["folds"]
                if f["speaker"] in old]
        if not pairs:
            continue
        iv = interval([100 * (b - a) for a, b in pairs])
        ci = ("" if iv["lo"] is None else f" [{iv['lo']:+.1f}, {iv['hi']:+.1f}]")
        verdict = ("no difference resolved" if iv["lo"] is None or iv["lo"] <= 0 <= iv["hi"]
                   else "better" if iv["lo"] > 0 else "worse")
        lines.append(wrap(
            f"- `{name}` against `{twins[name]}`, paired by held-out speaker over {len(pairs)} "
            f"fold(s): {iv['mean']:+.1f} points{ci} (95% t interval) in emulator accuracy, "
            f"{verdict}; mean over these folds {pct(sum(a for a, _ in pairs) / len(pairs))} -> "
            f"{pct(sum(b for _, b in pairs) / len(pairs))}. Nested validation (what chooses): "
            f"mean {pct(sum(a for a, _ in vals) / len(vals))} -> "
            f"{pct(sum(b for _, b in vals) / len(vals))}, so `{name}` "
            + ("**wins**" if sum(b - a for a, b in vals) > 0 else "does **not** win")
            + f" over `{twins[name]}` on validation.", rest="  "))
    return loso(d, "loso_voices.json") + ("\n\n" + "\n".join(lines) if lines else "")


def voices_tradeoff(sparse: dict, voiced: dict, before: dict, after: dict) -> str:
    """The sparse recipe with and without the voice levers, on the official split (showcase
    JSONs) and leave-one-speaker-out (loso.json, loso_voices.json)."""
    def mean(d: dict, name: str, key: str) -> float:
        folds = d["networks"][name]["folds"]
        return sum(f[key] for f in folds) / len(folds)
    return wrap(
        f"- The sparse recipe with and without the levers: on FSDD's official split (the six "
        f"known voices) {pct(voiced['lava_accuracy'], 2)} through Lava with them "
        f"({link(R + 'showcase_sparse_voices.json')}, `{voiced['command']}`) against "
        f"{pct(sparse['lava_accuracy'], 2)} without ({link(R + 'showcase_sparse.json')}); "
        f"leave-one-speaker-out {pct(mean(after, 'showcase-voices', 'emulator_accuracy'))} "
        f"against {pct(mean(before, 'showcase', 'emulator_accuracy'))} in the emulator, "
        f"nested validation {pct(mean(after, 'showcase-voices', 'val_accuracy'))} against "
        f"{pct(mean(before, 'showcase', 'val_accuracy'))}; dynamic energy "
        f"{si(voiced['energy_per_sample_joules'], 'J')} against "
        f"{si(sparse['energy_per_sample_joules'], 'J')} per sample.", rest="  ")


def _sets(sets: dict) -> str:
    flat = {**{k: v for k, v in sets.items() if k != "data_options"},
            **sets.get("data_options", {})}
    return ", ".join(f"`{k} = {json.dumps(v)}`" for k, v in flat.items()) or "-"


def voice_levers(d: dict) -> str:
    """The lever screen on one fold (docs/results/voice_levers.json)."""
    rows = [[lv["name"], _sets(lv["sets"]), pct(lv["val_accuracy"]),
             f"{lv['gain_points']:+.1f}", pct(lv["test_accuracy"]),
             "yes" if lv["kept"] else "no"] for lv in d["levers"]]
    c = d.get("combined")
    if c:
        rows.append([f"**together**: {c['name']}", _sets(c["sets"]), pct(c["val_accuracy"]),
                     f"{c['gain_points']:+.1f}", pct(c["test_accuracy"]), ""])
    norms = d["host_cost"]["norms"]
    sp = d["speaker_spread"]
    ea = sp["earlier_augmentation"]
    w = d["winner"]
    return "\n\n".join([
        wrap(f"Screen on one fold (test speaker {d['test_speaker']}, validation speaker "
             f"{d['val_speaker']}; {d['config']}, {d['epochs']} epochs, seeds "
             f"{', '.join(map(str, d['seeds']))}, means over seeds; a lever is kept when "
             f"validation gains more than {d['min_gain_points']:g} point; the test speaker "
             "chooses nothing):"),
        table(["lever", "sets", "validation", "gain (points)", "test (george)", "kept"], rows),
        "\n".join([wrap(f"- Winner on validation: **{w['name']}** ({pct(w['val_accuracy'])})."
             + ("" if not c else f" On the test speaker it scores {pct(c['test_accuracy'])} "
                f"against the baseline's {pct(d['levers'][0]['test_accuracy'])}."), rest="  "),
        wrap("- Likely why the earlier augmentation could not reach an unheard voice: FSDD's "
             "speakers "
             f"differ by {sp['centroid_range_bands']:.1f} Mel bands in median spectral centroid "
             f"and {sp['duration_ratio_max_over_min']:.2f}x in median duration; it shifted "
             f"bands by at most {ea['band_shift']} and rates by "
             f"{ea['rate_ratio_max_over_min']:.2f}x. VTLP warps the whole Mel axis instead, and "
             "PCEN's per-band gain control is meant to remove the level and slow spectral tilt "
             "a voice and a microphone add.", rest="  "),
        wrap("- Host cost of the front end per utterance (median over "
             f"{d['host_cost']['files']} FSDD recordings, features included, this shared "
             "machine): " + ", ".join(f"{k} {v['ms_per_utterance']:.2f} ms"
                                      for k, v in norms.items())
             + f"; PCEN: {norms['pcen']['ops']}.", rest="  ")]),
        wrap(f"Figures from {link(R + 'voice_levers.json')}, written by `{d['command']}`."),
    ])


# ----------------------------------------------------------------------------- recurrence

def recurrent(d: dict) -> str:
    same = round(d["lava_equals_emulator_fraction"] * d["n_test"])
    ff = d["synapses"] - d["recurrent_synapses"]
    return wrap(
        f"Measured ({link(R + 'showcase_recurrent.json')}, written by `{d['command']} --json "
        f"docs/results/showcase_recurrent.json`): a recurrent spotter ({d['method']}, "
        f"{d['epochs']} epochs; {ff:,} feed-forward and {d['recurrent_synapses']:,} "
        f"recurrent synapses, recurrent delays up to {d['recurrent_max_delay']} steps) scores "
        f"{pct(d['test_accuracy_float'], 2)} as float, {pct(d['emulator_accuracy'], 2)} in the "
        f"emulator and {pct(d['lava_accuracy'], 2)} in Lava on the {d['n_test']} FSDD test "
        f"recordings; Lava's spikes and voltages equal the emulator's on {same} of "
        f"{d['n_test']}. loihi2 budget: {sci(d['synops_per_sample'])} synaptic operations per "
        f"sample, {sci(d['recurrent_synops_per_sample'])} of them recurrent, "
        f"{si(d['energy_per_sample_joules'], 'J')} dynamic energy per sample (Loihi 1 figures "
        "as proxy). Recurrent against feed-forward at equal synapse counts (320, 1,280 and "
        "12,800 synapses): [docs/sparse_training.md](docs/sparse_training.md), \"Recurrent "
        "layers\".")


def fidelity_sources(*ds: dict) -> str:
    """Where the fixed point parts from the float model, per source, on the sweep's worst
    points (docs/results/fidelity_sources_*.json, experiments.fidelity_sources)."""
    def row(d: dict) -> list[str]:
        v = {r["variant"]: r["test"] for r in d["variants"]}

        def agree(name: str, key: str = "agreement") -> str:
            return pct(v[name][key], 1)
        return [f"`{d['run']}`", pct(v["float"]["accuracy"], 1),
                f"{pct(v['emulator']['accuracy'], 1)} ({agree('emulator')})",
                agree("input payloads"), agree("deployed weights", "agreement_with_emulator"),
                f"{pct(v['emulator, neuron exponents']['accuracy'], 1)} "
                f"({agree('emulator, neuron exponents')})",
                agree("grid 7 bits per neuron"), agree("grid 10 bits per layer")]
    head = ["run", "float", "emulator (agreement)", "8-bit input only: agreement",
            "deployed weights, float neurons: agreement with the emulator",
            "with neuron exponents (agreement)", "7-bit grid per neuron", "10-bit grid per layer"]
    return "\n\n".join([
        wrap("On the 300 test recordings of the sweep points that lost most (`python -m "
             "experiments.fidelity_sources RUN --json ...`; agreement: recordings given the "
             "float model's class; the last two columns are float models on idealised grids, "
             "not deployable networks):"),
        table(head, [row(d) for d in ds])])


# ----------------------------------------------------------------------------- registry

RM = "README.md"
BLOCKS = [
    Block("make-test", RM, (R + "fresh_clone_make_test.json",), make_test),
    Block("recurrent", RM, (R + "showcase_recurrent.json",), recurrent),
    Block("nir", RM, (R + "nir_snntorch_fsdd.json",), nir),
    Block("lava-dl", RM, (LAVA_DL_SOURCE,), lava_dl_example),
    Block("demo", RM, (R + "demo.json",), demo),
    Block("showcase-title", RM, (R + "showcase_dense.json", R + "showcase_sparse.json"),
          showcase_title),
    Block("showcase", RM, (R + "showcase_dense.json", R + "showcase_sparse.json"), showcase),
    Block("candidates", RM, (R + "showcase_candidates.json", R + "showcase_sparse.json"),
          candidates),
    Block("heldout", RM, (R + "heldout_speaker.json", R + "showcase_dense.json",
                          R + "showcase_sparse.json"), heldout),
    Block("loso", RM, (R + "loso.json",), loso),
    Block("fidelity-sources", RM, tuple(R + f"fidelity_sources_{run}.json" for run in (
        "no-delay_s0.9_seed1", "structure-random-regrowth_s0.98_seed2",
        "structure-multi-matched_s0.998_seed0", "structure_s0.9_seed2")), fidelity_sources),
    Block("voice-levers", RM, (R + "voice_levers.json",), voice_levers),
    Block("loso-voices", RM, (R + "loso_voices.json", R + "loso.json"), loso_voices),
    Block("voices-tradeoff", RM, (R + "showcase_sparse.json", R + "showcase_sparse_voices.json",
                                  R + "loso.json", R + "loso_voices.json"), voices_tradeoff),
    Block("deploy-dense", RM, (R + "showcase_dense.json", R + "lava_fsdd_lanes.json",
                               R + "lava_fsdd_one_lane.json"), deploy_dense),
    Block("budget", RM, (R + "budget_dense_all.json",), budget),
    Block("lava-speed", RM, (R + "lava_speed.json", R + "lava_speed_shd.json"), lava_speed),
    Block("train-speed", RM, (R + "train_speed.json",), train_speed),
    Block("dcls-speed-summary", RM, (R + "train_speed_dcls.json",), dcls_speed_summary),
    Block("profile-step", RM, (R + "profile_step.json", R + "profile_step_before.json"),
          profile_step),
    Block("training-runs", RM, (R + "fsdd_structure_s09_speed.json", *SWEEP_S09,
                                R + "fsdd_structure_s09.json", R + "structure_connectivity.json",
                                R + "structure_multi_lr.json", R + "structure_multi_init.json",
                                R + "deepr_options.json"), training_runs),
    Block("install-time", RM, (R + "fresh_clone_make_test.json",
                               R + "fresh_clone_make_test_busy.json"), install_time),
]
