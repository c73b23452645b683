"""The sweep's grid as a committed TOML file (e.g. experiments/fsdd.toml) -> a list of points.

File format (every key is checked; unknown keys are errors)::

    dataset = "fsdd"            # trainer.data name
    data_dir = ""               # "" = the data layer's default folder
    epochs = 40                 # per point; the checkpoint is the best validation epoch
    seeds = [0, 1, 2]
    sparsities = [0, 0.5, 0.9]  # fraction of candidate connections absent, 0 <= S < 1
    baseline = "dcls"           # group the report compares every other group with
    [set]                       # trainer config keys for every point (trainer/defaults.toml)
    batch_size = 32
    [[group]]                   # one per compared variant
    name = "dcls"               # file-name safe; names the point files
    method = "dcls"             # trainer method
    sparsities = [...]          # optional: replaces the top-level list for this group
    match_synapses = false      # true: at each S, sparsity 1 - (1 - S) / kernel_size, i.e. as
                                # many synapses as a one-delay-per-pair method at S
    set = { regrow = "random" } # optional trainer keys for this group (over the top-level set)
    optional = false            # true: skip this group, with a message, while the trainer has
                                # no config key named in its set (instead of an error)
    description = "..."         # one line for the report

A point is one (group, sparsity, seed): ``{name, group, method, sparsity, nominal_sparsity,
matched, recurrent, seed, overrides, config}``, where ``overrides`` are the trainer keys that
make its run, ``config`` the resolved, validated trainer config and ``recurrent`` its trainer
key (a group sets it in ``set``, e.g. ``set = { recurrent = true, recurrent_equal_synapses =
true }`` for recurrent networks with the feed-forward network's synapse count at each S:
experiments/fsdd_recurrent.toml). Points come densest first (nominal
sparsity ascending: the grid value a matched group is matched to), then seed, then group order.
"""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

# defaults of `sweep run` and `sweep report`: a user's sweep writes under runs/ (untracked); the
# committed results are made by passing --results docs/results/sweep (README, docs/results.md)
DEFAULT_CONFIG = "experiments/fsdd.toml"
DEFAULT_RESULTS = "runs/sweep_results"
TOP_KEYS = ("dataset", "data_dir", "epochs", "seeds", "sparsities", "baseline", "set", "group")
GROUP_KEYS = ("name", "method", "sparsities", "match_synapses", "set", "optional",
              "description")
# trainer keys the grid itself sets on every point: a `set` table may not name them
GRID_KEYS = ("dataset", "data_dir", "method", "sparsity", "seed", "epochs")
# trainer keys the sweep sets per machine (they do not change a result: trainer NON_IDENTITY_KEYS)
MACHINE_KEYS = ("device", "num_threads", "lif_kernel")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def point_name(group: str, sparsity: float, seed: int) -> str:
    """``{group}_s{sparsity}_seed{seed}`` (sparsity with up to 10 significant digits)."""
    return f"{group}_s{float(sparsity):.10g}_seed{int(seed)}"


def matched_sparsity(sparsity: float, kernel_size: int) -> float:
    """Sparsity of a (pre, post, delay) candidate set (structure-multi, K delays per pair) that
    keeps as many synapses as a one-delay-per-pair method keeps at ``sparsity``:
    (1 - s') K = 1 - s, rounded to 12 decimals."""
    return round(1.0 - (1.0 - float(sparsity)) / int(kernel_size), 12)


def load_grid(path: str | Path) -> dict:
    """Read and check a sweep config file; returns its dict with defaults filled in
    (data_dir "", baseline "dcls", set {}, per group: sparsities = the top-level list,
    match_synapses false, set {}, optional false, description "")."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"sweep config {path} does not exist")
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"sweep config {path} is not valid TOML: {e}") from None
    return check_grid(raw, str(path))


def _fail(where: str, msg: str):
    raise ValueError(f"{where}: {msg}")


def _numbers(where, key, values, check, what):
    if not isinstance(values, list) or not values:
        _fail(where, f"{key} must be a non-empty list, got {values!r}")
    for v in values:
        if isinstance(v, bool) or not check(v):
            _fail(where, f"{key} must hold {what}, got {v!r}")
    if len(set(values)) != len(values):
        _fail(where, f"{key} lists a value twice: {values}")
    return list(values)


def _sparsities(where, values):
    return [float(s) for s in _numbers(where, "sparsities", values,
                                       lambda s: isinstance(s, (int, float)) and 0 <= s < 1,
                                       "numbers in [0, 1)")]


def _set_table(where, table):
    if not isinstance(table, dict):
        _fail(where, f"set must be a table of trainer config keys, got {table!r}")
    bad = sorted(set(table) & set(GRID_KEYS + MACHINE_KEYS))
    if bad:
        _fail(where, f"set may not name {', '.join(bad)} (the grid and the command line set "
                     "those)")
    return dict(table)


def check_grid(raw: dict, where: str = "sweep config") -> dict:
    """Validate a parsed sweep config (see the module docstring); ValueError names the key."""
    from trainer.config import DATASET_NAMES
    from trainer.layers import METHODS

    unknown = sorted(set(raw) - set(TOP_KEYS))
    if unknown:
        _fail(where, f"unknown key(s) {', '.join(unknown)}; known keys: {', '.join(TOP_KEYS)}")
    for key in ("dataset", "epochs", "seeds", "sparsities", "group"):
        if key not in raw:
            _fail(where, f"missing key {key!r}")
    g = {"dataset": raw["dataset"], "data_dir": raw.get("data_dir", ""),
         "baseline": raw.get("baseline", "dcls"), "set": _set_table(where, raw.get("set", {}))}
    if g["dataset"] not in DATASET_NAMES:
        _fail(where, f"unknown dataset {g['dataset']!r}; choose one of {', '.join(DATASET_NAMES)}")
    if not isinstance(g["data_dir"], str):
        _fail(where, f"data_dir must be a string, got {g['data_dir']!r}")
    e = raw["epochs"]
    if isinstance(e, bool) or not isinstance(e, int) or e < 1:
        _fail(where, f"epochs must be a positive integer, got {e!r}")
    g["epochs"] = e
    g["seeds"] = _numbers(where, "seeds", raw["seeds"], lambda s: isinstance(s, int) and s >= 0,
                          "non-negative integers")
    g["sparsities"] = _sparsities(where, raw["sparsities"])
    groups = raw["group"]
    if not isinstance(groups, list) or not groups:
        _fail(where, "needs at least one [[group]] table")
    g["groups"] = []
    for i, gr in enumerate(groups):
        gw = f"{where}: group {i + 1}"
        if not isinstance(gr, dict):
            _fail(gw, "must be a table")
        unknown = sorted(set(gr) - set(GROUP_KEYS))
        if unknown:
            _fail(gw, f"unknown key(s) {', '.join(unknown)}; known keys: {', '.join(GROUP_KEYS)}")
        for key in ("name", "method"):
            if key not in gr:
                _fail(gw, f"missing key {key!r}")
        name = gr["name"]
        if not isinstance(name, str) or not _NAME.match(name):
            _fail(gw, f"name must be letters, digits, '.', '_' or '-', got {name!r}")
        gw = f"{where}: group {name!r}"
        if gr["method"] not in METHODS:
            _fail(gw, f"unknown method {gr['method']!r}; choose one of {', '.join(METHODS)}")
        for key in ("match_synapses", "optional"):
            if not isinstance(gr.get(key, False), bool):
                _fail(gw, f"{key} must be true or false, got {gr[key]!r}")
        if not isinstance(gr.get("description", ""), str):
            _fail(gw, "description must be a string")
        g["groups"].append({
            "name": name, "method": gr["method"],
            "sparsities": (_sparsities(gw, gr["sparsities"]) if "sparsities" in gr
                           else list(g["sparsities"])),
            "match_synapses": gr.get("match_synapses", False),
            "set": {**g["set"], **_set_table(gw, gr.get("set", {}))},
            "optional": gr.get("optional", False),
            "description": gr.get("description", "")})
    names = [gr["name"] for gr in g["groups"]]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        _fail(where, f"group name(s) used twice: {', '.join(dup)}")
    if g["baseline"] not in names:
        _fail(where, f"baseline {g['baseline']!r} is not a group name ({', '.join(names)})")
    return g


def plan(grid: dict, *, device: str = "auto", threads: int = 1, epochs: int | None = None,
         groups: list[str] | None = None, sparsities: list[float] | None = None,
         seeds: list[int] | None = None, lif_kernel: str | None = None
         ) -> tuple[list[dict], list[str]]:
    """The grid's points (densest first), restricted to the given groups / nominal sparsities /
    seeds when those are given, with epochs replaced when given (for short trial runs).
    Returns (points, skipped): one message per optional group left out because the trainer
    lacks one of its set keys. Every point's trainer config is resolved here (ValueError).
    lif_kernel: the trainer's lif_kernel for every point (None: its default)."""
    from trainer.config import load_defaults, resolve_config

    known = set(load_defaults())
    names = [gr["name"] for gr in grid["groups"]]
    for what, chosen, allowed in (("group", groups, names),
                                  ("sparsity", sparsities, None), ("seed", seeds, grid["seeds"])):
        if chosen is None:
            continue
        if not chosen:
            raise ValueError(f"--{what} filter is empty")
        if allowed is not None:
            bad = [c for c in chosen if c not in allowed]
            if bad:
                raise ValueError(f"{what}(s) {', '.join(map(str, bad))} not in the sweep config "
                                 f"(it has {', '.join(map(str, allowed))})")
    if sparsities is not None:
        all_s = {s for gr in grid["groups"] for s in gr["sparsities"]}
        bad = [s for s in sparsities if float(s) not in all_s]
        if bad:
            raise ValueError(f"sparsity(ies) {', '.join(map(str, bad))} not in the sweep config "
                             f"(it has {', '.join(f'{s:g}' for s in sorted(all_s))})")
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int)
                               or epochs < 1):
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    points, skipped = [], []
    for gi, gr in enumerate(grid["groups"]):
        if groups is not None and gr["name"] not in groups:
            continue
        missing = sorted(set(gr["set"]) - known)
        if missing and gr["optional"]:
            skipped.append(f"group {gr['name']} skipped: the trainer has no config key(s) "
                           f"{', '.join(missing)} yet (the group is optional)")
            continue
        for s in gr["sparsities"]:
            if sparsities is not None and s not in [float(x) for x in sparsities]:
                continue
            for seed in grid["seeds"]:
                if seeds is not None and seed not in seeds:
                    continue
                over = {**gr["set"], "dataset": grid["dataset"], "data_dir": grid["data_dir"],
                        "method": gr["method"], "seed": int(seed),
                        "epochs": int(epochs or grid["epochs"]), "device": device,
                        "num_threads": int(threads), "sparsity": float(s),
                        **({} if lif_kernel is None else {"lif_kernel": lif_kernel})}
                try:
                    cfg = resolve_config(None, over)
                    if gr["match_synapses"]:
                        over["sparsity"] = matched_sparsity(s, cfg["kernel_size"])
                        cfg = resolve_config(None, over)
                except ValueError as e:
                    raise ValueError(f"group {gr['name']}: {e}") from None
                points.append({
                    "name": point_name(gr["name"], over["sparsity"], seed),
                    "group": gr["name"], "method": gr["method"], "sparsity": over["sparsity"],
                    "nominal_sparsity": float(s), "matched": gr["match_synapses"],
                    "recurrent": bool(cfg["recurrent"]), "seed": int(seed), "overrides": over,
                    "config": cfg, "_order": (s, seed, gi)})
    points.sort(key=lambda p: p["_order"])
    for p in points:
        del p["_order"]
    return points, skipped
