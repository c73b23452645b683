"""How the generated figure blocks read the committed JSON under docs/results/: the entries,
runs and stages they take figures from, each with a clear error when a JSON no longer has what a
block needs (used by ``experiments.figures_readme`` and ``experiments.figures_docs``)."""
from __future__ import annotations

import re

from experiments.figures_common import t_interval

CONN_AFTER = "after: drop_disconnected, 40 epochs"  # entries of structure_connectivity.json
CONN_BEFORE = "before: sweep points, 40 epochs"
LR_BEFORE = "init fan-in per (pre, delay) (current)"  # of structure_multi_init.json
LR_AFTER = "lr / synapses per pair (adopted)"  # of structure_multi_lr.json
DEEPR_DEFAULT = "default: l1 0, deepr_temperature 0"  # of deepr_options.json

def speed_runs(d: dict) -> dict[tuple[str, float, int], dict]:
    """train_speed.json's runs by (method, sparsity, batch), at the trainer's default
    dcls_path (the reference row of dense dcls on the earlier path left out)."""
    return {(r["method"], r["sparsity"], r["batch_size"]): r for r in d["runs"]
            if r.get("dcls_path") != "dense"}


def stage_ms(d: dict, *names: str) -> float:
    """Milliseconds per step of the named stages of a profile_step JSON, summed."""
    found = {s["stage"]: s["ms_per_step"] for s in d["stages"]}
    missing = [n for n in names if n not in found]
    if missing:
        raise ValueError(f"profile_step JSON lacks stage(s) {missing}")
    return sum(found[n] for n in names)


def runs_by_seed(d: dict, key: str) -> dict[int, dict]:
    """The runs of one entry of a collect_runs JSON, by seed."""
    if key not in d:
        raise ValueError(f"no entry {key!r} (entries: {', '.join(map(repr, d))})")
    return {r["seed"]: r for r in d[key]["runs"]}


def note_match(d: dict, key: str, pattern: str, what: str) -> re.Match:
    """``pattern`` searched in an entry's ``note`` (ValueError saying ``what`` is gone)."""
    m = re.search(pattern, d[key]["note"])
    if not m:
        raise ValueError(f"the note of {key!r} no longer gives {what}")
    return m


def mean(xs: list[float]) -> float:
    """The arithmetic mean."""
    return sum(xs) / len(xs)


def conn_runs(d: dict, key: str, method: str, sparsity: float) -> list[dict]:
    """structure_connectivity.json: an entry's runs of one method and sparsity, by seed."""
    runs = sorted((r for r in d[key]["runs"] if r["method"] == method
                   and r["sparsity"] == sparsity), key=lambda r: r["seed"])
    if not runs:
        raise ValueError(f"structure_connectivity.json: {key!r} has no {method} at {sparsity}")
    return runs


def runs_by_sparsity(d: dict, key: str) -> dict[float, dict]:
    """The runs of one entry of a collect_runs JSON, by sparsity."""
    if key not in d:
        raise ValueError(f"no entry {key!r}")
    return {r["sparsity"]: r for r in d[key]["runs"]}


def deepr_diffs(d: dict) -> dict[str, tuple[int, float, float, float, bool]]:
    """Per option: (seeds, mean, lo, hi, higher on every seed) of its validation accuracy minus
    the default's, in points, paired by seed (95% t interval)."""
    base = runs_by_seed(d, DEEPR_DEFAULT)
    out = {}
    for key in d:
        if key == DEEPR_DEFAULT:
            continue
        runs = runs_by_seed(d, key)
        diffs = [100 * (r["val_accuracy"] - base[s]["val_accuracy"])
                 for s, r in sorted(runs.items())]
        avg, lo, hi = t_interval(diffs)
        out[key] = (len(diffs), avg, lo, hi, all(x > 0 for x in diffs))
    return out
