"""Analyse a trained run: receptive fields, delay usage and E/I clustering in (channel, delay).

    python -m trainer.analyze RUN_DIR [--out DIR] [--before CHECKPOINT | --no-before]
                              [--k 8] [--shuffles 200] [--seed 0] [--neurons 16]

Reads `RUN_DIR/checkpoint.pt` (docs/design.md section 2, plain dict; no trainer class) and, for
the "before rewiring" comparison, `--before CHECKPOINT` or else `RUN_DIR/checkpoint_init.pt` if
it exists. Writes into `--out` (default `RUN_DIR/analysis`):

- `analysis.json`: per layer, for the trained checkpoint and (if any) the initial one, the
  same-sign nearest-neighbour fraction, its shuffle mean / std, z, p and the synapse counts
  (see `trainer.analysis.ei_clustering` for the exact definition), plus connections per delay;
- `receptive_fields_<layer>.png` (and `..._before.png`, same neurons): signed receptive fields
  in (input channel, delay) of the `--neurons` neurons with the largest total |weight|
  ("most active" is this weight proxy: no data is run);
- `delay_histograms.png`, `connections_per_delay.png`, `ei_clustering.png`.

All files are written atomically (temp file + os.replace); analysis.json is written last.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from trainer.analysis import figures
from trainer.analysis.delay_counts import connections_per_delay
from trainer.analysis.ei_clustering import (
    DEFAULT_K,
    DEFAULT_SEED,
    DEFAULT_SHUFFLES,
    sign_clustering,
)
from trainer.analysis.receptive_fields import most_active_neurons, receptive_fields
from trainer.checkpoint import (
    CHECKPOINT,
    INIT_CHECKPOINT,
    Checkpoint,
    CheckpointError,
    load_checkpoint,
)
from trainer.file_io import write_json_atomic

CHECKPOINT_NAME, INIT_CHECKPOINT_NAME = CHECKPOINT, INIT_CHECKPOINT
DEFAULT_NEURONS = 16
ANALYSIS_FORMAT = "delaysnn-analysis"
STATISTIC_DEFINITION = (
    "Per layer, sites = each postsynaptic neuron's synapses merged per (input channel, delay), "
    "weight-zero sites excluded. Neighbours of a site = all other sites of the same neuron within "
    "the Euclidean distance (1 channel, 1 step units) of its k-th nearest other site (ties "
    "included). observed_fraction = fraction of directed (site, neighbour) pairs with equal signs. "
    "Null: signs permuted within each neuron, n_shuffles times (numpy default_rng(seed)); "
    "z = (observed - shuffle_mean) / shuffle_std (ddof 1).")


def _file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _kernel_size(after: Checkpoint, before: Checkpoint | None) -> tuple[int, str]:
    """The K used for both checkpoints; a mismatch between two configs is an error."""
    if before is None:
        return after.kernel_size, after.kernel_size_source
    from_config = [v for v in (after, before) if v.kernel_size_source.startswith("config")]
    if len(from_config) == 2 and after.kernel_size != before.kernel_size:
        raise CheckpointError(
            f"kernel sizes differ: {Path(after.path)} has K={after.kernel_size} "
            f"({after.kernel_size_source}), {Path(before.path)} has K={before.kernel_size} "
            f"({before.kernel_size_source}); pass the initial checkpoint of the same run")
    if from_config:
        chosen = from_config[0]
        other = before if chosen is after else after
        top = max((int(l.delay.max()) for l in other.layers if l.delay.size), default=0)
        if top >= chosen.kernel_size:
            raise CheckpointError(f"{Path(other.path)} has delay {top} steps, outside 0.."
                                  f"{chosen.kernel_size - 1} ({chosen.kernel_size_source} of "
                                  f"{Path(chosen.path)})")
        return chosen.kernel_size, f"{chosen.kernel_size_source} of {Path(chosen.path).name}"
    return max(after.kernel_size, before.kernel_size), "max delay + 1 over both checkpoints"


def _check_same_layers(after: Checkpoint, before: Checkpoint) -> None:
    a = [(l.name, l.n_in, l.n_out) for l in after.layers]
    b = [(l.name, l.n_in, l.n_out) for l in before.layers]
    if a != b:
        raise CheckpointError(f"the before checkpoint {Path(before.path)} has layers (name, n_in, "
                              f"n_out) {b}, the trained one {Path(after.path)} has {a}; they must "
                              "come from the same network")


def before_label(epoch: int | None) -> str:
    """How figures and the report name the comparison checkpoint: "initial" for epoch 0 (the
    trainer's checkpoint_init.pt: before any training, and before rewiring where a run
    rewires), else "before (epoch E)"."""
    return "initial" if epoch == 0 else f"before (epoch {epoch})"


def resolve_before(run_dir: Path, before: str | Path | None, auto_before: bool) -> Path | None:
    """The before-rewiring checkpoint: `before` if given, else RUN_DIR/checkpoint_init.pt if
    `auto_before` and it exists, else None."""
    if before is not None:
        return Path(before)
    if auto_before and (Path(run_dir) / INIT_CHECKPOINT_NAME).is_file():
        return Path(run_dir) / INIT_CHECKPOINT_NAME
    return None


def analyze(run_dir: str | Path, out: str | Path | None = None, *,
            before: str | Path | None = None, auto_before: bool = True, k: int = DEFAULT_K,
            n_shuffles: int = DEFAULT_SHUFFLES, seed: int = DEFAULT_SEED,
            n_neurons: int = DEFAULT_NEURONS, progress: bool = False) -> dict[str, Any]:
    """Analyse RUN_DIR/checkpoint.pt (and a before checkpoint); write figures and analysis.json.

    run_dir: folder holding checkpoint.pt. out: output folder (default RUN_DIR/analysis).
    before: initial checkpoint to compare against (default RUN_DIR/checkpoint_init.pt when it
    exists and auto_before). k: neighbours per synapse. n_shuffles, seed: the sign-shuffle null.
    n_neurons: receptive fields drawn per layer (largest total |weight| first).
    Returns the dict written to analysis.json. Raises CheckpointError / ValueError on bad input
    before writing anything.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"run folder not found: {run_dir}")
    if k < 1:
        raise ValueError(f"k (neighbours per synapse) must be >= 1, got {k}")
    if n_shuffles < 2:
        raise ValueError(f"n_shuffles must be >= 2 to estimate a spread, got {n_shuffles}")
    if n_neurons < 1:
        raise ValueError(f"n_neurons (receptive fields per layer) must be >= 1, got {n_neurons}")
    out = Path(out) if out is not None else run_dir / "analysis"
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")
    after_view = load_checkpoint(run_dir / CHECKPOINT_NAME)
    before_path = resolve_before(run_dir, before, auto_before)
    before_view = load_checkpoint(before_path) if before_path is not None else None
    if before_view is not None:
        _check_same_layers(after_view, before_view)
    kernel, kernel_source = _kernel_size(after_view, before_view)

    names = [l.name for l in after_view.layers]
    stems = [_file_stem(n) for n in names]
    if len(set(stems)) != len(stems):
        stems = [f"{i}_{s}" for i, s in enumerate(stems)]

    def stats(view: Checkpoint) -> tuple[list, list]:
        clus = [sign_clustering(l, k=k, n_shuffles=n_shuffles, seed=seed, progress=progress)
                for l in view.layers]
        return clus, [connections_per_delay(l, kernel) for l in view.layers]

    after_clus, after_counts = stats(after_view)
    before_clus, before_counts = stats(before_view) if before_view is not None else (None, None)

    label = before_label(before_view.epoch) if before_view is not None else "before"
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {"receptive_fields": {}, "receptive_fields_before": {}}
    shown: list[list[int]] = []
    for li, layer in enumerate(after_view.layers):
        neurons = most_active_neurons(layer, n_neurons)
        shown.append(neurons.tolist())
        if neurons.size == 0:
            continue  # a layer without any non-zero synapse has nothing to draw
        name = f"receptive_fields_{stems[li]}.png"
        source = "input channel" if li == 0 else f"{after_view.layers[li - 1].name} neuron"
        figures.receptive_field_mosaic(
            receptive_fields(layer, kernel, neurons), neurons,
            f"{layer.name}: receptive fields (trained), top {neurons.size} by total |w|",
            out / name, input_label=source)
        files["receptive_fields"][layer.name] = name
        if before_view is not None:
            name_b = f"receptive_fields_{stems[li]}_before.png"
            figures.receptive_field_mosaic(
                receptive_fields(before_view.layers[li], kernel, neurons), neurons,
                f"{layer.name}: receptive fields ({label}), same neurons", out / name_b,
                input_label=source)
            files["receptive_fields_before"][layer.name] = name_b
    figures.delay_histograms(names, after_counts, before_counts, out / "delay_histograms.png",
                             before_label=label)
    figures.connections_per_delay_figure(names, after_counts, before_counts,
                                         out / "connections_per_delay.png", before_label=label)
    figures.clustering_figure(names, after_clus, before_clus, out / "ei_clustering.png",
                              before_label=label)
    files.update(delay_histograms="delay_histograms.png",
                 connections_per_delay="connections_per_delay.png",
                 ei_clustering="ei_clustering.png")

    layers_json = []
    for li, layer in enumerate(after_view.layers):
        entry: dict[str, Any] = {
            "name": layer.name, "n_in": layer.n_in, "n_out": layer.n_out,
            "trained": {**after_clus[li].to_json(), "n_synapses_listed": int(layer.pre.size),
                        "connections_per_delay": after_counts[li]},
            "before": None, "receptive_field_neurons": shown[li]}
        if before_view is not None:
            bl = before_view.layers[li]
            entry["before"] = {**before_clus[li].to_json(), "n_synapses_listed": int(bl.pre.size),  # type: ignore[index]
                               "connections_per_delay": before_counts[li]}  # type: ignore[index]
        layers_json.append(entry)
    result = {
        "format": ANALYSIS_FORMAT, "version": 1,
        "checkpoint": str(Path(after_view.path).resolve()), "epoch": after_view.epoch,
        "before_checkpoint": str(Path(before_view.path).resolve()) if before_view else None,
        "before_epoch": before_view.epoch if before_view else None,
        "kernel_size": kernel, "kernel_size_source": kernel_source,
        "statistic": {"name": "same-sign nearest-neighbour fraction in (channel, delay)",
                      "definition": STATISTIC_DEFINITION, "k": k, "n_shuffles": n_shuffles,
                      "seed": seed},
        "neuron_ranking": "total |weight| per neuron (weight proxy for activity; no data is run)",
        "layers": layers_json,
        "files": files,
    }
    write_json_atomic(result, out / "analysis.json", allow_nan=False)
    return result


def _summary(result: dict[str, Any]) -> str:
    def fmt(x: Any, spec: str) -> str:
        return "-" if x is None else format(x, spec)

    rows = [f"{'layer':<10} {'which':<8} {'synapses':>9} {'observed':>9} {'shuffled':>17} {'z':>8}"]
    for layer in result["layers"]:
        for which in ("trained", "before"):
            s = layer[which]
            if s is None:
                continue
            shuffled = f"{fmt(s['shuffle_mean'], '.4f')}+-{fmt(s['shuffle_std'], '.4f')}"
            rows.append(f"{layer['name']:<10} {which:<8} {s['n_synapses']:>9} "
                        f"{fmt(s['observed_fraction'], '.4f'):>9} {shuffled:>17} "
                        f"{fmt(s['z'], '.2f'):>8}")
    return "\n".join(rows)


def build_parser() -> argparse.ArgumentParser:
    from delaysnn.options import new_parser

    p = new_parser("python -m trainer.analyze", __doc__)
    p.add_argument("run_dir", help="run folder holding checkpoint.pt")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default RUN_DIR/analysis)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--before", default=None,
                   help=f"initial checkpoint to compare (default RUN_DIR/{INIT_CHECKPOINT_NAME} "
                        "if it exists)")
    g.add_argument("--no-before", action="store_true",
                   help=f"do not look for RUN_DIR/{INIT_CHECKPOINT_NAME}")
    p.add_argument("--k", type=int, default=DEFAULT_K, help="neighbours per synapse")
    p.add_argument("--shuffles", type=int, default=DEFAULT_SHUFFLES,
                   help="sign shuffles for the null distribution")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the shuffles")
    p.add_argument("--neurons", type=int, default=DEFAULT_NEURONS,
                   help="receptive fields drawn per layer (largest total |weight|)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = analyze(args.run_dir, args.out, before=args.before,
                         auto_before=not args.no_before, k=args.k, n_shuffles=args.shuffles,
                         seed=args.seed, n_neurons=args.neurons, progress=True)
    except (CheckpointError, ValueError) as exc:  # bad input: one line, no usage text
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path(args.run_dir) / "analysis"
    files = result["files"]
    n_png = (len(files["receptive_fields"]) + len(files["receptive_fields_before"]) + 3)
    print(_summary(result))
    print(f"wrote {out / 'analysis.json'} and {n_png} figures in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
