"""docs/*.md's generated figure blocks (docs/sparse_training.md; docs/results.md is the sweep
report's): one function per block, each making the block's text from the committed JSON it
cites. Registered in ``BLOCKS``; ``python -m experiments.readme_figures`` checks and writes them."""
from __future__ import annotations

from pathlib import Path

from experiments.figures_common import (
    Block,
    bullet,
    g,
    pct,
    pts,
    si,
    sig,
    span,
    t_interval,
    table,
    wrap,
)
from experiments.figures_sources import (
    CONN_AFTER,
    CONN_BEFORE,
    LR_AFTER,
    LR_BEFORE,
    conn_runs,
    deepr_diffs,
    mean,
    note_match,
    runs_by_seed,
    runs_by_sparsity,
    speed_runs,
    stage_ms,
)

R = "docs/results/"
ST = "docs/sparse_training.md"


def _p(x: float) -> str:
    return pct(x, space=True)


# ----------------------------------------------------------------------------- crossover

def crossover(b32: dict, b256: dict) -> str:
    def cell(d: dict, layer: str) -> str:
        v = d["sparse_faster_up_to_density"][layer]
        method, shape = layer.split(" ")
        n_in, n_out = (int(x) for x in shape.split("->"))
        measured = [r["density"] for r in d["rows"] if r["method"] == method
                    and r["n_in"] == n_in and r["n_out"] == n_out]
        if not v:
            return "never"
        return g(v) + (" (highest measured)" if v >= max(measured) else "")
    if list(b32["sparse_faster_up_to_density"]) != list(b256["sparse_faster_up_to_density"]):
        raise ValueError("sparse_crossover_b32.json and _b256.json time different layers")
    rows = [[layer.replace("->", " -> "), cell(b32, layer), cell(b256, layer)]
            for layer in b32["sparse_faster_up_to_density"]]
    return table(["layer", f"batch {b32['setup']['batch']} (default)",
                  f"batch {b256['setup']['batch']}"], rows)


def no_delay_speed(speed: dict) -> str:
    runs = speed_runs(speed)
    nd = {sp: runs[("no-delay", sp, 256)] for sp in (0.9, 0.97)}
    path = {sp: "sparse" if any(r["sparse_path"]) else "dense" for sp, r in nd.items()}
    where = (f"both on the {path[0.9]} path" if path[0.9] == path[0.97] else
             f"on the {path[0.9]} path at 0.9 and the {path[0.97]} path at 0.97")
    return wrap(
        f"In the full training benchmark (batch 256, `docs/results/train_speed.json`) no-delay "
        f"trains at {nd[0.9]['ratio_to_dense_dcls']:.2f}x dense dcls at sparsity 0.9 and "
        f"{nd[0.97]['ratio_to_dense_dcls']:.2f}x at 0.97, {where}.")


# ----------------------------------------------------------------------------- DEEP R options

def _option_label(key: str) -> tuple[str, str]:
    name, rest = key.split(" ", 1)
    value, _, note = rest.partition(" ")
    return name, f"`{name} = {value}`" + (f" {note}" if note else "")


def deepr_table(d: dict) -> str:
    diffs = deepr_diffs(d)
    keys = sorted(diffs, key=lambda k: (k.split(" ")[0] != "l1", -diffs[k][0]))
    rows = []
    for k in keys:
        n, mean, lo, hi, every = diffs[k]
        rows.append([_option_label(k)[1], f"{pts(mean)} [{pts(lo)}, {pts(hi)}]"
                     + (", higher on every seed" if every else ""), str(n)])
    return "\n".join("  " + line for line in table(
        ["option", "validation accuracy minus default (points, 95% interval)", "seeds"],
        rows).splitlines())


# ----------------------------------------------------------------------------- structure-multi lr

DIAGNOSIS = "global lr / 25 and / 5 (diagnosis)"
TRIED = "init fan-in per pair (tried, not adopted)"


def lr_table(lr: dict, init: dict) -> str:
    note_match(lr, DIAGNOSIS, r"divided by 25 \(first run\) or 5 \(second\)",
          "which run divides lr by 25 and which by 5")
    diag = lr[DIAGNOSIS]["runs"]

    def vt(r: dict | None, bold: bool = False) -> str:
        if r is None:
            return "-"
        s = f"{_p(r['val_accuracy'])} / {_p(r['test_accuracy'])}"
        return f"**{s}**" if bold else s

    def row(label: str, by: dict[float, dict], bold: bool = False) -> list[str]:
        return [f"**{label}**" if bold else label, vt(by.get(0.0), bold), vt(by.get(0.9), bold)]
    rows = [row("before: init fan-in per (pre, delay)", runs_by_sparsity(init, LR_BEFORE)),
            row("tried: init fan-in per pair", runs_by_sparsity(init, TRIED)),
            row("global lr / 5, diagnosis", {0.0: diag[1]}),
            row("global lr / 25, diagnosis", {0.0: diag[0]}),
            row("lr / synapses per pair (adopted)", runs_by_sparsity(lr, LR_AFTER), True)]
    return table(["structure-multi", "sparsity 0: val / test", "sparsity 0.9: val / test"], rows)


def lr_ei(lr: dict, init: dict) -> str:
    r = runs_by_sparsity(lr, LR_AFTER)[0.9]
    z = r["ei_z"]["fc1"]
    tried = note_match(init, TRIED, r"clustering fell to z = ([\d.]+)", "the tried init's z")
    return wrap(
        "The same file has the E/I clustering of these runs (`python -m trainer.analyze "
        f"RUN_DIR`). At sparsity 0.9 the rule's run reaches fc1 z = {z['trained']:.1f} after "
        f"{r['epochs']} epochs, against {z['init']:.1f} at initialisation. The earlier worry was "
        "that slower weights would rewire less: a per-pair *initialisation* had lowered the "
        "clustering of a 6-epoch synthetic run to z = "
        f"{tried.group(1)} (the note of `docs/results/structure_multi_init.json`). That does "
        "not hold on FSDD for the "
        "learning-rate rule.")


# ----------------------------------------------------------------------------- DCLS

def _ms(v: float) -> str:
    return f"{v:.0f} ms" if v >= 1 else f"{sig(v, 1)} ms"


def dcls_speed(speed: dict, ref: dict, repeat: dict | None = None) -> str:
    """The truncated DCLS path against dense dcls (train_speed_dcls.json), a second run of the
    same command (train_speed_dcls_repeat.json) and dense dcls against the reference code
    (reference_speed.json)."""
    runs = speed_runs(speed)
    st = speed["setup"]
    b = int(next(iter(speed["baseline"])))
    base = runs[("dcls", 0.0, b)]
    earlier = next(r for r in speed["runs"] if r.get("dcls_path") == "dense"
                   and r["batch_size"] == b)
    loads = [v for r in speed["runs"] for v in r["loadavg"]]
    targets = {0.9: 3.0, 0.98: 5.0}
    kernels = {r.get("lif_kernel") for r in speed["runs"]}
    kern = f"\"{kernels.pop()}\"" if len(kernels) == 1 and None not in kernels else None

    def taps(r: dict) -> str:
        first, last = r["schedule"][0]["kept_taps"], r["schedule"][-1]["kept_taps"]
        return f"{'/'.join(map(str, first))} -> {'/'.join(map(str, last))}"
    rows = [["dcls (dense, the baseline)", "0", f"{base['samples_per_s']:.1f}", "1.00", taps(base)]]
    for sp in targets:
        r = runs[("dcls", sp, b)]
        rows.append(["dcls", g(sp), f"{r['samples_per_s']:.1f}",
                     f"{r['ratio_to_dense_dcls']:.2f}", taps(r)])
    if ("structure", 0.9, b) in runs:
        r = runs[("structure", 0.9, b)]
        rows.append(["structure", "0.9", f"{r['samples_per_s']:.1f}",
                     f"{r['ratio_to_dense_dcls']:.2f}", "1"])
    rows.append(["dcls, earlier path (`dcls_path = \"dense\"`)", "0",
                 f"{earlier['samples_per_s']:.1f}", f"{earlier['ratio_to_dense_dcls']:.2f}",
                 "25"])
    met = [f"{g(sp)}: {runs[('dcls', sp, b)]['ratio_to_dense_dcls']:.2f}x ({g(want)}x asked, "
           f"{'met' if runs[('dcls', sp, b)]['ratio_to_dense_dcls'] >= want else 'not met'})"
           for sp, want in targets.items()]
    sched = runs[("dcls", 0.9, b)]["schedule"]
    per = [p["samples_per_s"] / q["samples_per_s"] for p, q in zip(sched, base["schedule"])]
    r0 = next(r for r in ref["runs"] if r["sparsity"] == 0.0)
    rs = ref["setup"]
    rload = [v for side in r0["loadavg"].values() for v in side]
    return "\n".join(line for line in [
        wrap(f"`python bench/train_speed.py --methods dcls structure --sparsities 0.9 "
             f"--dcls-sparsities 0.98 --batches {b} --threads {st['threads']} "
             + ("--baseline-tree DIR " if st.get("baseline_tree_commit") else "")
             + "--json docs/results/train_speed_dcls.json`: samples/s averaged over "
             f"{st['schedule_points']} points of the sigma schedule ({st['timed_steps']} "
             f"timed steps each, best of {st['repeats']} rounds), batch {b}, {st['threads']} "
             "threads. Kept taps are per layer, at the first and the last point:"),
        "",
        table(["configuration", "sparsity", "samples/s", "x dense dcls", "kept taps"], rows),
        "",
        bullet("Issue 27's targets, averaged over the whole schedule, at sparsity "
               + "; ".join(met) + "."),
        bullet("A second run of the same command without --baseline-tree "
               "(docs/results/train_speed_dcls_repeat.json): " + "; ".join(
                   f"{g(sp)}: {speed_runs(repeat)[('dcls', sp, b)]['ratio_to_dense_dcls']:.2f}x"
                   for sp in targets) + ".") if repeat is not None else None,
        bullet(f"Along the schedule, sparse dcls at 0.9 runs {span(per, lambda v: f'{v:.2f}')}x "
               "dense dcls at the same point."),
        bullet(f"Dense dcls itself runs {1 / earlier['ratio_to_dense_dcls']:.2f}x as fast as on "
               "the earlier path in the same run, with the readout's output-side GEMM. Against "
               "dense dcls on the earlier path, the code the issue's targets were set on, sparse "
               "dcls reaches " + " and ".join(
                   f"{runs[('dcls', sp, b)]['samples_per_s'] / earlier['samples_per_s']:.2f}x "
                   f"at {g(sp)}" for sp in targets) + "."),
        bullet("Sparse dcls now costs about what structure costs at the same sparsity, and "
               "structure at 0.9 reaches only "
               f"{runs[('structure', 0.9, b)]['ratio_to_dense_dcls']:.2f}x the new dense dcls: "
               "most of the step left is work every method does. "
               + (f"The hidden layers' BatchNorm and LIF ran as one compiled pass "
                  f"(`trainer/lif_kernel.py`, `lif_kernel` = {kern}) in every row. "
                  if kern else "")
               + "The sparse index, rebuilt whenever rewiring changes the connections, "
               "is built by a compiled loop (`trainer/tap_index.py`). What remains early in "
               "the schedule, with all 25 taps kept, is the tap products; late in training, "
               "BatchNorm and the LIF, the readout's gradient to the hidden spikes and RigL's "
               "dense candidate gradient on 1 step in 10, the hidden layer's above all "
               "(`python bench/profile_step.py "
               "--method dcls "
               "--sparsity 0.9 --sigma S --threads 2 --json ...` splits a step into stages: "
               "docs/results/profile_step_dcls_s09_b256_sigma4.6.json and ..._sigma0.1.json).")
        if ("structure", 0.9, b) in runs else None,
        bullet(f"Against the code before (DIR: commit {st['baseline_tree_commit']}, before "
               "the compiled sparse index, the recomputing BatchNorm + LIF backward with "
               "BatchNorm's gradient applied in cache and the compiled readout integrator, "
               "which give the same floats, and the readout's RigL candidate gradient by "
               "output, which sums in another order: the reruns below), in the same run: "
               + ", ".join(
                   f"{r['method']} {g(r['sparsity'])}"
                   + (" (earlier path)" if r.get("dcls_path") == "dense" else "")
                   + f" {r['ratio_to_baseline_tree']:.2f}x" for r in speed["runs"]
                   if "ratio_to_baseline_tree" in r) + ".")
        if st.get("baseline_tree_commit") else None,
        bullet(f"Against the reference code (`python bench/reference_speed.py --reference DIR "
               f"--threads {rs['threads']} --json docs/results/reference_speed.json`, "
               f"github.com/mbalazs98/spatiotemporal at {str(rs['reference_commit'])[:7]}, the "
               f"same schedule points, batch {rs['batch_size']}), dense dcls trains at "
               f"{r0['ratio']:.2f}x the reference's samples/s ({r0['project_samples_per_s']:.1f} "
               f"against {r0['reference_samples_per_s']:.1f}); issue 27 asks for 2x."),
        bullet(f"The machine has {st['cpu_count']} cores shared with other jobs: the 1-minute "
               f"load average was {span(loads, lambda v: f'{v:.1f}')} during the first run and "
               f"{span(rload, lambda v: f'{v:.1f}')} during the reference's, so only ratios "
               "measured in the same run mean anything."),
    ] if line is not None)


def lif_kernel_speed(d: dict) -> str:
    """The compiled BatchNorm + LIF kernel against the code before it (train_speed_lif_kernel.json,
    --baseline-tree), same run, same configurations."""
    st = d["setup"]
    rows = [[r["method"], g(r["sparsity"]), f"{r['baseline_tree_samples_per_s']:.1f}",
             f"{r['samples_per_s']:.1f}", f"{r['ratio_to_baseline_tree']:.2f}"]
            for r in d["runs"]]
    kern = sorted({str(r.get("lif_kernel")) for r in d["runs"]})
    return (wrap("`python bench/train_speed.py --methods dcls structure --sparsities 0.9 "
                 f"--dcls-sparsities 0.98 --batches 256 --threads {st['threads']} "
                 "--no-dense-path --baseline-tree DIR --json "
                 "docs/results/train_speed_lif_kernel.json`, DIR holding the code before the "
                 f"kernels (commit {st.get('baseline_tree_commit', '?')}), interleaved in one "
                 "run; samples/s averaged over "
                 f"{st['schedule_points']} points of the sigma schedule, best of "
                 f"{st['repeats']} rounds, lif_kernel = {' and '.join(kern)}:")
            + "\n\n" + table(["method", "sparsity", "before (torch ops)", "kernels",
                               "x before"], rows))


# ----------------------------------------------------------------------------- step profile

PROFILE_ROWS = (("LIF forward + backward", ("lif", "lif bwd")),
                ("hidden delay layer forward + backward", ("delay layer", "delay layer bwd")),
                ("readout (last delay layer, LI) forward + backward", ("readout", "readout bwd")),
                ("RigL candidate gradient (1 step in 10)",
                 ("RigL candidate gradient (sparse path)",)),
                ("BatchNorm forward + backward", ("batchnorm", "batchnorm bwd")),
                ("layout copies between layers (backward)",
                 ("dropout, input and layout glue bwd",)))


def profile_table(before: dict, after: dict) -> str:
    def cell(d: dict, stages: tuple[str, ...]) -> str:
        v = stage_ms(d, *stages)
        share = 100 * v / d["ms_per_step"]
        return _ms(v) + (f" ({share:.0f} %)" if share >= 0.5 else "")
    rows = [[label, cell(before, st), cell(after, st)] for label, st in PROFILE_ROWS]
    rows.append(["whole step", _ms(before["ms_per_step"]), _ms(after["ms_per_step"])])
    return table(["stage", "before (`profile_step_before.json`)", "after (`profile_step.json`)"],
                 rows)


# ----------------------------------------------------------------------------- connectivity

def _hidden(r: dict, phase: str, key: str) -> int:
    return r[phase]["hidden"][0][key]


def _layer(r: dict, phase: str, name: str) -> dict:
    return next(l for l in r[phase]["layers"] if l["name"] == name)


def _frac(values: list[float]) -> str:
    return span([100 * v for v in values], lambda v: f"{v:.0f}") + " %"


def _ints(values: list[int] | list[float]) -> str:
    return span([float(v) for v in values], lambda v: f"{v:.0f}")


def conn_intro(c: dict) -> str:
    st = conn_runs(c, CONN_BEFORE, "structure", 0.95)
    sm = conn_runs(c, CONN_BEFORE, "structure-multi", 0.998)
    dc = conn_runs(c, CONN_BEFORE, "dcls", 0.95)
    syn = sum(l["synapses"] for l in st[0]["init"]["layers"])
    return wrap(
        f"At sparsity 0.95 ({syn} synapses, 40 -> 256 -> 10), `structure` reached "
        f"{' and '.join(_p(r['test_accuracy']) for r in st)} test accuracy (seeds "
        f"{', '.join(str(r['seed']) for r in st)}) and `structure-multi` at the same count "
        f"{' and '.join(_p(r['test_accuracy']) for r in sm)}, while `dcls` kept "
        f"{' and '.join(_p(r['test_accuracy']) for r in dc)}.")


def conn_mechanism(c: dict) -> str:
    s0 = [r for r in conn_runs(c, CONN_BEFORE, "structure", 0.95) if r["seed"] == 0][0]
    fc1, ro = _layer(s0, "init", "fc1"), _layer(s0, "init", "readout")
    n = _hidden(s0, "init", "neurons")
    collapsed = (conn_runs(c, CONN_BEFORE, "structure", 0.95)
                 + conn_runs(c, CONN_BEFORE, "structure-multi", 0.998))
    dc = conn_runs(c, CONN_BEFORE, "dcls", 0.95)
    s9 = conn_runs(c, CONN_BEFORE, "structure", 0.9)
    st = conn_runs(c, CONN_BEFORE, "structure", 0.95)

    def lost(layer: str) -> list[float]:
        return [_layer(r, "trained", layer)["disconnected_fraction"] for r in collapsed]
    return "\n".join([
        bullet(f"fc1 has {fc1['synapses'] / n:.0f} synapses per hidden neuron on average and the "
               f"readout {ro['synapses'] / n:.1f}. At initialisation (seed 0) "
               f"{_hidden(s0, 'init', 'without_output')} of the {n} hidden neurons have no "
               f"readout synapse and {_hidden(s0, 'init', 'without_input')} have no input;"),
        bullet(f"so {fc1['disconnected_fraction'] * 100:.0f} % of the fc1 synapses (those onto "
               "neurons without a readout synapse) and "
               f"{sig(ro['disconnected_fraction'] * 100, 3)} % of the readout synapses (those "
               "from neurons without input) are *disconnected*: their gradient is exactly 0;"),
        bullet("a magnitude with zero gradient never crosses zero, so DEEP R never frees it, and "
               f"RigL only regrows what DEEP R removed. Only "
               f"{_hidden(s0, 'init', 'with_input_and_output')} hidden neurons have both input "
               "and output;"),
        bullet("rewiring then made it worse: a readout synapse that crossed zero orphaned its "
               "hidden neuron's inputs for good. After training, "
               f"{_frac(lost('fc1'))} of the fc1 synapses and {_frac(lost('readout'))}"
               " of the readout synapses were disconnected, and "
               f"{_ints([_hidden(r, 'trained', 'with_input_and_output') for r in collapsed])} "
               "hidden neurons were in use (structure and structure-multi, seeds 0 and 1). "
               f"Rewiring moved {_ints([sum(r['regrown_per_epoch']) for r in collapsed])} "
               f"connections in {st[0]['epochs']} epochs ({fc1['synapses'] + ro['synapses']} "
               "synapses)."),
        bullet(f"`dcls` has the same topology "
               f"({_frac([_layer(r, 'trained', 'fc1')['disconnected_fraction'] for r in dc])} of "
               f"fc1 disconnected after training, "
               f"{_ints([_hidden(r, 'trained', 'with_input_and_output') for r in dc])} neurons in "
               "use) but learns a delay per synapse, which is enough to fit the task."),
        bullet(f"At sparsity 0.9, "
               f"{_frac([_layer(r, 'init', 'fc1')['disconnected_fraction'] for r in s9])} of fc1 "
               "synapses start disconnected and "
               f"{_ints([_hidden(r, 'init', 'with_input_and_output') for r in s9])} hidden neurons "
               "are in use, which is why the effect there is small."),
    ])


def conn_init(c: dict) -> str:
    runs = conn_runs(c, CONN_BEFORE, "structure", 0.95)
    n = _hidden(runs[0], "init", "neurons")
    without = [_hidden(r, "init", "without_input")
               for r in runs + conn_runs(c, CONN_BEFORE, "structure-multi", 0.998)]
    return wrap(
        "Initial weights are not the cause. The hidden layer's BatchNorm rescales each neuron's "
        "current. At initialisation the silent hidden neurons in the training forward pass "
        f"({_frac([r['init']['hidden'][0]['silent_fraction'] for r in runs])} at 0.95) are about "
        f"the neurons without input ({_ints(without)} of {n}). A neuron without input cannot "
        "spike: BatchNorm of a zero current is its bias, 0 at the start.")


def conn_after(c: dict) -> str:
    runs = c[CONN_AFTER]["runs"]
    worst = max(l["disconnected_fraction"] for r in runs for l in r["trained"]["layers"])
    used = {s: _ints([_hidden(r, "trained", "with_input_and_output")
                      for r in conn_runs(c, CONN_AFTER, "structure", s)]) for s in (0.95, 0.9)}
    return wrap(
        f"After training with the rule, at most {sig(100 * worst, 1)} % of a layer's synapses are "
        f"disconnected. The synapses concentrate on {used[0.95]} hidden neurons at 0.95 and "
        f"{used[0.9]} at 0.9; the other hidden neurons are left without synapses.")


SCREEN_OFF = "screen: 15 epochs, drop_disconnected off"
SCREEN_ON = "screen: 15 epochs, drop_disconnected on"


def conn_screen(c: dict) -> str:
    off, on = c[SCREEN_OFF]["runs"], c[SCREEN_ON]["runs"]
    note_match(c, SCREEN_OFF,
               r"first run: defaults, second: RigL drop fraction 0\.3 stopping at 0\.75",
          "the order of its runs")
    note_match(c, SCREEN_ON,
               r"first run: drop_disconnected only .*second: with RigL drop fraction 0\.3",
          "the order of its runs")
    rows = [["before (defaults)", off[0]], ["`rigl_drop_fraction = 0.3`, `rigl_stop_fraction = "
                                            "0.75` (Evci et al.)", off[1]],
            ["`drop_disconnected`", on[0]], ["both", on[1]]]
    r0 = off[0]
    left = _layer(off[1], "trained", "fc1")["disconnected_fraction"]
    head = (f"**Other hypotheses, tested cheaply first** ({r0['epochs']} epochs, structure, "
            f"S = {g(r0['sparsity'])}, seed {r0['seed']}; same JSON):")
    return "\n".join([
        wrap(head), "",
        table(["rule", "validation", "test"],
              [[label, _p(r["val_accuracy"]), _p(r["test_accuracy"])] for label, r in rows]), "",
        wrap("RigL's magnitude drops help too: they free some disconnected synapses as a side "
             f"effect, though {100 * left:.0f} % of fc1 is still disconnected after training. "
             + ("They help less, so `rigl_drop_fraction` keeps its default of 0."
                if off[1]["val_accuracy"] < on[0]["val_accuracy"] else
                "They helped as much on validation.")
             + " The learning rate and the start value of regrown magnitudes were not tested."),
    ])


CONN_ROWS = (("structure", 0.9), ("structure", 0.95), ("structure-multi", 0.998), ("dcls", 0.95))


def conn_epochs(c: dict) -> str:
    rows = []
    gain = {}
    for method, s in CONN_ROWS:
        b, af = conn_runs(c, CONN_BEFORE, method, s), conn_runs(c, CONN_AFTER, method, s)
        syn = sum(l["synapses"] for l in af[0]["init"]["layers"])

        def two(rs: list[dict], key: str) -> str:
            return " / ".join(f"{100 * r[key]:.1f}" for r in rs) + " %"
        rows.append([method, f"{g(s)} ({syn:,})", two(b, "test_accuracy"),
                     two(af, "val_accuracy"), two(af, "test_accuracy")])
        gain[(method, s)] = [100 * (x["test_accuracy"] - y["test_accuracy"])
                             for x, y in zip(af, b)]
    a = {k: conn_runs(c, CONN_AFTER, *k) for k in CONN_ROWS}
    sm = a[("structure-multi", 0.998)]
    behind = [100 * (x["test_accuracy"] - y["test_accuracy"]) for k in
              (("structure", 0.95), ("dcls", 0.95)) for x, y in zip(a[k], sm)]
    lead = [100 * (x["test_accuracy"] - y["test_accuracy"])
            for x, y in zip(a[("dcls", 0.95)], a[("structure", 0.95)])]

    def used(k: tuple[str, float]) -> str:
        return _ints([_hidden(r, "trained", "with_input_and_output") for r in a[k]])
    first = a[CONN_ROWS[0]][0]
    head = (f"**{first['epochs']} epochs, seeds "
            f"{' / '.join(str(r['seed']) for r in a[CONN_ROWS[0]])}** (validation-selected; same "
            "JSON; \"before\" is the sweep's points, issue 11 code without the rule):")
    return "\n".join([
        wrap(head), "",
        table(["method", "sparsity (synapses)", "before: test", "after: val", "after: test"],
              rows), "",
        wrap(f"structure-multi at 640 synapses recovers "
             f"{span(gain[('structure-multi', 0.998)], lambda v: f'{v:.0f}')} points but stays "
             f"{span(behind, lambda v: f'{v:.0f}')} points below structure and dcls; its synapses "
             f"end on {used(('structure-multi', 0.998))} hidden neurons. The rule also acts on "
             f"sparse `dcls` (its layers rewire every step), which gains "
             f"{span(gain[('dcls', 0.95)], lambda v: f'{v:.0f}')} points, its synapses ending on "
             f"{used(('dcls', 0.95))} hidden neurons. So at 640 synapses `dcls` "
             + (f"still leads `structure`, by {' and '.join(f'{v:.1f}' for v in lead)} points."
                if all(v > 0 for v in lead) else
                f"and `structure` differ by {' and '.join(pts(v) for v in lead)} points.")),
    ])


# ----------------------------------------------------------------------------- FSDD before/after

FSDD_ROWS = (("before", "before"), ("after, without `drop_disconnected`", "after"),
             ("after, `rewire_interval = 1`", "after, rewire_interval=1"),
             ("after, `drop_disconnected = true` (new default)", "after, drop_disconnected"))


def fsdd_table(d: dict) -> str:
    rows = []
    for label, key in FSDD_ROWS:
        for s, r in sorted(runs_by_seed(d, key).items()):
            rows.append([label, str(s), f"{100 * r['val_accuracy']:.2f} %",
                         f"{100 * r['test_accuracy']:.2f} %", f"{r['seconds']:.0f}"])
    return table(["code", "seed", "validation", "test", "training seconds"], rows)


def fsdd_summary(d: dict) -> str:
    before, plain = runs_by_seed(d, "before"), runs_by_seed(d, "after")
    r1 = runs_by_seed(d, "after, rewire_interval=1")
    drop = runs_by_seed(d, "after, drop_disconnected")
    seeds = sorted(before)

    def m(rs: dict, key: str) -> float:
        return mean([rs[s][key] for s in seeds])
    d_plain = 100 * mean([m(plain, k) - m(before, k) for k in ("val_accuracy", "test_accuracy")])
    same_r1 = r1[0]["test_accuracy"] == plain[0]["test_accuracy"]
    per_seed = ", and ".join(
        f"seed {s}{' scores' if s == seeds[0] else ''} {_p(drop[s]['test_accuracy'])}"
        f"{' test' if s == seeds[0] else ''} against {_p(before[s]['test_accuracy'])}"
        + (f" (validation {_p(drop[s]['val_accuracy'])} against "
           f"{_p(before[s]['val_accuracy'])})" if s == seeds[0] else "") for s in seeds)
    any_worse = any(drop[s]["test_accuracy"] < before[s]["test_accuracy"] for s in seeds)
    at_least = all(m(drop, k) >= m(before, k) for k in ("val_accuracy", "test_accuracy"))
    return "\n".join([
        wrap(f"Without `drop_disconnected`, the issue 11 defaults scored about {abs(d_plain):.0f} "
             f"point{'s' if round(abs(d_plain)) != 1 else ''} "
             f"{'lower' if d_plain < 0 else 'higher'} over the two seeds (validation "
             f"{_p(m(plain, 'val_accuracy'))} against {_p(m(before, 'val_accuracy'))}, test "
             f"{_p(m(plain, 'test_accuracy'))} against {_p(m(before, 'test_accuracy'))}). "
             "`rewire_interval = 1` (the reference's regrowth by gradient after every step) gave "
             f"{'the same' if same_r1 else 'a different'} seed-0 test accuracy as the default "
             "interval of 10" + (", so the interval was not the cause." if same_r1 else ".")), "",
        "With `drop_disconnected` (the current defaults), the mean over the two seeds is:",
        bullet(f"validation {_p(m(drop, 'val_accuracy'))} against "
               f"{_p(m(before, 'val_accuracy'))} before issue 11;"),
        bullet(f"test {_p(m(drop, 'test_accuracy'))} against {_p(m(before, 'test_accuracy'))}."),
        "",
        wrap("So the default command is **"
             f"{'at least as accurate as' if at_least else 'less accurate than'} before on the "
             "two-seed means**. "
             f"{'Per seed it is not' if any_worse else 'It is on every seed too'}: {per_seed}. "
             "With 300 test "
             "samples one sample is 0.33 points; two seeds cannot separate differences of this "
             "size from seed noise."),
    ])


# ----------------------------------------------------------------------------- registry

# issue 27 item 3: the sweep's dcls points rerun on the truncated path, beside the committed ones
RERUN_SPARSITIES = (0.9, 0.95)
RERUN_SEEDS = (0, 1, 2)
RERUN_OLD = tuple(f"{R}sweep/dcls_s{s}_seed{k}.json" for s in RERUN_SPARSITIES
                  for k in RERUN_SEEDS)
RERUN_NEW = tuple(f"{R}sweep_dcls_truncated/dcls_s{s}_seed{k}.json" for s in RERUN_SPARSITIES
                  for k in RERUN_SEEDS)


RERUN_KERNEL = tuple(f"{R}sweep_dcls_kernel/dcls_s{s}_seed{k}.json" for s in RERUN_SPARSITIES
                     for k in RERUN_SEEDS)


RERUN_SPEED = tuple(f"{R}sweep_dcls_speed/dcls_s{s}_seed{k}.json" for s in RERUN_SPARSITIES
                    for k in RERUN_SEEDS)


def _rerun_table(old: tuple[dict, ...], new: tuple[dict, ...]) -> tuple[str, list[str]]:
    """The paired table of two sets of the rerun points (by sparsity, then seed) and, per
    sparsity, whether the float test accuracy difference is within noise."""
    rows, verdicts = [], []
    for i, sp in enumerate(RERUN_SPARSITIES):
        pairs = list(zip(old[i * 3:i * 3 + 3], new[i * 3:i * 3 + 3]))
        cells = [g(sp)]
        for key in ("test_accuracy", "emulator_accuracy"):
            d = [100 * (b[key] - a[key]) for a, b in pairs]
            m, lo, hi = t_interval(d)
            cells += [f"{span([a[key] for a, _ in pairs], pct)} -> "
                      f"{span([b[key] for _, b in pairs], pct)}",
                      f"{m:+.1f} [{lo:+.1f}, {hi:+.1f}]"]
        t_old = sum(a["train_seconds"] for a, _ in pairs) / 3
        t_new = sum(b["train_seconds"] for _, b in pairs) / 3
        cells.append(f"{t_old:.0f} -> {t_new:.0f} s")
        rows.append(cells)
        d_float = [100 * (b["test_accuracy"] - a["test_accuracy"]) for a, b in pairs]
        _, lo, hi = t_interval(d_float)
        verdicts.append(f"{g(sp)}: " + ("within noise (the interval holds 0)" if lo <= 0 <= hi
                                        else "a difference outside noise"))
    head = ["sparsity", "float test accuracy (3 seeds)", "paired difference, points [95% t]",
            "emulator test accuracy", "paired difference, points [95% t]",
            "training time (mean)"]
    return table(head, rows), verdicts


def dcls_rerun(*points: dict) -> str:
    """The truncated path's points against the committed (earlier-path) ones, paired by seed."""
    n = len(RERUN_OLD)
    old, new = points[:n], points[n:]
    tab, verdicts = _rerun_table(old, new)
    return (wrap("The sweep's dcls points at 0.9 and 0.95 (`experiments/fsdd.toml`, 40 "
                 "epochs, 3 seeds, 300 test recordings) rerun on this path with `python -m "
                 "experiments.sweep run --groups dcls --sparsities 0.9 0.95 --results "
                 "docs/results/sweep_dcls_truncated --runs runs/sweep_truncated`, against the "
                 "committed points of the earlier path (docs/results/sweep), paired by seed. "
                 "Training times are each run's own, on a shared 2-core machine:")
            + "\n\n" + tab + "\n\n"
            + bullet("Float test accuracy, truncated against earlier path: "
                     + "; ".join(verdicts) + ".")
            + "\n" + bullet(_outside_bound(new)))


def dcls_rerun_kernel(*points: dict) -> str:
    """The same points trained with the compiled BatchNorm + LIF kernel against the truncated
    path's reruns on the torch ops, paired by seed."""
    n = len(RERUN_NEW)
    old, new = points[:n], points[n:]
    tab, verdicts = _rerun_table(old, new)
    kern = sorted({str(p.get("lif_kernel")) for p in new})
    return (wrap("The same six points trained again with the compiled BatchNorm + LIF kernel "
                 f"(`lif_kernel` = {' and '.join(kern)} in their records), `python -m "
                 "experiments.sweep run --groups dcls --sparsities 0.9 0.95 --results "
                 "docs/results/sweep_dcls_kernel --runs runs/sweep_dcls_kernel`, against the "
                 "reruns above (torch ops), paired by seed. The kernel changes training by float "
                 "rounding, which 40 epochs of a chaotic optimisation carry into different "
                 "networks. Training times are each run's own, with other jobs on the shared "
                 "2-core machine (the bench above measures speed):")
            + "\n\n" + tab + "\n\n"
            + bullet("Float test accuracy, kernel against torch ops: " + "; ".join(verdicts)
                     + ".")
            + "\n" + bullet(_outside_bound(new)))


def dcls_rerun_speed(*points: dict) -> str:
    """The same points trained on the path as the speed work left it (the compiled index, the
    recomputing BatchNorm + LIF backward, the readout's candidate gradient by output) against
    the committed points, paired by seed."""
    n = len(RERUN_OLD)
    old, new, kern = points[:n], points[n:2 * n], points[2 * n:]
    tab, verdicts = _rerun_table(old, new)
    same = sum(a["checkpoint_sha256"] == b["checkpoint_sha256"] for a, b in zip(kern, new))
    speed = [a["train_seconds"] / b["train_seconds"] for a, b in zip(kern, new)]
    return (wrap("The same six points trained again on the path as measured in the speed "
                 "table above (the compiled sparse index and LIF kernels, which give the same "
                 "floats as the torch ops they replace, and the readout's RigL candidate "
                 "gradient computed by output, which sums in another order), `python -m "
                 "experiments.sweep run --groups dcls --sparsities 0.9 0.95 --results "
                 "docs/results/sweep_dcls_speed --runs runs/sweep_dcls_speed`, against the "
                 "committed points (docs/results/sweep), paired by seed. Training times are "
                 "each run's own, with other jobs on the shared 2-core machine:")
            + "\n\n" + tab + "\n\n"
            + bullet("Float test accuracy, this path against the committed points: "
                     + "; ".join(verdicts) + ".")
            + "\n" + bullet(f"{same} of the {n} trained checkpoints are byte for byte those of "
                            "the kernel reruns above (`checkpoint_sha256`)"
                            + (": the candidate gradient's other summation order changed no "
                               "regrowth decision in these runs, so the networks, and their "
                               "accuracies, are the same. " if same == n else ". ")
                            + f"Their training took {span(speed, lambda v: f'{v:.1f}')}x less "
                            "time than the kernel reruns' (each run's own time on the shared "
                            "machine).")
            + "\n" + bullet(_outside_bound(new)))


def _outside_bound(points: tuple[dict, ...]) -> str:
    """Which reruns stayed above the export's fidelity bound (issue 26), if any."""
    out = [f"{p['name']} ({p['fixed_point_loss_val']:.2f} points on validation)"
           for p in points if not p.get("within_max_loss_bound", True)]
    bound = g(points[0]["max_loss_bound"])
    if not out:
        return (f"Every rerun was exported within the fidelity bound of {bound} points "
                "(export.fidelity), so their emulator accuracies are those of bounded exports.")
    return (f"The reruns' emulator accuracies are those of exports held to the fidelity bound "
            f"of {bound} points (export.fidelity); above it after every remedy, recorded with "
            f"the best network found: " + ", ".join(out) + ".")


# issue 24 item 6: recurrent against feed-forward at equal total synapse counts, paired by seed
REC_METHODS = ("dcls", "structure")
REC_SPARSITIES = (0.6, 0.9)
REC_SEEDS = (0, 1, 2)
REC_POINTS = tuple(f"{R}sweep_recurrent/{m}{suffix}_s{sp}_seed{k}.json"
                   for sp in REC_SPARSITIES for m in REC_METHODS
                   for suffix in ("", "-recurrent") for k in REC_SEEDS)


REC_LAVA = R + "sweep_recurrent_lava.json"


def recurrent_vs_ff(*files: dict) -> str:
    """Each method's recurrent twin against its feed-forward group, paired by seed; Lava's
    accuracy per point from experiments.lava_points (the last file)."""
    *points, lava_file = files
    lava = lava_file["points"]
    rows, verdicts = [], []
    n = len(REC_SEEDS)
    groups = iter(points[i:i + n] for i in range(0, len(points), n))
    for sp in REC_SPARSITIES:
        for method in REC_METHODS:
            ff, rec = next(groups), next(groups)
            cells = [method, f"{ff[0]['synapses']:,} "
                             f"({sum(rec[0].get('recurrent_synapses_per_layer', [])):,} "
                             "recurrent in the twin)"]
            for key in ("test_accuracy", "emulator_accuracy"):
                d = [100 * (b[key] - a[key]) for a, b in zip(ff, rec)]
                m, lo, hi = t_interval(d)
                cells += [f"{span([a[key] for a in ff], pct)} -> "
                          f"{span([b[key] for b in rec], pct)}",
                          f"{m:+.1f} [{lo:+.1f}, {hi:+.1f}]"]
                if key == "test_accuracy":
                    verdicts.append(f"{method} at {ff[0]['synapses']:,} synapses: " + (
                        "no difference resolved" if lo <= 0 <= hi else
                        "recurrence is better" if lo > 0 else "recurrence is worse"))
            lv = [lava[p["name"]] for p in (*ff, *rec)]
            same = sum(round(q["lava_equals_emulator_fraction"] * q["n_test"]) for q in lv)
            cells.append(f"{span([lava[a['name']]['lava_accuracy'] for a in ff], pct)} -> "
                         f"{span([lava[b['name']]['lava_accuracy'] for b in rec], pct)} "
                         f"(= emulator on {same:,} of {sum(q['n_test'] for q in lv):,})")
            e_ff = sum(a["energy_per_sample_joules"] for a in ff) / n
            e_rec = sum(b["energy_per_sample_joules"] for b in rec) / n
            cells.append(f"{si(e_ff, 'J')} -> {si(e_rec, 'J')}")
            rows.append(cells)
    head = ["method", "synapses (both nets)", "float test accuracy",
            "paired difference, points [95% t]", "emulator test accuracy",
            "paired difference, points [95% t]", "Lava test accuracy",
            "loihi2 dynamic energy / sample (mean)"]
    return (wrap("`experiments/fsdd_recurrent.toml` at sparsities "
                 + ", ".join(g(sp) for sp in REC_SPARSITIES) + " (40 -> 64 -> 10, 40 epochs, 3 "
                 "seeds, 300 test recordings; the recurrent twin keeps the feed-forward "
                 "network's total synapse count, `recurrent_equal_synapses`), run with `python "
                 "-m experiments.sweep run --config experiments/fsdd_recurrent.toml --groups "
                 "dcls dcls-recurrent structure structure-recurrent --sparsities "
                 + " ".join(g(sp) for sp in REC_SPARSITIES) + " --results "
                 "docs/results/sweep_recurrent`; Lava (this project's graph, Loihi2SimCfg "
                 "fixed_pt) from `python -m experiments.lava_points --results "
                 "docs/results/sweep_recurrent --runs runs/sweep_recurrent --json "
                 f"{REC_LAVA}`; recurrent against feed-forward, paired by seed:")
            + "\n\n" + table(head, rows) + "\n\n"
            + bullet("Does recurrence pay on FSDD? " + "; ".join(verdicts) + " (95% "
                     "intervals of the float test accuracy difference). The 12,800-synapse "
                     "comparison follows below; the grid's no-delay groups have not run."))


REC_DENSE = R + "sweep_recurrent_dense"
REPO_ROOT = Path(__file__).resolve().parents[1]
REC_DENSE_POINTS = tuple(
    sorted(p.relative_to(REPO_ROOT).as_posix()
           for p in (REPO_ROOT / REC_DENSE).glob("*.json")))


REC_DENSE_LAVA = R + "sweep_recurrent_dense_lava.json"


def recurrent_vs_ff_dense(*files: dict) -> str:
    """The 12,800-synapse comparison (experiments/fsdd_recurrent_dense.toml), over the seeds
    whose feed-forward point and recurrent twin both exist; Lava's accuracy of the recurrent
    twins from experiments.lava_points (the last file)."""
    *points, lava_file = files
    lava = lava_file["points"]
    by = {p["name"]: p for p in points}
    rows, lines, ratios = [], [], []
    kept = 0
    for method in REC_METHODS:
        pairs = [(by[f"{method}_s0_seed{k}"], by[f"{method}-recurrent_s0_seed{k}"])
                 for k in REC_SEEDS if f"{method}_s0_seed{k}" in by
                 and f"{method}-recurrent_s0_seed{k}" in by]
        if not pairs:
            lines.append(f"{method}: no recurrent point has run yet")
            continue
        ff, rec = [a for a, _ in pairs], [b for _, b in pairs]
        kept = sum(rec[0]["synapses_per_layer"])
        cells = [method, f"{ff[0]['synapses']:,} "
                         f"({sum(rec[0].get('recurrent_synapses_per_layer', [])):,} recurrent in "
                         "the twin)", ", ".join(str(a["seed"]) for a in ff)]
        for key in ("test_accuracy", "emulator_accuracy"):
            d = [100 * (b[key] - a[key]) for a, b in pairs]
            cells.append(f"{span([a[key] for a in ff], pct)} -> "
                         f"{span([b[key] for b in rec], pct)}")
            if len(d) > 1:
                m, lo, hi = t_interval(d)
                cells.append(f"{m:+.1f} [{lo:+.1f}, {hi:+.1f}]")
                if key == "test_accuracy":
                    lines.append(f"{method}: " + ("no difference resolved" if lo <= 0 <= hi else
                                                  "recurrence is better" if lo > 0 else
                                                  "recurrence is worse"))
            else:
                cells.append(f"{d[0]:+.1f} (one seed: no interval)")
                if key == "test_accuracy":
                    lines.append(f"{method}: one seed so far, no interval")
        lv = [lava[b["name"]] for b in rec if b["name"] in lava]
        same = sum(round(q["lava_equals_emulator_fraction"] * q["n_test"]) for q in lv)
        cells.append("-" if not lv else
                     f"{span([q['lava_accuracy'] for q in lv], pct)} (= emulator on "
                     f"{same:,} of {sum(q['n_test'] for q in lv):,})")
        e_ff = sum(a["energy_per_sample_joules"] for a in ff) / len(ff)
        e_rec = sum(b["energy_per_sample_joules"] for b in rec) / len(rec)
        ratios.append((method, e_rec / e_ff))
        cells.append(f"{si(e_ff, 'J')} -> {si(e_rec, 'J')}")
        rows.append(cells)
    head = ["method", "synapses (both nets)", "seeds", "float test accuracy",
            "paired difference, points [95% t]", "emulator test accuracy",
            "paired difference, points [95% t]", "Lava test accuracy, recurrent twin",
            "loihi2 dynamic energy / sample (mean)"]
    return (wrap("At 12,800 synapses (`experiments/fsdd_recurrent_dense.toml`: 40 -> 256 -> 10, "
                 "40 epochs; the feed-forward points are docs/results/sweep's dcls and "
                 "structure at sparsity 0, copied unchanged; each recurrent twin keeps 12,800 "
                 "synapses in all), run with `python -m experiments.sweep run --config "
                 "experiments/fsdd_recurrent_dense.toml --results "
                 f"{REC_DENSE}` (resumable); Lava from `python -m experiments.lava_points "
                 f"--results {REC_DENSE} --runs runs/sweep_recurrent_dense --groups "
                 f"dcls-recurrent structure-recurrent --json {REC_DENSE_LAVA}` (the "
                 "feed-forward points' run folders are not kept):")
            + ("\n\n" + table(head, rows) if rows else "") + "\n\n"
            + bullet("Does recurrence pay at 12,800 synapses? " + "; ".join(lines) + " (95% "
                     "intervals of the float test accuracy difference)."
                     + (f" The recurrent twins keep {kept:,} feed-forward synapses (the rest "
                        "are recurrent) and use "
                        + " and ".join(f"{r:.2f}x ({m})" for m, r in ratios)
                        + " the feed-forward networks' energy per sample on loihi2."
                        if kept else "")))


BLOCKS = [
    Block("crossover", ST, (R + "sparse_crossover_b32.json", R + "sparse_crossover_b256.json"),
          crossover),
    Block("no-delay-speed", ST, (R + "train_speed.json",), no_delay_speed),
    Block("deepr-table", ST, (R + "deepr_options.json",), deepr_table),
    Block("lr-table", ST, (R + "structure_multi_lr.json", R + "structure_multi_init.json"),
          lr_table),
    Block("lr-ei", ST, (R + "structure_multi_lr.json", R + "structure_multi_init.json"), lr_ei),
    Block("dcls-speed", ST, (R + "train_speed_dcls.json", R + "reference_speed.json",
                             R + "train_speed_dcls_repeat.json"), dcls_speed),
    Block("lif-kernel-speed", ST, (R + "train_speed_lif_kernel.json",), lif_kernel_speed),
    Block("dcls-rerun", ST, RERUN_OLD + RERUN_NEW, dcls_rerun),
    Block("dcls-rerun-kernel", ST, RERUN_NEW + RERUN_KERNEL, dcls_rerun_kernel),
    Block("dcls-rerun-speed", ST, RERUN_OLD + RERUN_SPEED + RERUN_KERNEL, dcls_rerun_speed),
    Block("recurrent-vs-ff", ST, (*REC_POINTS, REC_LAVA), recurrent_vs_ff),
    Block("recurrent-vs-ff-dense", ST, (*REC_DENSE_POINTS, REC_DENSE_LAVA),
          recurrent_vs_ff_dense),
    Block("profile-table", ST, (R + "profile_step_before.json", R + "profile_step.json"),
          profile_table),
    Block("connectivity-intro", ST, (R + "structure_connectivity.json",), conn_intro),
    Block("connectivity-mechanism", ST, (R + "structure_connectivity.json",), conn_mechanism),
    Block("connectivity-init", ST, (R + "structure_connectivity.json",), conn_init),
    Block("connectivity-after", ST, (R + "structure_connectivity.json",), conn_after),
    Block("connectivity-screen", ST, (R + "structure_connectivity.json",), conn_screen),
    Block("connectivity-40-epochs", ST, (R + "structure_connectivity.json",), conn_epochs),
    Block("fsdd-table", ST, (R + "fsdd_structure_s09.json",), fsdd_table),
    Block("fsdd-summary", ST, (R + "fsdd_structure_s09.json",), fsdd_summary),
]
