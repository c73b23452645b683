"""Fixed-point fidelity across the sweep, before and after the export's bound (issue 26): the
gap float minus fixed point (accuracy points) of every point, on validation and on test.

Read from the point files alone; made by ``python -m experiments.sweep report ...
--bound-results docs/results/sweep_bound [--agreement docs/results/fidelity_agreement.json]`` as
a section of docs/results.md and its plot ``sweep_fidelity_gap.png`` (with --agreement, also what
the changed answers of experiments.fidelity_agreement say about the test target):

- committed: the points of ``--results`` (exported without a bound; test gap only, their
  validation gap was not recorded);
- before / after: the points of ``--bound-results`` (retrained from the same grid and seeds by
  ``experiments.sweep run``, each exported by export.fidelity with deploy's bound): before is the
  same checkpoint as exported without the bound (``fixed_point_loss_val_as_exported``,
  ``emulator_accuracy_as_exported``), after is what the sweep deploys.

gap = 100 * (float accuracy - fixed-point accuracy); float: the trained model with integer
delays (the trainer's test accuracy; on validation export.float_reference), fixed point:
deployed.emulator (bit-exact to the Lava graph).
"""
from __future__ import annotations

import statistics

from experiments.figures_common import png_bytes

#: thresholds (points) counted in the distribution table
THRESHOLDS = (0.5, 1.0, 2.0)
#: the issue's targets: every point within the bound on validation, none > 1 point on test
TEST_TARGET = 1.0
#: points: accuracies are stored as float32 fractions, so a gap of exactly 3 recordings in 300
#: reads 1.0000002; comparisons allow this much (one recording is 0.33 points)
TOL = 1e-4


def remedy(fidelity: dict) -> str:
    """The bound's chosen step, with the per-neuron exponents it kept from step 1 named."""
    step = fidelity["step"]
    if fidelity.get("neuron_exponents") and "neuron exponents" not in step:
        return "neuron exponents + " + step
    return step


def point_gaps(rec: dict) -> dict:
    """One bounded point's gaps (points): val/test before and after, with what the bound did."""
    fl = 100 * rec["test_accuracy"]
    before_test = rec.get("emulator_accuracy_as_exported")
    return {"name": rec["name"], "group": rec["group"], "sparsity": rec["sparsity"],
            "seed": rec["seed"], "float_test": fl,
            "val_before": rec.get("fixed_point_loss_val_as_exported"),
            "val_after": rec["fixed_point_loss_val"],
            "test_before": None if before_test is None else fl - 100 * before_test,
            "test_after": fl - 100 * rec["emulator_accuracy"],
            "step": remedy(rec["export"]["fidelity"]), "qat_epochs": rec["qat_epochs"],
            "within": rec["within_max_loss_bound"], "bound": rec["max_loss_bound"],
            "zeroed": sum(rec["synapses_zeroed"])}


def distribution(values: list[float]) -> dict | None:
    """{n, mean, median, max, above: {threshold: count}} of gaps (points); None when empty."""
    v = [x for x in values if x is not None]
    if not v:
        return None
    return {"n": len(v), "mean": statistics.fmean(v), "median": statistics.median(v),
            "max": max(v), "above": {t: sum(x > t + TOL for x in v) for t in THRESHOLDS}}


def summarize(committed: list[dict], bounded: list[dict]) -> dict:
    """Distributions of the committed points' test gap and the bounded points' gaps."""
    rows = [point_gaps(r) for r in sorted(bounded, key=lambda r: r["name"])]
    old_test = [100 * (r["test_accuracy"] - r["emulator_accuracy"]) for r in committed]
    old = {r["name"]: 100 * (r["test_accuracy"] - r["emulator_accuracy"]) for r in committed}
    return {"rows": rows, "committed_test": distribution(old_test),
            "committed_by_name": old,
            "val_before": distribution([r["val_before"] for r in rows]),
            "val_after": distribution([r["val_after"] for r in rows]),
            "test_before": distribution([r["test_before"] for r in rows]),
            "test_after": distribution([r["test_after"] for r in rows])}


def _dist_row(label: str, d: dict | None) -> str:
    if d is None:
        return f"| {label} | 0 | | | | | | |"
    return (f"| {label} | {d['n']} | {d['mean']:+.2f} | {d['median']:+.2f} | {d['max']:+.2f} | "
            + " | ".join(str(d["above"][t]) for t in THRESHOLDS) + " |")


def _f(x, fmt="+.2f"):
    return "" if x is None else format(x, fmt)


def markdown(s: dict, results: str, bound_results: str, rel: str, plot: str, n_plan: int,
             agreement: tuple[str, dict] | None = None) -> list[str]:
    """The docs section (lines); ``agreement``: (path, JSON of experiments.fidelity_agreement)
    adds what the changed answers say about the test target (:func:`agreement_lines`)."""
    rows = s["rows"]
    bound = sorted({r["bound"] for r in rows}) or ["?"]
    out = ["## Fixed-point fidelity: before and after the export's bound", "",
           "Gap = float minus fixed-point accuracy, in points (float: the trained model with "
           "integer delays; fixed point: the exported network in the bit-exact emulator). The "
           f"committed points of `{results}` were exported without a bound. The points of "
           f"`{bound_results}` are the same grid points retrained (same seeds, same grid) and "
           "exported with the bound that `lava_runtime.pipeline.deploy` applies "
           f"(export.fidelity, {', '.join(map(str, bound))} points on validation): *before* is "
           "that checkpoint exported without the bound, *after* the network deployed. The "
           "bound reads the validation split only; the test gap is measured afterwards. "
           "Worst committed points are re-run first.", "",
           f"- Re-exported: {len(rows)} of {n_plan} grid points. "
           + ("Every planned point is re-exported." if len(rows) >= n_plan else
              "The rest are pending: `python -m experiments.sweep run --config "
              f"experiments/fsdd.toml --results {bound_results} --runs runs/sweep_bound "
              "--lif-kernel torch` resumes them (on the torch ops the structure and no-delay "
              "points retrain bit for bit; dcls points train on the truncated-kernel path)."),
           ""]
    if not rows:
        return out + ["No point has been re-exported yet.", ""]
    after_val_out = [r for r in rows if r["val_after"] > r["bound"] + TOL]
    after_test_out = [r for r in rows if r["test_after"] > TEST_TARGET + TOL]
    out += ["- Validation target (every point within the bound): "
            + ("met on every re-exported point." if not after_val_out else
               f"missed by {len(after_val_out)}: "
               + ", ".join(f"{r['name']} ({r['val_after']:+.2f})" for r in after_val_out) + "."),
            f"- Test target (no point more than {TEST_TARGET:g} point below its float model): "
            + ("met on every re-exported point." if not after_test_out else
               f"missed by {len(after_test_out)}: "
               + ", ".join(f"{r['name']} ({r['test_after']:+.2f})" for r in after_test_out)
               + "."),
            *(agreement_lines(rows, *agreement) if agreement else []), "",
            "| gap (points) | points | mean | median | max | "
            + " | ".join(f"> {t:g}" for t in THRESHOLDS) + " |",
            "|---|---:|---:|---:|---:|" + "---:|" * len(THRESHOLDS),
            _dist_row(f"test, committed (`{results}`, no bound)", s["committed_test"]),
            _dist_row("validation, before the bound", s["val_before"]),
            _dist_row("validation, after the bound", s["val_after"]),
            _dist_row("test, before the bound", s["test_before"]),
            _dist_row("test, after the bound", s["test_after"]), "",
            f"![fidelity gap before and after the bound]({plot})", "",
            "| point | float test % | val before | val after | test before | test after | "
            "test gap committed | remedy | QAT epochs | zeroed |",
            "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for r in rows:
        old = s["committed_by_name"].get(r["name"])
        out.append(f"| [{r['name']}]({rel}/{r['name']}.json) | {r['float_test']:.2f} | "
                   f"{_f(r['val_before'])} | {_f(r['val_after'])} | {_f(r['test_before'])} | "
                   f"{_f(r['test_after'])} | {_f(old)} | {r['step']} | {r['qat_epochs']} | "
                   f"{r['zeroed']} |")
    return out + [""]


def agreement_lines(rows: list[dict], path: str, agree: dict) -> list[str]:
    """Bullets: how often the deployed networks of ``rows`` answer differently from their float
    models on test and validation, how many test gaps over the target the exact sign test
    expects if no network were worse than its float model, and the totals of answers turned
    right -> wrong (b) and wrong -> right (c)."""
    pts = agree.get("points", {})
    have = [(r, pts[r["name"]]) for r in rows if r["name"] in pts
            and abs(pts[r["name"]]["test"]["gap_points"] - r["test_after"]) <= TOL]
    if not have:
        return []
    dis = sorted(a["test"]["disagree"] for _, a in have)
    n = have[0][1]["test"]["n"]
    expect = sum(a["p_test_over_1"] for _, a in have)
    over = [(r, a) for r, a in have if a["test"]["gap_points"] > TEST_TARGET + TOL]
    tot = {sp: (sum(a[sp]["b"] for _, a in have), sum(a[sp]["c"] for _, a in have))
           for sp in ("test", "val")}
    return [
        f"- Changed answers (`{path}`, `python -m experiments.fidelity_agreement`, "
        f"{len(have)} of these points): on the {n} test recordings the deployed network and "
        f"its float model give different classes to a median of {dis[len(dis) // 2]} (at most "
        f"{dis[-1]}). If no deployed network were worse than its float model, each changed "
        "answer between right and wrong would go either way with probability 1/2, and the "
        f"exact sign test expects {expect:.1f} of these {len(have)} points more than "
        f"{TEST_TARGET:g} point below their float model by chance alone; {len(over)} are. The "
        f"validation split ({have[0][1]['val']['n']} recordings) cannot tell those from "
        "faithful ones. Summed over the points, answers went right -> wrong / wrong -> right "
        f"{tot['test'][0]} / {tot['test'][1]} times on test and {tot['val'][0]} / "
        f"{tot['val'][1]} on validation"
        + (": more turn wrong than right, so beside the noise a small systematic loss remains."
           if tot["test"][0] > tot["test"][1] else "."),
        "- Over the test target: " + ", ".join(
            f"{r['name']} ({a['test']['b']} right -> wrong, {a['test']['c']} wrong -> right; "
            f"validation {a['val']['disagree']} changed; p = {a['p_test_over_1']:.2f})"
            for r, a in over) + "." if over else "- Over the test target: none."]


def plot(s: dict) -> bytes:
    """PNG: the gaps of every bounded point before and after, validation and test."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    rows = s["rows"]
    for ax, split in zip(axes, ("val", "test")):
        pairs = [(r[f"{split}_before"], r[f"{split}_after"]) for r in rows
                 if r[f"{split}_before"] is not None]
        for b, a in pairs:
            ax.plot([0, 1], [b, a], color="0.6", lw=0.8, zorder=1)
        ax.scatter([0] * len(pairs), [b for b, _ in pairs], color="tab:red", s=14, zorder=2,
                   label="before the bound")
        ax.scatter([1] * len(pairs), [a for _, a in pairs], color="tab:blue", s=14, zorder=2,
                   label="after the bound")
        limit = rows[0]["bound"] if split == "val" else TEST_TARGET
        ax.axhline(limit, color="k", ls="--", lw=0.8,
                   label=f"target {limit:g}" + (" (the bound)" if split == "val" else ""))
        ax.axhline(0, color="k", lw=0.4)
        ax.set_xticks([0, 1], ["as exported", "with the bound"])
        ax.set_xlim(-0.4, 1.4)
        ax.set_title(f"{'validation' if split == 'val' else 'test'} split "
                     f"({len(pairs)} points)")
    axes[0].set_ylabel("float - fixed point (points)")
    axes[0].legend(loc="upper center", bbox_to_anchor=(1.05, 1.32), ncol=3, fontsize=8,
                   frameon=False)
    fig.tight_layout()
    return png_bytes(fig)
