"""Accuracy in fixed point against loihi2 dynamic energy per sample, over trained networks.

    python -m experiments.pareto docs/results/showcase_*.json docs/results/sweep \
        --plot docs/pareto.png --json docs/results/pareto.json

Reads point JSONs (files, or folders of ``*.json``) written by ``experiments.showcase`` or
``experiments.sweep`` (keys ``emulator_accuracy`` and ``energy_per_sample_joules``, plus
``synapses``); files without those keys are skipped with a note. Plots each network (x: loihi2
dynamic energy estimate per sample, log scale, uJ; y: fixed-point test accuracy, %), marks the
Pareto front (no other point is both more accurate and cheaper) and draws Xylo Audio 2's
published 6.6 uJ per inference (hw_profiles/xylo-audio2.toml, reference) for scale. The JSON
lists the points and which are on the front.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from trainer.file_io import read_json_file, write_json_atomic


def load_points(paths: list[str | Path]) -> tuple[list[dict], list[str]]:
    """Points from JSON files / folders; (points, skipped file names with the reason)."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(p.glob("*.json"))
        elif p.is_file():
            files.append(p)
        else:
            raise ValueError(f"{p} does not exist")
    points, skipped = [], []
    for f in files:
        rec = read_json_file(f)
        acc = rec.get("emulator_accuracy") if isinstance(rec, dict) else None
        energy = rec.get("energy_per_sample_joules") if isinstance(rec, dict) else None
        if acc is None or energy is None:
            skipped.append(f"{f.name}: no emulator_accuracy / energy_per_sample_joules")
            continue
        points.append({"name": rec.get("name") or f.stem, "file": f.as_posix(),
                       "method": rec.get("method"), "synapses": rec.get("synapses"),
                       "emulator_accuracy": float(acc), "energy_per_sample_joules": float(energy)})
    return points, skipped


def pareto_front(points: list[dict]) -> list[bool]:
    """True where no other point has higher-or-equal accuracy at lower-or-equal energy (and is
    strictly better in one)."""
    out = []
    for p in points:
        dominated = any(q is not p and q["emulator_accuracy"] >= p["emulator_accuracy"]
                        and q["energy_per_sample_joules"] <= p["energy_per_sample_joules"]
                        and (q["emulator_accuracy"] > p["emulator_accuracy"]
                             or q["energy_per_sample_joules"] < p["energy_per_sample_joules"])
                        for q in points)
        out.append(not dominated)
    return out


def plot(points: list[dict], front: list[bool], png: Path, reference_j: float | None) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(7, 4.5))
    methods = sorted({str(p["method"]) for p in points})
    for m in methods:
        sel = [p for p in points if str(p["method"]) == m]
        ax.scatter([p["energy_per_sample_joules"] * 1e6 for p in sel],
                   [100 * p["emulator_accuracy"] for p in sel], label=m, alpha=0.8)
    fr = sorted((p for p, f in zip(points, front) if f),
                key=lambda p: p["energy_per_sample_joules"])
    ax.plot([p["energy_per_sample_joules"] * 1e6 for p in fr],
            [100 * p["emulator_accuracy"] for p in fr], "k--", lw=1, label="Pareto front")
    for p in points:
        ax.annotate(f"{p['name']} ({p['synapses']} syn.)",
                    (p["energy_per_sample_joules"] * 1e6, 100 * p["emulator_accuracy"]),
                    fontsize=7, xytext=(4, -10), textcoords="offset points")
    if reference_j is not None:
        ax.axvline(reference_j * 1e6, color="grey", lw=1, ls=":")
        ax.text(reference_j * 1e6, ax.get_ylim()[0], " Xylo Audio 2, published (all of inference)",
                fontsize=7, rotation=90, va="bottom", color="grey")
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("loihi2 dynamic energy per sample (uJ, estimate; Loihi 1 figures as proxy)")
    ax.set_ylabel("test accuracy in fixed point (%)")
    ax.set_title("Accuracy vs energy of trained networks (FSDD)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = png.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(png)


def build_parser() -> argparse.ArgumentParser:
    from delaysnn.options import add_deprecated, new_parser

    ap = new_parser("python -m experiments.pareto", __doc__)
    ap.add_argument("inputs", nargs="+", help="point JSON files or folders of them")
    plot_file = ap.add_argument("--plot", metavar="FILE.png",
                                help="plot to write; required, no default")
    add_deprecated(ap, "--png", plot_file)
    ap.add_argument("--json", default=None, metavar="FILE.json",
                    help="points and front as JSON (default: not written)")
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    a = ap.parse_args(argv)
    if a.plot is None:
        ap.error("the following arguments are required: --plot")
    try:
        for p in [a.plot] + ([a.json] if a.json else []):
            if not Path(p).parent.is_dir():
                raise ValueError(f"folder {Path(p).parent} does not exist")
        points, skipped = load_points(a.inputs)
        if not points:
            raise ValueError("no point with emulator_accuracy and energy_per_sample_joules found")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from hw_profiles import load_profile
    ref = load_profile("xylo-audio2").reference.get("bos_muir_2024_energy_per_inference")
    front = pareto_front(points)
    plot(points, front, Path(a.plot), None if ref is None else ref.value)
    for s in skipped:
        print(f"skipped {s}")
    for p, f in sorted(zip(points, front), key=lambda t: t[0]["energy_per_sample_joules"]):
        print(f"{'*' if f else ' '} {p['name']}: {100 * p['emulator_accuracy']:.2f}% at "
              f"{p['energy_per_sample_joules'] * 1e6:.2f} uJ, {p['synapses']} synapses")
    if a.json:
        write_json_atomic({"points": [dict(p, pareto=f) for p, f in zip(points, front)],
                           "skipped": skipped}, Path(a.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
