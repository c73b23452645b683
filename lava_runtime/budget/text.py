"""Text tables and a PNG plot of hardware budgets (lava_runtime.budget.Budget)."""
from __future__ import annotations

from pathlib import Path

from lava_runtime.budget.estimate import Budget
from lava_runtime.budget.units import format_count, format_si


def _num(x, unit="") -> str:
    if x is None:
        return "-"
    if isinstance(x, int) or float(x).is_integer() and abs(x) < 1e7:
        return f"{int(x)}{unit}"
    return f"{x:.3g}{unit}"


PLOT_DPI = 120


def format_energy(joules: float | None, digits: int = 3) -> str:
    """An energy in joules with an engineering prefix and `digits` significant digits:
    0.0115 -> "11.5 mJ", 1.41e-05 -> "14.1 uJ" (ASCII "u" for micro); None -> "-". Every
    energy the budget prints goes through it (tables, summary, plot, report)."""
    return format_si(joules, "J", digits)


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w)  # noqa: E731
                               for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def format_layers(b: Budget) -> str:
    """Per-layer and total counts, per sample (averages, in one format: units.format_count);
    with recurrent layers, also their recurrent synapses, largest recurrent delay and recurrent
    synops (part of synops)."""
    cnt = format_count
    rec = any(l.recurrent_synapses for l in b.layers)
    rows = []
    for l in b.layers:
        msgs = (None if l.messages_local is None
                else f"{cnt(l.messages_local)}/{cnt(l.messages_cross_core)}/"
                     f"{cnt(l.messages_input)}")
        rows.append([l.name, f"{l.n_in}->{l.n_out}", l.n_synapses, l.max_delay,
                     cnt(l.input_events), cnt(l.synops), cnt(l.dense_synops),
                     cnt(l.neuron_updates), cnt(l.spikes_out), msgs or "-"]
                    + ([l.recurrent_synapses, l.recurrent_max_delay, cnt(l.recurrent_synops)]
                       if rec else []))
    rows.append(["total", "", sum(l.n_synapses for l in b.layers), "",
                 cnt(sum(l.input_events for l in b.layers)), cnt(b.synops_per_sample),
                 cnt(b.dense_synops_per_sample), cnt(b.neuron_updates_per_sample),
                 cnt(b.spikes_per_sample), "" if b.messages_per_sample is None else
                 "/".join(cnt(b.messages_per_sample[k]) for k in ("local", "cross_core",
                                                                   "input"))]
                + ([sum(l.recurrent_synapses for l in b.layers), "",
                    cnt(b.recurrent_synops_per_sample)] if rec else []))
    head = ["layer", "shape", "synapses", "max delay", "events in", "synops", "dense synops",
            "neuron upd", "spikes out", "msgs loc/cross/in"]
    if rec:
        head += ["rec synapses", "rec max delay", "rec synops"]
    return (f"per sample, {b.n_samples} samples, {b.steps} steps each\n"
            + _table(head, [[str(c) for c in r] for r in rows]))


def format_summary(b: Budget) -> str:
    """Memory and cores (this project's model), dynamic energy breakdown, static energy, time
    per step, refusals, assumptions."""
    out = [f"profile {b.profile} v{b.profile_version} ({b.kind})"]
    m = b.memory_bytes
    out.append(f"memory (model estimate): {m['total']} bytes (synapses {m['synapses']}, neuron "
               f"state {m['neuron_state']}, delay accumulators/history "
               f"{m['delay_accumulators']})")
    out.append(f"  memory model: {b.memory_model}")
    if b.refused:
        out.append(f"DOES NOT FIT {b.profile}:")
        fixes = b.refused_fixes or [""] * len(b.refused)
        for r, fix in zip(b.refused, fixes):
            out.append(f"  - {r}")
            if fix:
                out.append(f"    fix: {fix}")
        if b.refused_next:
            out.append(b.refused_next)
        return "\n".join(out)
    if b.cores is not None:
        chips = "" if b.chips is None else f" on {b.chips} chip(s)"
        assert b.core_usage is not None  # set with cores
        out.append(f"cores (model estimate): {b.cores}{chips}; neurons per core max "
                   f"{max(b.core_usage['neurons'])}, memory per core max "
                   f"{max(b.core_usage['memory_bytes'])} bytes, fan-in max "
                   f"{max(b.core_usage['fan_in'])}")
    e = b.energy_per_sample_joules
    assert e is not None  # set whenever the budget is not refused
    out.append(f"dynamic energy per sample: {format_energy(e['total'])}")
    for k, v in e["breakdown"].items():
        out.append(f"  {k:<20s} {format_energy(v)}")
    for k, why in e["not_counted"].items():
        out.append(f"  {k:<20s} not counted: {why}")
    if "snn_synops_at_ac" in e:
        out.append(f"  (the SNN's synops at the same process's AC energy: "
                   f"{format_energy(e['snn_synops_at_ac'])})")
    if b.static_energy_per_sample_joules is None:
        out.append(f"static energy per sample: not estimated: {b.static_energy_note}")
    else:
        out.append(f"static energy per sample: {format_energy(b.static_energy_per_sample_joules)} "
                   f"({b.static_energy_note})")
    if b.time_per_step_seconds is not None:
        out.append(f"time per step: {format_si(b.time_per_step_seconds, 's')}")
    out += [f"assumption: {a}" for a in b.assumptions]
    return "\n".join(out)


def format_comparison(budgets: list[Budget]) -> str:
    """One row per profile: the operations it is charged for, memory and cores (this project's
    model), dynamic and static energy, time per step."""
    rows = []
    for b in budgets:
        ops = b.synops_per_sample if b.kind == "neuromorphic" else b.dense_synops_per_sample
        e = b.energy_per_sample_joules
        energy = ("refused: " + str(len(b.refused)) + " reason(s)" if b.refused
                  else format_energy(None if e is None else e["total"]))
        rows.append([b.profile, b.kind, format_count(ops), _num(b.memory_bytes["total"]),
                     _num(b.cores), energy, format_energy(b.static_energy_per_sample_joules),
                     format_si(b.time_per_step_seconds, "s")])
    head = ["profile", "kind", "ops charged", "memory B (model)", "cores (model)",
            "dynamic energy/sample", "static energy/sample", "time/step"]
    return (_table(head, rows) + "\nops charged per sample (k = 1e3, M = 1e6): synaptic "
            "operations of the recorded spikes on neuromorphic profiles, every synapse every "
            "step on dense and ann ones; dynamic energy: activity-dependent terms only; static "
            "energy (static power x steps x time/step) only where the profile gives a static "
            "power; memory and cores: this project's model (deployed.cores), not a "
            "vendor compiler's mapping")


def energy_figure(budgets: list[Budget]):
    """A matplotlib Figure (Agg canvas, no pyplot state): stacked energy breakdown per profile
    on a log scale. Each bar carries its total (format_energy; ">=" when terms are not
    counted); a profile that refuses the network gets a hatched column marked "does not fit"
    and a red tick label. At most 1056 px wide at PLOT_DPI, so the report shows it unscaled."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fits = [b for b in budgets if b.energy_per_sample_joules and b.energy_total is not None]
    fig = Figure(figsize=(min(8.8, 0.95 * max(3, len(budgets)) + 2.4), 4.2), dpi=PLOT_DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    keys = sorted({k for b in fits for k in b.energy_per_sample_joules["breakdown"]})  # type: ignore[index]
    x = list(range(len(budgets)))
    bottom = [0.0] * len(budgets)
    for key in keys:
        vals = [(b.energy_per_sample_joules["breakdown"].get(key, 0.0) if b in fits else 0.0)  # type: ignore[index]
                for b in budgets]
        ax.bar(x, vals, bottom=bottom, label=key.replace("_", " "), width=0.7)
        bottom = [v + y for v, y in zip(bottom, vals)]
    for i, b in enumerate(budgets):
        if b in fits:
            lower = ">= " if b.energy_per_sample_joules["not_counted"] else ""  # type: ignore[index]
            ax.annotate(f"{lower}{format_energy(b.energy_total)}", (i, b.energy_total),  # type: ignore[arg-type]
                        xytext=(0, 3), textcoords="offset points", ha="center", va="bottom",
                        fontsize=8, fontweight="bold")
            continue
        ax.axvspan(i - 0.35, i + 0.35, facecolor="#f4f4f4", edgecolor="#b0b0b0", hatch="//",
                   linewidth=0.8)
        ax.text(i, 0.5, "does not fit" if b.refused else "no energy\nfigures",
                transform=ax.get_xaxis_transform(), ha="center", va="center", fontsize=8,
                color="#b00000" if b.refused else "#444444", fontweight="bold",
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 2})
    ax.set_xticks(x, [b.profile for b in budgets], fontsize=8)
    for tick, b in zip(ax.get_xticklabels(), budgets):
        if b.refused:
            tick.set_color("#b00000")
    if fits:
        ax.set_yscale("log")  # totals are exact; segment heights on a log axis are not
        low = min(b.energy_total for b in fits)  # type: ignore[type-var]
        high = max(b.energy_total for b in fits)  # type: ignore[type-var]
        ax.set_ylim(0.1 * low, 10 * high)  # type: ignore[operator]
    ax.set_ylabel("dynamic energy per sample (J, log)")
    ax.set_title("Estimated dynamic energy per inference by profile", fontsize=10)
    if keys:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False,
                  title="energy term", title_fontsize=7)
    fig.tight_layout()
    return fig


def plot_budgets(budgets: list[Budget], path: str | Path) -> None:
    """energy_figure(budgets) written atomically as PNG."""
    from trainer.file_io import save_figure_atomic

    save_figure_atomic(energy_figure(budgets), path, PLOT_DPI)


def budget_json(budgets: list[Budget]) -> dict:
    """One profile: its Budget as a dict. Several: {"profiles": [...]} plus the counts that do
    not depend on the profile at top level."""
    if len(budgets) == 1:
        return budgets[0].to_json()
    first = budgets[0]
    return {"synops_per_sample": first.synops_per_sample,
            "recurrent_synops_per_sample": first.recurrent_synops_per_sample,
            "dense_synops_per_sample": first.dense_synops_per_sample,
            "neuron_updates_per_sample": first.neuron_updates_per_sample,
            "n_samples": first.n_samples, "steps": first.steps,
            "profiles": [b.to_json() for b in budgets]}
