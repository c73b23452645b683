"""Hardware budget of an exported network on one or every profile: synaptic operations,
memory and cores (this project's model), dynamic and static energy.

    python -m lava_runtime budget NET.h5 [--profile loihi2|all] [--dataset NAME] [--limit N]
    python -m lava_runtime budget NET.h5 --spikes EVENTS.npy     # given input spikes

The data default to the dataset the network was trained on (its data recipe); `--spikes` takes
an (N, T, C) array of input spikes instead (lava_runtime.pipeline.load_spikes).

Thin argparse layer over :func:`run_budget`. Plug into a parent parser with
``add_parser(subparsers)``; ``main(args)`` runs the parsed namespace. Also runnable alone:
``python -m lava_runtime.budget.cli NET.h5 ...``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from hw_profiles import list_profiles, load_profile
from lava_runtime.budget.estimate import Budget, compare
from lava_runtime.budget.text import (
    budget_json,
    format_comparison,
    format_layers,
    format_summary,
    plot_budgets,
)
from lava_runtime.pipeline import (
    check_limit,
    check_net_path,
    check_spikes_options,
    load_features,
    load_spikes,
    network_dataset,
)
from trainer.file_io import write_json_atomic


def _check_out(path, suffix: str, what: str) -> Path | None:
    if path is None:
        return None
    path = Path(path)
    if path.suffix.lower() != suffix:
        raise ValueError(f"{what} {path} must end in {suffix}")
    if not path.parent.is_dir():
        raise ValueError(f"{what} {path}: folder {path.parent} does not exist")
    return path


def run_budget(net_path, profile: str = "loihi2", dataset: str | None = None, data_dir=None,
               split: str | None = None, limit: int | None = None, json_path=None,
               plot_path=None, progress: bool = True, activity_path=None,
               spikes=None) -> list[Budget]:
    """Emulate `net_path` (a deployed.netx_h5 file, or a folder holding net.h5) on the first
    `limit` samples (None = all) of `dataset`/`split`, or of the input spikes in `spikes`
    (EVENTS.npy, (N, T, C); pipeline.load_spikes; not with dataset, data_dir or split), or
    read the activity a run saved (`activity_path`, `python -m lava_runtime run
    --save-activity`), and estimate its budget on `profile` ("all" = every profile in
    hw_profiles). split: None = test. dataset: None = the dataset the network was trained on
    (its data recipe; an error asks for one when the file records none). Prints the tables;
    writes JSON / PNG when paths are given. Every argument is checked before any work."""
    names = list_profiles() if profile == "all" else [profile]
    profiles = [load_profile(n) for n in names]
    check_limit(limit)
    check_spikes_options(spikes, None, dataset, data_dir, split)
    if spikes is not None and activity_path is not None:
        raise ValueError("--spikes and --activity both give the activity to budget: pass one")
    json_path = _check_out(json_path, ".json", "--json")
    plot_path = _check_out(plot_path, ".png", "--plot")
    net_path = check_net_path(net_path)

    from deployed.activity import first
    from deployed.emulator import emulate
    from deployed.netx_h5 import load

    net = load(net_path)
    if activity_path is not None:
        from deployed.activity import Activity

        act = Activity.load(activity_path)
        act = act if limit is None else first(act, limit)
    elif spikes is not None:
        payloads, _ = load_spikes(net, spikes)
        act = emulate(net, payloads[:limit], progress=progress)
    else:
        x, _ = load_features(net, network_dataset(net, dataset, net_path), split or "test",
                             data_dir, limit)
        act = emulate(net, net.input.encode(x), progress=progress)
    budgets = compare(net, act, profiles)

    mapped = [b for b in budgets if b.messages_per_sample is not None]
    print(format_layers((mapped or budgets)[0]))
    print()
    for b in budgets:
        print(format_summary(b))
        print()
    if len(budgets) > 1:
        print(format_comparison(budgets))
    if json_path is not None:
        write_json_atomic(budget_json(budgets), json_path, indent=1)
    if plot_path is not None:
        plot_budgets(budgets, plot_path)
    return budgets


def add_parser(subparsers) -> argparse.ArgumentParser:
    from delaysnn.options import HelpFormatter, description

    p = subparsers.add_parser("budget", help="hardware budget estimate (synops; memory and "
                                             "cores from this project's model; dynamic and "
                                             "static energy)",
                              description=description(__doc__), formatter_class=HelpFormatter)
    add_arguments(p)
    p.set_defaults(func=main)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("net", metavar="NET",
                   help="exported network (.h5, deployed.netx_h5), or a folder holding net.h5")
    p.add_argument("--profile", default="loihi2",
                   help=f"hardware profile: {', '.join(list_profiles())}, a .toml path, or all")
    p.add_argument("--dataset", default=None,
                   help="dataset name (trainer.data; default: the one the network was trained "
                        "on, from its data recipe)")
    p.add_argument("--data-dir", default=None,
                   help="dataset folder (default: the recipe's folder for the training "
                        "dataset, else the data layer's default)")
    p.add_argument("--split", default=None, choices=["train", "val", "test"],
                   help="dataset split (default: test; not with --spikes)")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="use the first N samples (default: the whole split)")
    p.add_argument("--json", default=None, metavar="FILE.json",
                   help="write the budget as JSON to this file (default: not written)")
    p.add_argument("--plot", default=None, metavar="FILE.png",
                   help="write an energy plot (PNG) to this file (default: not drawn)")
    p.add_argument("--activity", default=None, metavar="FILE.npz",
                   help="budget the spikes a run saved (`run --save-activity FILE.npz`) "
                        "instead of emulating the dataset (default: emulate)")
    p.add_argument("--spikes", default=None, metavar="EVENTS.npy",
                   help="emulate these input spikes instead of a dataset: an (N, T, C) array "
                        "of 0/1 spikes or graded payloads, as `run --spikes` (default: use the "
                        "dataset)")


def main(args: argparse.Namespace) -> int:
    run_budget(args.net, profile=args.profile, dataset=args.dataset, data_dir=args.data_dir,
               split=args.split, limit=args.limit, json_path=args.json, plot_path=args.plot,
               activity_path=args.activity, spikes=args.spikes)
    return 0


if __name__ == "__main__":
    from delaysnn.options import new_parser

    parser = new_parser("python -m lava_runtime.budget.cli", __doc__)
    add_arguments(parser)
    try:
        raise SystemExit(main(parser.parse_args()))
    except ValueError as e:  # ProfileError, DataError, ExportError are ValueErrors
        parser.exit(2, f"error: {e}\n")
